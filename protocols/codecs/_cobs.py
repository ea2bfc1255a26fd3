"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999), as sbf1 frames use it.

A COBS-encoded frame contains no 0x00 byte, so 0x00 can delimit frames on the wire and a
receiver resynchronises at the next 0x00 whatever garbage came before. Each code byte
``n`` (1..255) is followed by ``n - 1`` data bytes and stands for a 0x00 after them, except
when ``n`` is 0xFF (a full block, no zero) or the block ends the frame.

Decoding loops once per code block, not per byte: blocks are copied with slices, which
run in C. Frames here are short and full of zeros (little-endian integers), so a frame is
a handful of blocks.
"""

from __future__ import annotations

from typing import Final


def max_encoded_size(n: int) -> int:
    """Largest COBS encoding of ``n`` bytes (excluding the 0x00 delimiter)."""
    return n + n // 254 + 1


_ZERO: Final[bytes] = b"\x00"


class CobsError(ValueError):
    """Not a valid COBS encoding (a code byte points past the end, or a 0x00 inside)."""


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode ``data`` (without the trailing 0x00 delimiter).

    Splits on zeros with ``bytes.split`` (C speed) and only walks blocks longer than
    254 bytes in Python.
    """
    out = bytearray()
    parts = bytes(data).split(_ZERO)
    last = len(parts) - 1
    for i, part in enumerate(parts):
        run = part
        # A zero-free run of 254 bytes or more is cut into full 0xFF blocks.
        while len(run) >= 254:
            out.append(0xFF)
            out += run[:254]
            run = run[254:]
            if not run and i == last:
                return bytes(out)
        out.append(len(run) + 1)
        out += run
    return bytes(out)


def cobs_decode(enc: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS block sequence (the bytes between two 0x00 delimiters).

    Raises:
        CobsError: a code byte is 0x00 or points beyond the end of ``enc``.
    """
    n = len(enc)
    if n == 0:
        raise CobsError("empty frame")
    pieces: list[bytes] = []
    i = 0
    full_block = False
    while i < n:
        code = enc[i]
        if code == 0:
            raise CobsError(f"0x00 inside a frame at byte {i}")
        j = i + code
        if j > n:
            raise CobsError(f"code byte 0x{code:02X} at byte {i} points past the end ({n} bytes)")
        pieces.append(bytes(enc[i + 1 : j]))
        if code == 0xFF:
            full_block = True
        i = j
    if not full_block:
        # Every block but the last stands for a trailing zero: join puts exactly those.
        return _ZERO.join(pieces)
    # Rare path (a run of 254+ non-zero bytes): 0xFF blocks carry no implicit zero.
    out = bytearray()
    i = 0
    for piece in pieces[:-1]:
        out += piece
        code = enc[i]
        i += code
        if code != 0xFF:
            out.append(0)
    out += pieces[-1]
    return bytes(out)
