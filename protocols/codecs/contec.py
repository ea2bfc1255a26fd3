"""``contec-cms50d``: Contec CMS50D+ legacy live stream (protocols.md 1.2).

19200 8O1, 5-byte packets, about 60 a second; only byte 0 has bit 7 set:

====  =====================================================================
byte  meaning
====  =====================================================================
0     bits 3..0 signal strength, 0x10 finger out, 0x20 SpO2 dropping,
      0x40 pulse beep (the beat marker of the legacy protocol)
1     plethysmogram sample 0..127
2     bits 3..0 bar graph, 0x10 probe error, 0x20 searching, 0x40 pulse bit 7
3     pulse rate bits 6..0
4     SpO2 %
====  =====================================================================

Vector: PR 72, SpO2 98, signal 5, pleth 60, bar 4 = ``85 3C 04 48 62``. The odd parity
of 8O1 is the serial port's business (pyserial checks it), not the codec's. The device
sends pulse 255 and SpO2 127 when it has no reading: those decode to ``None``; SpO2
101..126 is a ``payload`` error, as is any value outside the range table all codecs
share (``_ranges``), which the encoder refuses with the same sentence.
Resynchronisation is on the byte-0 high bit (see ``_syncbit``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from protocols.codecs._ranges import check_decoded, check_values
from protocols.codecs._records import (
    Codec,
    Decoded,
    DecodeError,
    EncodeError,
    Item,
    StreamDecoder,
    Value,
)
from protocols.codecs._syncbit import SyncBitDecoder

NAME: Final[str] = "contec-cms50d"
PACKET_SIZE: Final[int] = 5
PULSE_MISSING: Final[int] = 255
SPO2_MISSING: Final[int] = 127

#: (byte index, bit) → name.
STATUS_BITS: Final[dict[tuple[int, int], str]] = {
    (0, 0x10): "finger_out",
    (0, 0x20): "spo2_dropping",
    (0, 0x40): "pulse_beep",
    (2, 0x10): "probe_error",
    (2, 0x20): "searching",
}
_NAME_TO_BIT: Final[dict[str, tuple[int, int]]] = {v: k for k, v in STATUS_BITS.items()}


def parse_packet(rec: bytes, offset: int) -> Item:
    """Decode one 5-byte packet (shape already checked by the sync scan)."""
    b0, pleth, b2, pulse_low, spo2 = rec
    pulse = (b2 & 0x40) << 1 | pulse_low
    status = [name for (i, bit), name in STATUS_BITS.items() if (b0 if i == 0 else b2) & bit]
    values: dict[str, Value] = {
        "spo2_pct": None if spo2 == SPO2_MISSING else spo2,
        "pulse_bpm": None if pulse == PULSE_MISSING else pulse,
    }
    problem = check_decoded(values)
    if problem is not None:
        return DecodeError("payload", offset, rec, problem)
    return Decoded(
        "spo2",
        values,
        offset,
        rec,
        None,
        None,
        {
            "signal_strength": b0 & 0x0F,
            "pleth": pleth,
            "bar_graph": b2 & 0x0F,
            "status": status,
        },
    )


def _int(value: object, key: str, maximum: int, missing: int | None) -> int:
    if value is None and missing is not None:
        return missing
    if isinstance(value, float):
        if not math.isfinite(value):  # JSON lets NaN and Infinity through
            raise EncodeError(f"{key} must be a finite number, got {value!r}")
        value = round(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise EncodeError(
            f"{key} must be 0..{maximum}{' or null' if missing else ''}, got {value!r}"
        )
    return value


class ContecCodec(Codec):
    """contec-cms50d codec (see module docstring)."""

    name = NAME
    default_max_buffer = 4096

    def decoder(self, max_buffer: int | None = None) -> StreamDecoder:
        return SyncBitDecoder(PACKET_SIZE, parse_packet, "Contec CMS50D+", max_buffer)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """One 5-byte packet; ``None`` values are written as missing (pulse 255, SpO2
        127); ``signal_strength``, ``pleth``, ``bar_graph`` default to 0."""
        if "error" in record:
            return self.encode_error_line(record)
        if record.get("kind", "spo2") != "spo2":
            raise EncodeError(f"contec-cms50d only carries kind 'spo2', got {record.get('kind')!r}")
        values = record.get("values", {})
        if not isinstance(values, Mapping):
            raise EncodeError("'values' must be an object")
        problem = check_values(values)
        if problem is not None:
            raise EncodeError(problem)
        spo2 = _int(values.get("spo2_pct"), "spo2_pct", 100, SPO2_MISSING)
        pulse = _int(values.get("pulse_bpm"), "pulse_bpm", PULSE_MISSING - 1, PULSE_MISSING)
        b = [
            0x80 | _int(record.get("signal_strength", 0), "signal_strength", 15, None),
            _int(record.get("pleth", 0), "pleth", 127, None),
            _int(record.get("bar_graph", 0), "bar_graph", 15, None) | (pulse >> 1 & 0x40),
            pulse & 0x7F,
            spo2,
        ]
        status = record.get("status", [])
        if not isinstance(status, list | tuple):
            raise EncodeError("status must be a list of names")
        for name in status:
            where = _NAME_TO_BIT.get(name) if isinstance(name, str) else None
            if where is None:
                raise EncodeError(
                    f"unknown contec-cms50d status {name!r} (known: {', '.join(_NAME_TO_BIT)})"
                )
            b[where[0]] |= where[1]
        return bytes(b)
