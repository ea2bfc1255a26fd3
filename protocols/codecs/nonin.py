"""``nonin-df8``: Nonin Data Format 8 (protocols.md 1.2; Nonin OEM III / Xpod / 3012
"Data Format #8" specification).

9600 8N1, one 4-byte record a second:

====  =====================================================================
byte  meaning
====  =====================================================================
0     STATUS1: bit7 always 1; 0x40 sensor disconnected, 0x20 out of track,
      0x10 low perfusion, 0x08 marginal perfusion, 0x04 artifact,
      bits 1..0 = heart rate bits 8..7
1     heart rate bits 6..0 (bit7 clear)
2     SpO2 % (127 = missing)
3     STATUS2: 0x20 SmartPoint, 0x08 sensor alarm, 0x02 critical battery,
      0x01 low battery (bit7 clear)
====  =====================================================================

Heart rate 511 and SpO2 127 are "missing" and decode to ``None`` (the key is present:
the device measures it, it has no reading now). SpO2 101..126 and a heart rate above
300 /min cannot be readings (the range table all codecs share, ``_ranges``) and make the
record a ``payload`` error; the encoder refuses them with the same sentence.
Resynchronisation is on the STATUS1 high bit (see ``_syncbit``). Status bits are
reported by name in ``status``; STATUS2 bits the contract does not name appear as
``status2_bitN``.
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

NAME: Final[str] = "nonin-df8"
RECORD_SIZE: Final[int] = 4
HR_MISSING: Final[int] = 511
SPO2_MISSING: Final[int] = 127

STATUS1_BITS: Final[dict[int, str]] = {
    0x40: "sensor_disconnected",
    0x20: "out_of_track",
    0x10: "low_perfusion",
    0x08: "marginal_perfusion",
    0x04: "artifact",
}
STATUS2_BITS: Final[dict[int, str]] = {
    0x40: "status2_bit6",
    0x20: "smartpoint",
    0x10: "status2_bit4",
    0x08: "sensor_alarm",
    0x04: "status2_bit2",
    0x02: "critical_battery",
    0x01: "low_battery",
}
_NAME_TO_BIT: Final[dict[str, tuple[int, int]]] = {
    **{name: (1, bit) for bit, name in STATUS1_BITS.items()},
    **{name: (2, bit) for bit, name in STATUS2_BITS.items()},
}


def parse_record(rec: bytes, offset: int) -> Item:
    """Decode one 4-byte record (shape already checked by the sync scan)."""
    s1, hr_low, spo2, s2 = rec
    hr = (s1 & 0x03) << 7 | hr_low
    status = [name for bit, name in STATUS1_BITS.items() if s1 & bit]
    status += [name for bit, name in STATUS2_BITS.items() if s2 & bit]
    values: dict[str, Value] = {
        "spo2_pct": None if spo2 == SPO2_MISSING else spo2,
        "pulse_bpm": None if hr == HR_MISSING else hr,
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
        {"status": status},
    )


def _int(value: object, key: str, maximum: int, missing: int) -> int:
    if value is None:
        return missing
    if isinstance(value, float):
        if not math.isfinite(value):  # JSON lets NaN and Infinity through
            raise EncodeError(f"{key} must be a finite number, got {value!r}")
        value = round(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise EncodeError(f"{key} must be 0..{maximum} or null, got {value!r}")
    return value


class NoninCodec(Codec):
    """nonin-df8 codec (see module docstring)."""

    name = NAME
    default_max_buffer = 4096

    def decoder(self, max_buffer: int | None = None) -> StreamDecoder:
        return SyncBitDecoder(RECORD_SIZE, parse_record, "Nonin DF8", max_buffer)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """One 4-byte record; ``None`` values are written as missing (HR 511, SpO2 127),
        ``status`` names set their bits. Values are rounded to whole units."""
        if "error" in record:
            return self.encode_error_line(record)
        if record.get("kind", "spo2") != "spo2":
            raise EncodeError(f"nonin-df8 only carries kind 'spo2', got {record.get('kind')!r}")
        values = record.get("values", {})
        if not isinstance(values, Mapping):
            raise EncodeError("'values' must be an object")
        problem = check_values(values)
        if problem is not None:
            raise EncodeError(problem)
        spo2 = _int(values.get("spo2_pct"), "spo2_pct", 100, SPO2_MISSING)
        hr = _int(values.get("pulse_bpm"), "pulse_bpm", HR_MISSING - 1, HR_MISSING)
        s1, s2 = 0x80 | (hr >> 7), 0
        status = record.get("status", [])
        if not isinstance(status, list | tuple):
            raise EncodeError("status must be a list of names")
        for name in status:
            where = _NAME_TO_BIT.get(name) if isinstance(name, str) else None
            if where is None:
                raise EncodeError(
                    f"unknown nonin-df8 status {name!r} (known: {', '.join(_NAME_TO_BIT)})"
                )
            if where[0] == 1:
                s1 |= where[1]
            else:
                s2 |= where[1]
        return bytes((s1, hr & 0x7F, spo2, s2))
