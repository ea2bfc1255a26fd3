"""The seven Bluetooth GATT health characteristic layouts carried by sbf1 MEASUREMENT frames.

Layouts follow the Bluetooth SIG GATT Specification Supplement (flags byte first, then
fields, optional ones present per flag bit, little-endian). Each characteristic has a
decoder ``payload -> (values, extra)`` and an encoder ``record -> payload``; values use
the contract keys and units of protocols.md 1.3, so devices that report other units are
converted here, once, with these roundings:

- blood pressure in kPa → mmHg (× 7.50062), to 0.1 mmHg: cuffs resolve 1 mmHg, a kPa
  device 0.1 kPa (0.75 mmHg); 0.1 mmHg keeps every distinct reading distinct and
  re-encodes to the same 0.1 kPa bytes.
- temperature in °F → °C, to 0.01 °C: thermometers resolve 0.1 °F (0.056 °C), so two
  decimals lose nothing and 98.6 °F reads 37.0, not 36.99999999999999.
- glucose kg/L → mg/dL (× 100 000) and mol/L → mg/dL (× 1000 × 18.0182), to 0.1 mg/dL:
  meters resolve 1 mg/dL or 0.1 mmol/L (1.8 mg/dL). Never assume mg/dL.
- weight: SI steps of 0.005 kg, imperial steps of 0.01 lb (× 0.45359237 kg), to 1 g.
- RR intervals in 1/1024 s → ms are exact binary fractions (× 125/128): not rounded.

Values given directly in SFLOAT/FLOAT are not rounded at all (see ``_ieee11073``).
Special values (NaN, NRes, ±INF) give ``None`` with the reason in ``extra["unavailable"]``.

Every decoder returns only physiologically possible values: a number outside the range
table the codecs share (``_ranges``), judged after conversion to the contract's unit, is
a :class:`PayloadError` with that table's sentence (so sbf1 reports it as ``payload``,
worded as every other codec words it). The common 5-byte PLX value checks its two
numbers inline, which keeps the check off the 50 k frames/s budget.
"""

from __future__ import annotations

import functools
import math
import operator
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from protocols.codecs._bits import bits_to_names, names_to_bits
from protocols.codecs._ieee11073 import (
    Number,
    float_decode,
    float_encode,
    sfloat_decode,
    sfloat_encode,
)
from protocols.codecs._ranges import LIMITS, check_decoded, describe, out_of_range
from protocols.codecs._records import Value

Values = dict[str, Value]
Extra = dict[str, object]

MMHG_PER_KPA: Final[float] = 7.50062
MG_DL_PER_KG_L: Final[float] = 100_000.0
MG_DL_PER_MMOL_L: Final[float] = 18.0182
KG_PER_LB: Final[float] = 0.45359237


class PayloadError(ValueError):
    """The characteristic value does not match its layout (reason code ``payload``)."""


_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_S16: Final = struct.Struct("<h")
_U16X2: Final = struct.Struct("<HH")
_U16X3: Final = struct.Struct("<HHH")
_U32: Final = struct.Struct("<I")
_DATETIME: Final = struct.Struct("<HBBBBB")
_TIME_RE: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")


# ---------------------------------------------------------------- shared field helpers


def _put_sfloat(values: Values, unavailable: dict[str, str], key: str, raw: int) -> None:
    value = sfloat_decode(raw)
    if isinstance(value, str):
        values[key] = None
        unavailable[key] = value
    else:
        values[key] = value


def _opt_sfloat(raw: int) -> Number | None:
    value = sfloat_decode(raw)
    return None if isinstance(value, str) else value


def _read_time(p: bytes, pos: int) -> str:
    """GATT Date Time (year u16, month, day, hours, minutes, seconds; 0 = unknown).

    Kept as a naive ISO-like string: the characteristic carries no time zone, and zero
    (unknown) fields are kept as zeros rather than guessed.
    """
    y, mo, d, h, mi, s = _DATETIME.unpack_from(p, pos)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"


def _write_time(value: object) -> bytes:
    if not isinstance(value, str) or not (m := _TIME_RE.match(value)):
        raise PayloadError(f"timestamp must be 'YYYY-MM-DDTHH:MM:SS', got {value!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups())
    if mo > 12 or d > 31 or h > 23 or mi > 59 or s > 59:
        raise PayloadError(f"timestamp out of range: {value!r}")
    return _DATETIME.pack(y, mo, d, h, mi, s)


def _check_len(p: bytes, expected: int, what: str) -> None:
    if len(p) != expected:
        raise PayloadError(f"{what}: {len(p)} bytes, flags announce {expected}")


def lengths_by_flags(base: int, optional: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    """Payload length each flags byte announces: ``base`` plus the size of every optional
    field whose bit is set; ``optional`` is ``(bit, size)`` pairs. A table of 256, so a
    decoder checks a length with one lookup instead of a test per field."""
    fields = tuple(optional)
    return tuple(base + sum(n for bit, n in fields if flags & bit) for flags in range(256))


def _device_unit(record: Mapping[str, Any], what: str, usual: str, other: str) -> bool:
    """Whether an encoder writes the characteristic's other unit (its flag bit set)."""
    unit = record.get("device_unit", usual)
    if unit not in (usual, other):
        raise PayloadError(f"device_unit for {what} is {usual} or {other}, got {unit!r}")
    return bool(unit == other)


def _values(record: Mapping[str, Any]) -> Mapping[str, Any]:
    values = record.get("values", {})
    if not isinstance(values, Mapping):
        raise PayloadError("'values' must be an object")
    return values


def _unavailable(record: Mapping[str, Any]) -> Mapping[str, Any]:
    u = record.get("unavailable", {})
    return u if isinstance(u, Mapping) else {}


def _number(value: object, key: str) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{key} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):  # JSON lets NaN through
        raise PayloadError(f"{key} must be a finite number, got {value!r}")
    return value


def _rounded(value: object, key: str, factor: float = 1) -> int:
    """``round(value * factor)`` for an encoder, refused (not crashing) when no integer
    can hold it (NaN, infinity, or a product that overflows a double)."""
    scaled = _number(value, key) * factor
    if not math.isfinite(scaled):
        raise PayloadError(f"{key} {value!r} is out of range")
    return round(scaled)


def _sf(values: Mapping[str, Any], unavailable: Mapping[str, Any], key: str) -> int:
    """SFLOAT for a value key; ``None`` → the recorded special (NaN by default)."""
    value = values.get(key)
    try:
        if value is None:
            return sfloat_encode(str(unavailable.get(key, "nan")))
        return sfloat_encode(_number(value, key))
    except ValueError as exc:
        raise PayloadError(f"{key}: {exc}") from None


def _sf_opt(value: object, key: str) -> int:
    try:
        return sfloat_encode(None if value is None else _number(value, key))
    except ValueError as exc:
        raise PayloadError(f"{key}: {exc}") from None


def _uint(value: object, key: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise PayloadError(f"{key} must be an integer 0..{(1 << bits) - 1}, got {value!r}")
    return value


def _flags(value: object, key: str, table: Mapping[int, str], width: int) -> int:
    if not isinstance(value, int | list | tuple):
        raise PayloadError(f"{key} must be a list of names or an integer, got {value!r}")
    try:
        return names_to_bits(value, table, width)
    except ValueError as exc:
        raise PayloadError(f"{key}: {exc}") from None


def _checked(values: Values) -> None:
    """Refuse an impossible value (see the module docstring)."""
    problem = check_decoded(values)
    if problem is not None:
        raise PayloadError(problem)


def _finish(values: Values, extra: Extra, unavailable: dict[str, str]) -> None:
    _checked(values)
    if unavailable:
        extra["unavailable"] = unavailable


# ---------------------------------------------------------------- 0x2A5E / 0x2A5F PLX

#: PLX Measurement Status (u16); bits 0-4 are reserved.
PLX_MEASUREMENT_STATUS: Final[dict[int, str]] = {
    5: "measurement_ongoing",
    6: "early_estimated_data",
    7: "validated_data",
    8: "fully_qualified_data",
    9: "data_from_storage",
    10: "data_for_demonstration",
    11: "data_for_testing",
    12: "calibration_ongoing",
    13: "measurement_unavailable",
    14: "questionable_measurement",
    15: "invalid_measurement",
}
#: PLX Device and Sensor Status (u24); bits 16-23 are reserved.
PLX_DEVICE_STATUS: Final[dict[int, str]] = {
    0: "extended_display_update_ongoing",
    1: "equipment_malfunction",
    2: "signal_processing_irregularity",
    3: "inadequate_signal",
    4: "poor_signal",
    5: "low_perfusion",
    6: "erratic_signal",
    7: "nonpulsatile_signal",
    8: "questionable_pulse",
    9: "signal_analysis_ongoing",
    10: "sensor_interference",
    11: "sensor_unconnected_to_user",
    12: "unknown_sensor_connected",
    13: "sensor_displaced",
    14: "sensor_malfunctioning",
    15: "sensor_disconnected",
}


def _plx_tail(p: bytes, pos: int, flags: int, bits: tuple[int, int, int], extra: Extra) -> int:
    """Measurement status, device & sensor status, PAI: common to both PLX layouts."""
    status_bit, device_bit, pai_bit = bits
    if flags & status_bit:
        extra["measurement_status"] = bits_to_names(
            _U16.unpack_from(p, pos)[0], PLX_MEASUREMENT_STATUS
        )
        pos += 2
    if flags & device_bit:
        extra["device_status"] = bits_to_names(
            p[pos] | p[pos + 1] << 8 | p[pos + 2] << 16, PLX_DEVICE_STATUS
        )
        pos += 3
    if flags & pai_bit:
        extra["pulse_amplitude_index"] = _opt_sfloat(_U16.unpack_from(p, pos)[0])
        pos += 2
    return pos


def _plx_tail_encode(record: Mapping[str, Any], bits: tuple[int, int, int]) -> tuple[int, bytes]:
    status_bit, device_bit, pai_bit = bits
    flags = 0
    out = bytearray()
    if "measurement_status" in record:
        flags |= status_bit
        out += _U16.pack(
            _flags(record["measurement_status"], "measurement_status", PLX_MEASUREMENT_STATUS, 16)
        )
    if "device_status" in record:
        flags |= device_bit
        out += _flags(record["device_status"], "device_status", PLX_DEVICE_STATUS, 24).to_bytes(
            3, "little"
        )
    if "pulse_amplitude_index" in record:
        flags |= pai_bit
        out += _U16.pack(_sf_opt(record["pulse_amplitude_index"], "pulse_amplitude_index"))
    return flags, bytes(out)


def _pair(p: bytes, pos: int) -> dict[str, Number | None]:
    spo2, pr = _U16X2.unpack_from(p, pos)
    return {"spo2_pct": _opt_sfloat(spo2), "pulse_bpm": _opt_sfloat(pr)}


def _pair_encode(value: object, key: str) -> bytes:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{key} must be an object with spo2_pct and pulse_bpm")
    return _U16X2.pack(
        _sf_opt(value.get("spo2_pct"), f"{key}.spo2_pct"),
        _sf_opt(value.get("pulse_bpm"), f"{key}.pulse_bpm"),
    )


def _time_encode(value: object, key: str) -> bytes:
    return _write_time(value)


@dataclass(frozen=True, slots=True)
class PlxField:
    """An optional field between SpO2PR and the common tail, present when ``bit`` is set."""

    bit: int
    size: int
    key: str
    read: Callable[[bytes, int], object]
    write: Callable[[object, str], bytes]
    #: The field holds contract values (SpO2PR-Fast/Slow), range-checked like ``values``.
    nested: bool = False


@dataclass(frozen=True, slots=True)
class PlxLayout:
    """What tells the two PLX characteristics apart; everything else is shared.

    Both are: flags (u8), SpO2PR (two SFLOATs), the layout's own optional ``fields`` in
    order, then measurement status (u16), device and sensor status (u24) and pulse
    amplitude index (SFLOAT), each present per its bit in ``tail_bits``. ``clock_bit``
    (0 for none) is a flag that carries no field.
    """

    what: str
    fields: tuple[PlxField, ...]
    tail_bits: tuple[int, int, int]
    clock_bit: int = 0
    #: Payload length announced by each flags byte (a table: one lookup per frame).
    lengths: tuple[int, ...] = field(init=False, repr=False)
    #: Every bit that announces a field: none set means the 5-byte common case.
    field_bits: int = field(init=False)

    def __post_init__(self) -> None:
        sizes = [(f.bit, f.size) for f in self.fields]
        sizes += list(zip(self.tail_bits, (2, 3, 2), strict=True))
        object.__setattr__(self, "lengths", lengths_by_flags(5, sizes))
        object.__setattr__(
            self, "field_bits", functools.reduce(operator.or_, (b for b, _ in sizes))
        )


#: 0x2A5F: flags, SpO2PR-Normal, [SpO2PR-Fast], [SpO2PR-Slow], [status], [device], [PAI].
PLX_CONTINUOUS: Final = PlxLayout(
    "PLX continuous",
    (
        PlxField(0x01, 4, "fast", _pair, _pair_encode, nested=True),
        PlxField(0x02, 4, "slow", _pair, _pair_encode, nested=True),
    ),
    (0x04, 0x08, 0x10),
)
#: 0x2A5E: flags, SpO2PR, [timestamp], [status], [device], [PAI]; bit4 = clock not set.
PLX_SPOT_CHECK: Final = PlxLayout(
    "PLX spot-check",
    (PlxField(0x01, 7, "timestamp", _read_time, _time_encode),),
    (0x02, 0x04, 0x08),
    clock_bit=0x10,
)


Decoder = Callable[[bytes], tuple[Values, Extra]]
Encoder = Callable[[Mapping[str, Any]], bytes]


def plx_decoder(layout: PlxLayout) -> Decoder:
    """The decoder of a PLX characteristic: one parser for both layouts.

    Returned as a closure over the layout (rather than a function taking it) so the
    common 5-byte case costs no extra call and reads the layout from fast locals.
    """
    what = layout.what
    fields = layout.fields
    nested = tuple(f for f in fields if f.nested)
    lengths = layout.lengths
    tail_bits = layout.tail_bits
    field_bits = layout.field_bits
    clock_bit = layout.clock_bit
    unpack_pair = _U16X2.unpack_from
    spo2_low, spo2_high = LIMITS["spo2_pct"]
    pulse_low, pulse_high = LIMITS["pulse_bpm"]

    def decode(p: bytes) -> tuple[Values, Extra]:
        n = len(p)
        if n == 5:  # the common case, no optional field: cheap for the 50 k frames/s target
            flags = p[0]
            if not flags & field_bits:
                spo2, pr = unpack_pair(p, 1)
                v1 = sfloat_decode(spo2)
                v2 = sfloat_decode(pr)
                if (
                    not isinstance(v1, str)
                    and not isinstance(v2, str)
                    and spo2_low <= v1 <= spo2_high
                    and pulse_low <= v2 <= pulse_high
                ):
                    if flags & clock_bit:
                        return {"spo2_pct": v1, "pulse_bpm": v2}, {"device_clock_not_set": True}
                    return {"spo2_pct": v1, "pulse_bpm": v2}, {}
        if n < 5:
            raise PayloadError(f"{what}: {n} bytes, at least 5 needed")
        flags = p[0]
        _check_len(p, lengths[flags], what)
        values: Values = {}
        unavailable: dict[str, str] = {}
        spo2, pr = unpack_pair(p, 1)
        _put_sfloat(values, unavailable, "spo2_pct", spo2)
        _put_sfloat(values, unavailable, "pulse_bpm", pr)
        extra: Extra = {}
        pos = 5
        for f in fields:
            if flags & f.bit:
                extra[f.key] = f.read(p, pos)
                pos += f.size
        _plx_tail(p, pos, flags, tail_bits, extra)
        if flags & clock_bit:
            extra["device_clock_not_set"] = True
        _finish(values, extra, unavailable)
        for f in nested:  # SpO2PR-Fast/Slow: contract values too
            pair = extra.get(f.key)
            if isinstance(pair, dict):
                problem = check_decoded(pair)
                if problem is not None:
                    raise PayloadError(f"{f.key}: {problem}")
        return values, extra

    return decode


def plx_encoder(layout: PlxLayout) -> Encoder:
    """The encoder of a PLX characteristic: one writer for both layouts."""
    fields = layout.fields
    tail_bits = layout.tail_bits
    clock_bit = layout.clock_bit

    def encode(record: Mapping[str, Any]) -> bytes:
        values, unavailable = _values(record), _unavailable(record)
        flags = 0
        body = bytearray(
            _U16X2.pack(_sf(values, unavailable, "spo2_pct"), _sf(values, unavailable, "pulse_bpm"))
        )
        for f in fields:
            if f.key in record:
                flags |= f.bit
                body += f.write(record[f.key], f.key)
        tail_flags, tail = _plx_tail_encode(record, tail_bits)
        if clock_bit and record.get("device_clock_not_set"):
            flags |= clock_bit
        return bytes([flags | tail_flags]) + bytes(body) + tail

    return encode


#: 0x2A5F PLX Continuous (:data:`PLX_CONTINUOUS`).
plx_continuous_decode: Final = plx_decoder(PLX_CONTINUOUS)
plx_continuous_encode: Final = plx_encoder(PLX_CONTINUOUS)
#: 0x2A5E PLX Spot-Check (:data:`PLX_SPOT_CHECK`); bit4 says the device clock is not set.
plx_spot_check_decode: Final = plx_decoder(PLX_SPOT_CHECK)
plx_spot_check_encode: Final = plx_encoder(PLX_SPOT_CHECK)


# ---------------------------------------------------------------- 0x2A35 blood pressure

#: Blood Pressure Measurement Status (u16). Bits 3-4 are a two-bit pulse-rate-range
#: field, handled apart (1 = above the range, 2 = below, 3 = reserved).
BP_STATUS: Final[dict[int, str]] = {
    0: "body_movement",
    1: "cuff_too_loose",
    2: "irregular_pulse",
    5: "improper_position",
}
_PR_RANGE: Final[dict[int, str]] = {
    1: "pulse_rate_above_range",
    2: "pulse_rate_below_range",
    3: "pulse_rate_range_reserved",
}


def _bp_status_names(raw: int) -> list[str]:
    names = bits_to_names(raw & ~0x18, BP_STATUS)
    rng = (raw >> 3) & 0x3
    if rng:
        names.append(_PR_RANGE[rng])
    return names


def _bp_status_raw(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _uint(value, "measurement_status", 16)
    if not isinstance(value, list | tuple):
        raise PayloadError(f"measurement_status must be a list of names, got {value!r}")
    ranges = {name: code for code, name in _PR_RANGE.items()}
    rng = [ranges[n] for n in value if n in ranges]
    if len(rng) > 1:
        raise PayloadError("measurement_status: at most one pulse_rate_* range name")
    rest = [n for n in value if n not in ranges]
    raw = _flags(rest, "measurement_status", BP_STATUS, 16)
    if raw & 0x18:
        raise PayloadError("measurement_status: bits 3-4 are the pulse rate range field")
    return raw | (rng[0] << 3 if rng else 0)


def _to_mmhg(raw: int, kpa: bool, values: Values, unavailable: dict[str, str], key: str) -> None:
    _put_sfloat(values, unavailable, key, raw)
    value = values[key]
    if kpa and isinstance(value, int | float):
        values[key] = round(value * MMHG_PER_KPA, 1)


#: time stamp (7), pulse rate (2), user id (1), measurement status (2).
_BP_LENGTHS: Final = lengths_by_flags(7, ((0x02, 7), (0x04, 2), (0x08, 1), (0x10, 2)))


def bp_decode(p: bytes) -> tuple[Values, Extra]:
    """0x2A35 Blood Pressure Measurement: flags (bit0 kPa, bit1 time stamp, bit2 pulse
    rate, bit3 user id, bit4 status), systolic, diastolic, MAP, optional fields."""
    n = len(p)
    if n < 7:
        raise PayloadError(f"blood pressure: {n} bytes, at least 7 needed")
    flags = p[0]
    _check_len(p, _BP_LENGTHS[flags], "blood pressure")
    kpa = bool(flags & 0x01)
    values: Values = {}
    unavailable: dict[str, str] = {}
    sys_raw, dia_raw, map_raw = _U16X3.unpack_from(p, 1)
    _to_mmhg(sys_raw, kpa, values, unavailable, "systolic_mmhg")
    _to_mmhg(dia_raw, kpa, values, unavailable, "diastolic_mmhg")
    _to_mmhg(map_raw, kpa, values, unavailable, "map_mmhg")
    extra: Extra = {}
    if kpa:
        extra["device_unit"] = "kPa"
    pos = 7
    if flags & 0x02:
        extra["timestamp"] = _read_time(p, pos)
        pos += 7
    if flags & 0x04:
        _put_sfloat(values, unavailable, "pulse_bpm", _U16.unpack_from(p, pos)[0])
        pos += 2
    if flags & 0x08:
        extra["user_id"] = p[pos]
        pos += 1
    if flags & 0x10:
        extra["measurement_status"] = _bp_status_names(_U16.unpack_from(p, pos)[0])
    _finish(values, extra, unavailable)
    return values, extra


def _mmhg_field(
    values: Mapping[str, Any], unavailable: Mapping[str, Any], key: str, kpa: bool
) -> int:
    value = values.get(key)
    if value is None or not kpa:
        return _sf(values, unavailable, key)
    try:
        return sfloat_encode(_number(value, key) / MMHG_PER_KPA, decimals=1)
    except ValueError as exc:
        raise PayloadError(f"{key}: {exc}") from None


def bp_encode(record: Mapping[str, Any]) -> bytes:
    values, unavailable = _values(record), _unavailable(record)
    kpa = _device_unit(record, "blood pressure", "mmHg", "kPa")
    flags = 0x01 if kpa else 0
    out = bytearray(
        _U16X3.pack(
            _mmhg_field(values, unavailable, "systolic_mmhg", kpa),
            _mmhg_field(values, unavailable, "diastolic_mmhg", kpa),
            _mmhg_field(values, unavailable, "map_mmhg", kpa),
        )
    )
    if "timestamp" in record:
        flags |= 0x02
        out += _write_time(record["timestamp"])
    if "pulse_bpm" in values:
        flags |= 0x04
        out += _U16.pack(_sf(values, unavailable, "pulse_bpm"))
    if "user_id" in record:
        flags |= 0x08
        out.append(_uint(record["user_id"], "user_id", 8))
    if "measurement_status" in record:
        flags |= 0x10
        out += _U16.pack(_bp_status_raw(record["measurement_status"]))
    return bytes([flags]) + bytes(out)


# ---------------------------------------------------------------- 0x2A1C temperature

TEMPERATURE_TYPES: Final[dict[int, str]] = {
    1: "armpit",
    2: "body",
    3: "ear",
    4: "finger",
    5: "gastrointestinal",
    6: "mouth",
    7: "rectum",
    8: "toe",
    9: "tympanum",
}
_TEMPERATURE_CODES: Final[dict[str, int]] = {v: k for k, v in TEMPERATURE_TYPES.items()}


#: time stamp (7), temperature type (1).
_TEMPERATURE_LENGTHS: Final = lengths_by_flags(5, ((0x02, 7), (0x04, 1)))
_TEMPERATURE_LOW, _TEMPERATURE_HIGH = LIMITS["temperature_c"]


def temperature_decode(p: bytes) -> tuple[Values, Extra]:
    """0x2A1C Temperature Measurement: flags (bit0 °F, bit1 time stamp, bit2 type), FLOAT."""
    n = len(p)
    if n < 5:
        raise PayloadError(f"temperature: {n} bytes, at least 5 needed")
    flags = p[0]
    _check_len(p, _TEMPERATURE_LENGTHS[flags], "temperature")
    values: Values = {}
    extra: Extra = {}
    unavailable: dict[str, str] = {}
    value = float_decode(_U32.unpack_from(p, 1)[0])
    celsius: Number | None = None
    if isinstance(value, str):
        values["temperature_c"] = None
        unavailable["temperature_c"] = value
    else:
        celsius = values["temperature_c"] = (
            round((value - 32) * 5 / 9, 2) if flags & 0x01 else value
        )
    if flags & 0x01:
        extra["device_unit"] = "degF"
    pos = 5
    if flags & 0x02:
        extra["timestamp"] = _read_time(p, pos)
        pos += 7
    if flags & 0x04:
        code = p[pos]
        extra["temperature_type"] = TEMPERATURE_TYPES.get(code, code)
    if unavailable:
        extra["unavailable"] = unavailable
    elif celsius is not None and not _TEMPERATURE_LOW <= celsius <= _TEMPERATURE_HIGH:
        raise PayloadError(describe("temperature_c", celsius))
    return values, extra


def temperature_encode(record: Mapping[str, Any]) -> bytes:
    values, unavailable = _values(record), _unavailable(record)
    fahrenheit = _device_unit(record, "temperature", "degC", "degF")
    value = values.get("temperature_c")
    try:
        if value is None:
            raw = float_encode(str(unavailable.get("temperature_c", "nan")))
        elif fahrenheit:
            raw = float_encode(_number(value, "temperature_c") * 9 / 5 + 32, decimals=1)
        else:
            raw = float_encode(_number(value, "temperature_c"))
    except ValueError as exc:
        raise PayloadError(f"temperature_c: {exc}") from None
    flags = 0x01 if fahrenheit else 0
    out = bytearray(_U32.pack(raw))
    if "timestamp" in record:
        flags |= 0x02
        out += _write_time(record["timestamp"])
    if "temperature_type" in record:
        flags |= 0x04
        t = record["temperature_type"]
        code = _TEMPERATURE_CODES.get(t) if isinstance(t, str) else t
        if code is None:
            raise PayloadError(f"unknown temperature_type {t!r}")
        out.append(_uint(code, "temperature_type", 8))
    return bytes([flags]) + bytes(out)


# ---------------------------------------------------------------- 0x2A37 heart rate

_CONTACT: Final[dict[int, str]] = {1: "not_supported", 2: "not_detected", 3: "detected"}
_HR_LOW, _HR_HIGH = LIMITS["heart_rate_bpm"]
_RR_LOW, _RR_HIGH = LIMITS["rr_ms"]
_CONTACT_CODES: Final[dict[str, int]] = {v: k for k, v in _CONTACT.items()}


def heart_rate_decode(p: bytes) -> tuple[Values, Extra]:
    """0x2A37 Heart Rate Measurement: flags (bit0 u16 rate, bits1-2 sensor contact, bit3
    energy expended, bit4 RR intervals in 1/1024 s, as many as the value holds)."""
    n = len(p)
    flags = p[0] if n else 0
    pos = 3 if flags & 0x01 else 2
    if n < pos:
        raise PayloadError(f"heart rate: {n} bytes, at least {pos} needed")
    hr: int = _U16.unpack_from(p, 1)[0] if flags & 0x01 else p[1]
    values: Values = {"heart_rate_bpm": hr}
    extra: Extra = {}
    if flags & 0x01:
        extra["hr_uint16"] = True
    contact = (flags >> 1) & 0x3
    if contact:
        extra["sensor_contact"] = _CONTACT[contact]
    if flags & 0x08:
        if n < pos + 2:
            raise PayloadError("heart rate: energy expended announced but missing")
        extra["energy_expended_kj"] = _U16.unpack_from(p, pos)[0]
        pos += 2
    rest = n - pos
    rr: list[float] = []
    if flags & 0x10:
        if rest % 2:
            raise PayloadError(f"heart rate: {rest} bytes of RR intervals, not a whole number")
        ticks = struct.unpack_from(f"<{rest // 2}H", p, pos)
        rr = values["rr_ms"] = [t * 1000 / 1024 for t in ticks]
    elif rest:
        raise PayloadError(f"heart rate: {rest} unexpected trailing bytes")
    # The range check, inlined (an ECG patch sends a frame a beat).
    if not _HR_LOW <= hr <= _HR_HIGH:
        raise PayloadError(describe("heart_rate_bpm", hr))
    if rr and not (min(rr) >= _RR_LOW and max(rr) <= _RR_HIGH):
        raise PayloadError(out_of_range("rr_ms", rr) or describe("rr_ms", min(rr)))
    return values, extra


def heart_rate_encode(record: Mapping[str, Any]) -> bytes:
    values = _values(record)
    hr = values.get("heart_rate_bpm")
    hr_int = _rounded(hr, "heart_rate_bpm")
    flags = 0
    out = bytearray()
    if hr_int > 255 or record.get("hr_uint16"):
        flags |= 0x01
        out += _U16.pack(_uint(hr_int, "heart_rate_bpm", 16))
    else:
        out.append(_uint(hr_int, "heart_rate_bpm", 8))
    contact = record.get("sensor_contact")
    if contact is not None:
        if contact not in _CONTACT_CODES:
            raise PayloadError(
                f"sensor_contact is one of {sorted(_CONTACT_CODES)}, got {contact!r}"
            )
        flags |= _CONTACT_CODES[contact] << 1
    if "energy_expended_kj" in record:
        flags |= 0x08
        out += _U16.pack(_uint(record["energy_expended_kj"], "energy_expended_kj", 16))
    if "rr_ms" in values:
        flags |= 0x10
        rr = values["rr_ms"]
        if not isinstance(rr, list):
            raise PayloadError("rr_ms must be a list of milliseconds")
        for ms in rr:
            out += _U16.pack(_uint(_rounded(ms, "rr_ms", 1.024), "rr_ms (1/1024 s)", 16))
    return bytes([flags]) + bytes(out)


# ---------------------------------------------------------------- 0x2A18 glucose

GLUCOSE_SENSOR_STATUS: Final[dict[int, str]] = {
    0: "battery_low",
    1: "sensor_malfunction",
    2: "sample_size_insufficient",
    3: "strip_insertion_error",
    4: "strip_type_incorrect",
    5: "result_too_high",
    6: "result_too_low",
    7: "temperature_too_high",
    8: "temperature_too_low",
    9: "read_interrupted",
    10: "general_device_fault",
    11: "time_fault",
}


def _glucose_mg_dl(raw: int, mol: bool, values: Values, unavailable: dict[str, str]) -> None:
    _put_sfloat(values, unavailable, "glucose_mg_dl", raw)
    value = values["glucose_mg_dl"]
    if isinstance(value, int | float):
        factor = 1000 * MG_DL_PER_MMOL_L if mol else MG_DL_PER_KG_L
        values["glucose_mg_dl"] = round(value * factor, 1)


def glucose_decode(p: bytes) -> tuple[Values, Extra]:
    """0x2A18 Glucose Measurement: flags, sequence, base time, [time offset], [concentration,
    type-sample location], [sensor status annunciation].

    The Bluetooth SIG layout: bit0 time offset, bit1 concentration + type/location
    present, bit2 unit mol/L (else kg/L), bit3 sensor status, bit4 context follows.
    protocols.md summarises it as "concentration … in kg/L (bit1 set: mol/L)" with no
    type/location byte; a payload of exactly that shape (one SFLOAT after the time
    fields, no status) is accepted too, its unit read from bit1 or bit2, because a
    reading must never be lost — nor read in the wrong unit — over that ambiguity.
    The encoder writes the SIG layout.
    """
    n = len(p)
    if n < 10:
        raise PayloadError(f"glucose: {n} bytes, at least 10 needed")
    flags = p[0]
    extra: Extra = {"sequence": _U16.unpack_from(p, 1)[0], "base_time": _read_time(p, 3)}
    pos = 10
    if flags & 0x01:
        if n < 12:
            raise PayloadError("glucose: time offset announced but missing")
        extra["time_offset_min"] = _S16.unpack_from(p, pos)[0]
        pos += 2
    rest = n - pos
    status_len = 2 if flags & 0x08 else 0
    values: Values = {}
    unavailable: dict[str, str] = {}
    if flags & 0x02 and rest == 3 + status_len:
        mol = bool(flags & 0x04)
        _glucose_mg_dl(_U16.unpack_from(p, pos)[0], mol, values, unavailable)
        extra["device_unit"] = "mol/L" if mol else "kg/L"
        typeloc = p[pos + 2]
        extra["sample_type"] = typeloc & 0x0F
        extra["sample_location"] = typeloc >> 4
        pos += 3
    elif rest == 2 and not flags & 0x08:
        mol = bool(flags & 0x06)
        _glucose_mg_dl(_U16.unpack_from(p, pos)[0], mol, values, unavailable)
        extra["device_unit"] = "mol/L" if mol else "kg/L"
        pos += 2
    elif not flags & 0x02 and rest == status_len:
        pass  # a record without concentration (context only): kept, values empty
    else:
        raise PayloadError(f"glucose: {rest} bytes after the time fields do not match flags")
    if flags & 0x08:
        extra["sensor_status"] = bits_to_names(_U16.unpack_from(p, pos)[0], GLUCOSE_SENSOR_STATUS)
    if flags & 0x10:
        extra["context_follows"] = True
    _finish(values, extra, unavailable)
    return values, extra


def glucose_encode(record: Mapping[str, Any]) -> bytes:
    values, unavailable = _values(record), _unavailable(record)
    mol = _device_unit(record, "glucose", "kg/L", "mol/L")
    flags = 0
    out = bytearray(_U16.pack(_uint(record.get("sequence", 0), "sequence", 16)))
    out += _write_time(record.get("base_time", "0000-00-00T00:00:00"))
    if "time_offset_min" in record:
        flags |= 0x01
        offset = record["time_offset_min"]
        if isinstance(offset, bool) or not isinstance(offset, int) or not -32768 <= offset <= 32767:
            raise PayloadError(f"time_offset_min must be an int16, got {offset!r}")
        out += _S16.pack(offset)
    if "glucose_mg_dl" in values:
        flags |= 0x02 | (0x04 if mol else 0)
        value = values["glucose_mg_dl"]
        try:
            if value is None:
                raw = sfloat_encode(str(unavailable.get("glucose_mg_dl", "nan")))
            else:
                factor = 1000 * MG_DL_PER_MMOL_L if mol else MG_DL_PER_KG_L
                raw = sfloat_encode(_number(value, "glucose_mg_dl") / factor)
        except ValueError as exc:
            raise PayloadError(f"glucose_mg_dl: {exc}") from None
        out += _U16.pack(raw)
        sample_type = _uint(record.get("sample_type", 1), "sample_type", 4)
        location = _uint(record.get("sample_location", 1), "sample_location", 4)
        out.append(sample_type | location << 4)
    if "sensor_status" in record:
        flags |= 0x08
        out += _U16.pack(
            _flags(record["sensor_status"], "sensor_status", GLUCOSE_SENSOR_STATUS, 16)
        )
    if record.get("context_follows"):
        flags |= 0x10
    return bytes([flags]) + bytes(out)


# ---------------------------------------------------------------- 0x2A9D weight


#: time stamp (7), user id (1), BMI and height (4).
_WEIGHT_LENGTHS: Final = lengths_by_flags(3, ((0x02, 7), (0x04, 1), (0x08, 4)))


def weight_decode(p: bytes) -> tuple[Values, Extra]:
    """0x2A9D Weight Measurement: flags (bit0 imperial, bit1 time stamp, bit2 user id,
    bit3 BMI and height), weight u16 (0.005 kg or 0.01 lb; 0xFFFF = unsuccessful)."""
    n = len(p)
    if n < 3:
        raise PayloadError(f"weight: {n} bytes, at least 3 needed")
    flags = p[0]
    _check_len(p, _WEIGHT_LENGTHS[flags], "weight")
    imperial = bool(flags & 0x01)
    raw = _U16.unpack_from(p, 1)[0]
    values: Values = {}
    extra: Extra = {}
    if raw == 0xFFFF:
        values["weight_kg"] = None
        extra["unavailable"] = {"weight_kg": "measurement_unsuccessful"}
    elif imperial:
        values["weight_kg"] = round(raw * 0.01 * KG_PER_LB, 3)
    else:
        values["weight_kg"] = round(raw * 0.005, 3)
    if imperial:
        extra["device_unit"] = "lb"
    pos = 3
    if flags & 0x02:
        extra["timestamp"] = _read_time(p, pos)
        pos += 7
    if flags & 0x04:
        extra["user_id"] = p[pos]
        pos += 1
    if flags & 0x08:
        bmi, height = _U16X2.unpack_from(p, pos)
        extra["bmi"] = round(bmi * 0.1, 1)
        if imperial:
            extra["height_in"] = round(height * 0.1, 1)
        else:
            extra["height_m"] = round(height * 0.001, 3)
    _checked(values)
    return values, extra


def weight_encode(record: Mapping[str, Any]) -> bytes:
    values = _values(record)
    imperial = _device_unit(record, "weight", "kg", "lb")
    value = values.get("weight_kg")
    if value is None:
        raw = 0xFFFF
    elif imperial:
        raw = _rounded(_number(value, "weight_kg") / KG_PER_LB, "weight_kg", 100)
    else:
        raw = _rounded(value, "weight_kg", 200)
    if not 0 <= raw < 0xFFFF:
        raise PayloadError(f"weight_kg {value!r} out of range")
    flags = 0x01 if imperial else 0
    out = bytearray(_U16.pack(raw))
    if "timestamp" in record:
        flags |= 0x02
        out += _write_time(record["timestamp"])
    if "user_id" in record:
        flags |= 0x04
        out.append(_uint(record["user_id"], "user_id", 8))
    if "bmi" in record:
        flags |= 0x08
        height_key = "height_in" if imperial else "height_m"
        bmi = _rounded(record["bmi"], "bmi", 10)
        height_raw = _rounded(record.get(height_key, 0), height_key, 10 if imperial else 1000)
        out += _U16X2.pack(_uint(bmi, "bmi", 16), _uint(height_raw, height_key, 16))
    return bytes([flags]) + bytes(out)


# ---------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class Characteristic:
    """One GATT characteristic: its UUID16, the contract ``kind`` and its two directions."""

    uuid: int
    name: str
    kind: str
    decode: Callable[[bytes], tuple[Values, Extra]]
    encode: Callable[[Mapping[str, Any]], bytes]
    #: Extras that hold further contract values (PLX Fast and Slow SpO2PR): the codec
    #: range-checks them like ``values``.
    nested: tuple[str, ...] = ()


CHARACTERISTICS: Final[dict[int, Characteristic]] = {
    c.uuid: c
    for c in (
        Characteristic(
            0x2A5E,
            "PLX Spot-Check Measurement",
            "spo2",
            plx_spot_check_decode,
            plx_spot_check_encode,
        ),
        Characteristic(
            0x2A5F,
            "PLX Continuous Measurement",
            "spo2",
            plx_continuous_decode,
            plx_continuous_encode,
            ("fast", "slow"),
        ),
        Characteristic(0x2A35, "Blood Pressure Measurement", "bp", bp_decode, bp_encode),
        Characteristic(
            0x2A1C, "Temperature Measurement", "temperature", temperature_decode, temperature_encode
        ),
        Characteristic(
            0x2A37, "Heart Rate Measurement", "heart_rate", heart_rate_decode, heart_rate_encode
        ),
        Characteristic(0x2A18, "Glucose Measurement", "glucose", glucose_decode, glucose_encode),
        Characteristic(0x2A9D, "Weight Measurement", "weight", weight_decode, weight_encode),
    )
}

#: The characteristic a record of each kind is encoded with unless it names a ``uuid``.
DEFAULT_UUID: Final[dict[str, int]] = {
    "spo2": 0x2A5F,
    "bp": 0x2A35,
    "temperature": 0x2A1C,
    "heart_rate": 0x2A37,
    "glucose": 0x2A18,
    "weight": 0x2A9D,
}
