"""Every codec refuses physiologically impossible values, on encode and on decode, the
same way: one range table (``protocols.codecs``, built on ``protocols.vocab``), one
message, an :class:`EncodeError` when encoding and a ``payload`` error record (never a
reading) when decoding."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codecs import (
    PHYSIOLOGICAL_RANGES,
    Decoded,
    DecodeError,
    EncodeError,
    cobs_encode,
    crc16_ccitt_false,
    get_codec,
    sfloat_encode,
)
from protocols.codecs._gatt import CHARACTERISTICS
from protocols.vocab import LOINC, VALUE_KEYS

SBF1 = get_codec("sbf1")
MASIMO = get_codec("masimo-ascii1")
NONIN = get_codec("nonin-df8")
CONTEC = get_codec("contec-cms50d")


def sbf1_measurement(uuid: int, payload: bytes) -> bytes:
    """A well-formed sbf1 MEASUREMENT frame around a hand-made characteristic value."""
    body = struct.pack("<BBHIH", 1, 2, 1, 1_790_000_000, uuid) + payload
    return cobs_encode(body + struct.pack("<H", crc16_ccitt_false(body))) + b"\x00"


def payload_of(uuid: int, record: dict[str, Any]) -> bytes:
    """The characteristic layout alone (no range check: that is the codec's job)."""
    return CHARACTERISTICS[uuid].encode(record)


def only_error(items: list[Any]) -> DecodeError:
    assert len(items) == 1, [i.to_json() for i in items]
    (item,) = items
    assert isinstance(item, DecodeError), item.to_json()
    return item


def test_the_table_follows_the_vocabulary_of_the_models() -> None:
    """The codecs cannot accept what the message models refuse (protocols.vocab)."""
    for key, info in VALUE_KEYS.items():
        if info.loinc is not None:
            code = LOINC[info.loinc]
            assert (PHYSIOLOGICAL_RANGES[key].low, PHYSIOLOGICAL_RANGES[key].high) == (
                code.low,
                code.high,
            ), key
    assert set(VALUE_KEYS) <= set(PHYSIOLOGICAL_RANGES)


def test_sbf1_refuses_spo2_900_on_encode_and_on_decode() -> None:
    record = {"kind": "spo2", "values": {"spo2_pct": 900, "pulse_bpm": 72}}
    with pytest.raises(EncodeError, match=r"spo2_pct 900 .*0\.\.100"):
        SBF1.encode(record)
    wire = sbf1_measurement(0x2A5F, payload_of(0x2A5F, record))
    error = only_error(SBF1.decode(wire))
    assert error.reason == "payload"
    assert "spo2_pct 900" in error.detail and "0..100" in error.detail
    assert error.raw == wire


# (kind, uuid, record, key): impossible values for every sbf1 characteristic.
SBF1_IMPOSSIBLE = [
    ("spo2", 0x2A5F, {"values": {"spo2_pct": 98, "pulse_bpm": 400}}, "pulse_bpm"),
    ("spo2", 0x2A5E, {"values": {"spo2_pct": 101, "pulse_bpm": 72}}, "spo2_pct"),
    (
        "spo2",
        0x2A5F,
        {"values": {"spo2_pct": 98, "pulse_bpm": 72}, "fast": {"spo2_pct": 150, "pulse_bpm": 70}},
        "spo2_pct",
    ),
    (
        "spo2",
        0x2A5F,
        {"values": {"spo2_pct": 98, "pulse_bpm": 72}, "slow": {"spo2_pct": 97, "pulse_bpm": 999}},
        "pulse_bpm",
    ),
    (
        "bp",
        0x2A35,
        {"values": {"systolic_mmhg": 400, "diastolic_mmhg": 80, "map_mmhg": 93}},
        "systolic_mmhg",
    ),
    (
        "bp",
        0x2A35,
        {"values": {"systolic_mmhg": 120, "diastolic_mmhg": 300, "map_mmhg": 93}},
        "diastolic_mmhg",
    ),
    (
        "bp",
        0x2A35,
        {"values": {"systolic_mmhg": 120, "diastolic_mmhg": 80, "map_mmhg": 93, "pulse_bpm": 500}},
        "pulse_bpm",
    ),
    ("temperature", 0x2A1C, {"values": {"temperature_c": 60.0}}, "temperature_c"),
    ("temperature", 0x2A1C, {"values": {"temperature_c": 4.0}}, "temperature_c"),
    ("heart_rate", 0x2A37, {"values": {"heart_rate_bpm": 400}}, "heart_rate_bpm"),
    ("heart_rate", 0x2A37, {"values": {"heart_rate_bpm": 72, "rr_ms": [800.0, 50.0]}}, "rr_ms"),
    ("glucose", 0x2A18, {"values": {"glucose_mg_dl": 4000}}, "glucose_mg_dl"),
    ("weight", 0x2A9D, {"values": {"weight_kg": 0.0}}, "weight_kg"),
]


@pytest.mark.parametrize(("kind", "uuid", "record", "key"), SBF1_IMPOSSIBLE)
def test_sbf1_refuses_impossible_values_both_ways(
    kind: str, uuid: int, record: dict[str, Any], key: str
) -> None:
    full = {"kind": kind, "uuid": f"0x{uuid:04X}", **record}
    with pytest.raises(EncodeError, match=key):
        SBF1.encode(full)
    wire = sbf1_measurement(uuid, payload_of(uuid, full))
    error = only_error(SBF1.decode(wire))
    assert error.reason == "payload"
    assert key in error.detail and "physiological" in error.detail


def test_sbf1_checks_the_converted_value() -> None:
    """45 kPa is 337.5 mmHg: the check is on the contract's unit, after conversion."""
    payload = bytes([0x01]) + struct.pack(
        "<HHH", sfloat_encode(45.0), sfloat_encode(10.0), sfloat_encode(12.0)
    )
    error = only_error(SBF1.decode(sbf1_measurement(0x2A35, payload)))
    assert error.reason == "payload" and "systolic_mmhg 337.5" in error.detail
    # 120.0 °F is 48.89 °C: impossible in a living patient.
    f_payload = payload_of(0x2A1C, {"values": {"temperature_c": 48.9}, "device_unit": "degF"})
    error = only_error(SBF1.decode(sbf1_measurement(0x2A1C, f_payload)))
    assert "temperature_c 48.89" in error.detail


def test_masimo_refuses_impossible_values_both_ways() -> None:
    with pytest.raises(EncodeError, match="pulse_bpm 400"):
        MASIMO.encode({"values": {"spo2_pct": 98, "pulse_bpm": 400}})
    with pytest.raises(EncodeError, match="spco_pct"):
        MASIMO.encode({"values": {"spo2_pct": 98}, "aux": {"spco_pct": 150.0}})
    full = (
        b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=400 PI=20.00% SPCO=01.0% SPMET=00.5% "
        b"DESAT=01 PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820\r\n"
    )
    for line in (full, b"SPO2=098% BPM=400\r\n"):  # the fast path and the general one
        error = only_error(MASIMO.decode(line))
        assert error.reason == "payload" and "pulse_bpm 400" in error.detail, error.detail
    error = only_error(
        MASIMO.decode(full.replace(b"SPCO=01.0%", b"SPCO=101.0%").replace(b"400", b"072"))
    )
    assert error.reason == "payload" and "spco_pct 101" in error.detail


def test_nonin_refuses_an_impossible_heart_rate_both_ways() -> None:
    with pytest.raises(EncodeError, match="pulse_bpm 400"):
        NONIN.encode({"values": {"spo2_pct": 98, "pulse_bpm": 400}})
    wire = bytes((0x80 | 400 >> 7, 400 & 0x7F, 98, 0))
    error = only_error(NONIN.decode(wire))
    assert error.reason == "payload" and "pulse_bpm 400" in error.detail
    # 511 still means "missing", not an impossible rate.
    (item,) = NONIN.decode(bytes((0x83, 0x7F, 98, 0)))
    assert isinstance(item, Decoded) and item.values["pulse_bpm"] is None


def test_every_codec_says_the_same_thing_about_the_same_value() -> None:
    record = {"kind": "spo2", "values": {"spo2_pct": 101, "pulse_bpm": 72}}
    messages = set()
    for codec in (SBF1, MASIMO, NONIN, CONTEC):
        with pytest.raises(EncodeError) as exc:
            codec.encode(record)
        messages.add(str(exc.value))
    assert len(messages) == 1, messages
    (message,) = messages
    assert "spo2_pct 101" in message and "0..100" in message
    details = {
        only_error(SBF1.decode(sbf1_measurement(0x2A5F, payload_of(0x2A5F, record)))).detail,
        only_error(MASIMO.decode(b"SPO2=101% BPM=072\r\n")).detail,
        only_error(NONIN.decode(bytes((0x80, 72, 101, 0)))).detail,
        only_error(CONTEC.decode(bytes((0x85, 0x3C, 0x04, 72, 101)))).detail,
    }
    assert details == {message}


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "spo2", "values": {"spo2_pct": 0, "pulse_bpm": 300}},
        {"kind": "spo2", "values": {"spo2_pct": 100, "pulse_bpm": 0}},
        {"kind": "temperature", "values": {"temperature_c": 25.0}},
        {"kind": "temperature", "values": {"temperature_c": 45.0}},
        {"kind": "heart_rate", "values": {"heart_rate_bpm": 300, "rr_ms": [200.0]}},
        {"kind": "glucose", "values": {"glucose_mg_dl": 20}},
    ],
)
def test_limits_themselves_are_accepted(record: dict[str, Any]) -> None:
    (item,) = SBF1.decode(SBF1.encode(record))
    assert isinstance(item, Decoded), item.to_json()


def test_unavailable_values_are_not_range_errors() -> None:
    """NaN on the wire is "no reading" (None), not an impossible number."""
    payload = bytes([0]) + struct.pack("<HH", 0x07FF, sfloat_encode(72))
    (item,) = SBF1.decode(sbf1_measurement(0x2A5F, payload))
    assert isinstance(item, Decoded) and item.values == {"spo2_pct": None, "pulse_bpm": 72}


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "0x2A5F", "kPa", "degF", "lb", "mol/L", "2026-11-23T17:02:03"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
KEYS = [
    "kind", "uuid", "seq", "device_time", "device_unit", "timestamp", "user_id", "bmi",
    "height_m", "height_in", "fast", "slow", "measurement_status", "device_status",
    "pulse_amplitude_index", "device_clock_not_set", "energy_expended_kj", "sensor_contact",
    "hr_uint16", "temperature_type", "sequence", "base_time", "time_offset_min",
    "sample_type", "sample_location", "sensor_status", "context_follows", "model", "serial",
    "firmware", "flags", "error_code", "aux", "alarm", "alarm_code", "exceptions",
    "exception_code", "device_clock", "status", "signal_strength", "pleth", "bar_graph",
]  # fmt: skip
VALUE_KEYS_ = sorted(PHYSIOLOGICAL_RANGES)


@given(
    st.sampled_from(["sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d"]),
    st.sampled_from(["spo2", "bp", "temperature", "heart_rate", "glucose", "weight", "hello"]),
    st.dictionaries(st.sampled_from(VALUE_KEYS_), json_values, max_size=4),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5),
)
def test_encoders_refuse_any_bad_record_with_an_encode_error(
    name: str, kind: str, values: dict[str, Any], extras: dict[str, Any]
) -> None:
    """NaN, infinities, huge numbers, wrong types: an EncodeError, never a crash."""
    record = {"kind": kind, **extras, "values": values}
    try:
        get_codec(name).encode(record)
    except EncodeError as exc:
        assert str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("key", ["pleth", "bar_graph", "signal_strength"])
def test_contec_refuses_non_finite_fields(key: str) -> None:
    for bad in (math.nan, math.inf, -math.inf):
        record = {"values": {"spo2_pct": 98, "pulse_bpm": 70}, key: bad}
        with pytest.raises(EncodeError, match=key):
            CONTEC.encode(record)


def test_weight_extras_that_overflow_are_refused() -> None:
    for extra in ({"bmi": math.nan}, {"bmi": 22.0, "height_m": math.inf}, {"bmi": 1e308}):
        with pytest.raises(EncodeError):
            SBF1.encode({"kind": "weight", "values": {"weight_kg": 70.0}, **extra})
