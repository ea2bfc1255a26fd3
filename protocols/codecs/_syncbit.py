"""Decoder for fixed-size records whose first byte alone has bit 7 set (Nonin DF8, Contec).

These formats have no delimiter and no checksum; the only framing is that byte 0 of a
record has bit 7 set and the others have it clear. A record is therefore a high byte
followed by ``size - 1`` low bytes; anything else is skipped and reported, one ``sync``
error per contiguous run of skipped bytes (a run is cut every ``max_buffer`` bytes, so
a stream of pure noise still produces errors, and bounded ones).

The scan is a compiled regular expression, so a noisy line costs C time, not a Python
loop per byte. Its result does not depend on how the input is chunked: a byte is junk
exactly when no record can start at it, and the only undecided bytes — a high byte at
the end of a chunk followed by fewer than ``size - 1`` low bytes — are held back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from protocols.codecs._records import RAW_CAP, DecodeError, Item, StreamDecoder, check_max_buffer

#: Parses one complete record (already shape-checked) found at an absolute offset.
RecordParser = Callable[[bytes, int], Item]

DEFAULT_MAX_JUNK: Final[int] = 4096
_MIN_MAX_JUNK: Final[int] = 64
_TRAILING_START: Final = re.compile(rb"[\x80-\xff][\x00-\x7f]*\Z")


class SyncBitDecoder(StreamDecoder):
    """Streaming decoder for ``size``-byte records starting with the only high byte."""

    def __init__(self, size: int, parse: RecordParser, what: str, max_buffer: int | None) -> None:
        self._size = size
        self._parse = parse
        self._what = what
        self._record = re.compile(rb"[\x80-\xff][\x00-\x7f]{%d}" % (size - 1))
        self._cap = check_max_buffer(max_buffer, DEFAULT_MAX_JUNK, _MIN_MAX_JUNK)
        self.position = 0
        self._pending = b""
        self._pending_start = 0
        self._junk_start = -1
        self._junk_len = 0
        self._junk_raw = b""

    def _junk(self, data: bytes, a: int, b: int, base: int, out: list[Item]) -> None:
        """Add ``data[a:b]`` to the current run of skipped bytes, cutting it at the cap."""
        while a < b:
            if self._junk_start < 0:
                self._junk_start = base + a
                self._junk_len = 0
                self._junk_raw = b""
            take = min(b - a, self._cap - self._junk_len)
            if len(self._junk_raw) < RAW_CAP:
                self._junk_raw += data[a : a + min(take, RAW_CAP - len(self._junk_raw))]
            self._junk_len += take
            a += take
            if self._junk_len >= self._cap:
                self._end_junk(out)

    def _end_junk(self, out: list[Item]) -> None:
        if self._junk_start >= 0:
            out.append(
                DecodeError(
                    "sync",
                    self._junk_start,
                    self._junk_raw,
                    f"{self._junk_len} bytes skipped: not a {self._what} record "
                    "(one byte with bit 7 set, then bytes with bit 7 clear)",
                    self._junk_len,
                )
            )
            self._junk_start = -1

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Item]:
        out: list[Item] = []
        if not chunk:
            return out
        data = bytes(chunk)
        base = self.position
        self.position += len(data)
        if self._pending:
            data = self._pending + data
            base = self._pending_start
        pos = 0
        parse = self._parse
        for m in self._record.finditer(data):
            start, end = m.span()
            if start > pos:
                self._junk(data, pos, start, base, out)
            self._end_junk(out)
            out.append(parse(data[start:end], base + start))
            pos = end
        tail = _TRAILING_START.search(data, pos)
        if tail is not None and len(data) - tail.start() < self._size:
            self._junk(data, pos, tail.start(), base, out)
            self._pending = data[tail.start() :]
            self._pending_start = base + tail.start()
        else:
            self._junk(data, pos, len(data), base, out)
            self._pending = b""
        return out

    def flush(self) -> list[Item]:
        out: list[Item] = []
        self._end_junk(out)
        if self._pending:
            out.append(
                DecodeError(
                    "truncated",
                    self._pending_start,
                    self._pending,
                    f"{len(self._pending)} of {self._size} bytes of a {self._what} record "
                    "at end of stream",
                )
            )
        self._pending = b""
        return out
