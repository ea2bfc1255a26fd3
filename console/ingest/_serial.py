"""Serial readers for devices wired to the hub itself (``samu hub --serial SPEC``).

One reader per port (any pyserial URL: ``/dev/ttyUSB0``, a pty, ``socket://``,
``rfc2217://``), through pyserial-asyncio-fast. Bytes go through the format's streaming
decoder; every batch of decoded items is handed to ``on_items`` — the hub commits them
on its writer thread — before more is read, so a slow commit slows the reading (the
device's own buffer and the line's flow control absorb it) instead of filling memory.

An unplugged device (read error or end of stream) is reported to ``on_state`` once,
then the reader retries with the capped back-off until the device is back; the bytes of
a frame cut by the unplug are flushed as ``truncated``, never read as a value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import serial
import serial_asyncio_fast

from console.ingest._pipeline import SerialSource
from protocols.codecs import get_codec
from transport import Backoff

_log = logging.getLogger("console.ingest.serial")

#: Line speed by format when the spec gives none (the hardware profiles' values).
DEFAULT_BAUD = {"sbf1": 115200, "masimo-ascii1": 9600, "nonin-df8": 9600, "contec-cms50d": 19200}

OnItems = Callable[[SerialSource, Sequence[object], float], Awaitable[None]]
OnState = Callable[[SerialSource, str, float], Awaitable[None]]


class SerialSpecError(ValueError):
    """A ``--serial`` spec that cannot be used (the message says why)."""


def parse_serial_spec(text: str) -> tuple[SerialSource, int]:
    """``port=URL,format=F,site=S,device=D[,patient=P][,baud=N]`` → source and baud.

    Raises:
        SerialSpecError: a missing or unknown key, an unknown format, a bad id or baud.
    """
    from protocols.vocab import SERIAL_FORMATS, is_valid_id

    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise SerialSpecError(
                f"--serial {text!r}: expected port=URL,format=F,site=S,device=D"
                "[,patient=P][,baud=N]"
            )
        fields[key.strip()] = value.strip()
    unknown = set(fields) - {"port", "format", "site", "device", "patient", "baud"}
    if unknown:
        raise SerialSpecError(f"--serial: unknown key(s) {', '.join(sorted(unknown))}")
    missing = [k for k in ("port", "format", "site", "device") if k not in fields]
    if missing:
        raise SerialSpecError(f"--serial {text!r}: missing {', '.join(missing)}")
    if fields["format"] not in SERIAL_FORMATS:
        raise SerialSpecError(
            f"--serial: unknown format {fields['format']!r} (one of {', '.join(SERIAL_FORMATS)})"
        )
    for key in ("site", "device", "patient"):
        if key in fields and not is_valid_id(fields[key]):
            raise SerialSpecError(f"--serial: {key} {fields[key]!r}: 1-64 of A-Z a-z 0-9 . _ -")
    try:
        baud = int(fields.get("baud") or DEFAULT_BAUD[fields["format"]])
    except ValueError:
        raise SerialSpecError(f"--serial: baud {fields['baud']!r} is not a number") from None
    source = SerialSource(
        fields["port"], fields["format"], fields["site"], fields["device"], fields.get("patient")
    )
    return source, baud


class SerialReader:
    """Reads one port until :meth:`stop` (see the module docstring)."""

    def __init__(
        self,
        source: SerialSource,
        on_items: OnItems,
        on_state: OnState,
        *,
        baudrate: int = 9600,
        backoff: tuple[float, float] = (0.2, 5.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self._on_items = on_items
        self._on_state = on_state
        self._baud = baudrate
        self._backoff = Backoff(backoff[0], backoff[1], seed=source.url)
        self._stop = asyncio.Event()
        self._clock = clock
        self.connected = False
        self.reconnections = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        attempt = 0
        warned = False
        while not self._stop.is_set():
            try:
                reader, writer = await serial_asyncio_fast.open_serial_connection(
                    url=self.source.url, baudrate=self._baud
                )
            except (OSError, serial.SerialException) as exc:
                if not warned:
                    _log.warning("serial %s: cannot open (%s); retrying", self.source.url, exc)
                    warned = True
                delay = self._backoff.delay(attempt)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                continue
            attempt, warned = 0, False
            self.connected = True
            if self.reconnections:
                await self._on_state(self.source, "reconnected", self._clock())
            self.reconnections += 1
            decoder = get_codec(self.source.format).decoder()
            try:
                await self._read(reader, decoder)
            finally:
                self.connected = False
                writer.close()
                tail = decoder.flush()
                if tail:
                    await self._on_items(self.source, tail, self._clock())
            if not self._stop.is_set():
                await self._on_state(self.source, "disconnected", self._clock())

    async def _read(self, reader: asyncio.StreamReader, decoder: object) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                chunk_task = asyncio.ensure_future(reader.read(4096))
                done, _ = await asyncio.wait(
                    {chunk_task, stop}, return_when=asyncio.FIRST_COMPLETED
                )
                if chunk_task not in done:
                    chunk_task.cancel()  # stopping: unread bytes stay with the device
                    return
                try:
                    chunk = chunk_task.result()
                except (OSError, serial.SerialException) as exc:
                    _log.warning("serial %s: %s", self.source.url, exc)
                    return
                if not chunk:
                    return  # end of stream: unplugged
                items = decoder.feed(chunk)  # type: ignore[attr-defined]
                if items:
                    await self._on_items(self.source, items, self._clock())
        finally:
            stop.cancel()
