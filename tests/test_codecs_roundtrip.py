"""encode → decode gives the same values (within the format's resolution), and decode →
encode gives the same bytes for every record the encoders produce."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codecs import Decoded, EncodeError, get_codec

SBF1 = get_codec("sbf1")

seq = st.integers(0, 0xFFFF)
device_time = st.one_of(st.none(), st.integers(1, 2**32 - 1))
timestamp = st.builds(
    lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}",
    st.integers(1582, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)


def tenths(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(round(lo * 10), round(hi * 10)).map(lambda v: v / 10)


def optional(key: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), strategy.map(lambda v: {key: v}))


def record(kind: str, values: st.SearchStrategy[dict[str, Any]], *extras: Any) -> Any:
    def build(v: dict[str, Any], s: int, t: int | None, *ex: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": kind, "values": v, "seq": s, "device_time": t}
        for e in ex:
            out.update(e)
        return out

    return st.builds(build, values, seq, device_time, *extras)


spo2_values = st.fixed_dictionaries(
    {"spo2_pct": st.one_of(st.none(), st.integers(0, 100)), "pulse_bpm": st.integers(20, 300)}
)
plx_continuous = record(
    "spo2",
    spo2_values,
    optional(
        "fast",
        st.fixed_dictionaries({"spo2_pct": st.integers(0, 100), "pulse_bpm": st.integers(20, 300)}),
    ),
    optional(
        "measurement_status",
        st.sets(st.sampled_from(["validated_data", "measurement_ongoing", "bit0"])).map(sorted),
    ),
    optional(
        "device_status",
        st.sets(st.sampled_from(["low_perfusion", "sensor_displaced", "bit20"])).map(sorted),
    ),
    optional("pulse_amplitude_index", tenths(0, 20)),
)
plx_spot = record(
    "spo2",
    spo2_values,
    st.just({"uuid": "0x2A5E"}),
    optional("timestamp", timestamp),
    optional("device_clock_not_set", st.just(True)),
)
bp = record(
    "bp",
    st.fixed_dictionaries(
        {
            "systolic_mmhg": st.integers(40, 280),
            "diastolic_mmhg": st.integers(20, 180),
            "map_mmhg": st.integers(30, 220),
        },
        optional={"pulse_bpm": st.integers(20, 300)},
    ),
    optional("device_unit", st.just("kPa")),
    optional("timestamp", timestamp),
    optional("user_id", st.integers(0, 255)),
    optional(
        "measurement_status",
        st.sampled_from([["body_movement"], ["irregular_pulse", "pulse_rate_above_range"]]),
    ),
)
temperature = record(
    "temperature",
    st.fixed_dictionaries({"temperature_c": tenths(30, 44)}),
    optional("device_unit", st.just("degF")),
    optional("temperature_type", st.sampled_from(["ear", "armpit", "rectum"])),
)
heart_rate = record(
    "heart_rate",
    st.fixed_dictionaries(
        {"heart_rate_bpm": st.integers(20, 300)},
        optional={
            "rr_ms": st.lists(st.integers(200, 2500).map(lambda t: t * 1000 / 1024), max_size=20)
        },
    ),
    optional("sensor_contact", st.sampled_from(["detected", "not_detected", "not_supported"])),
    optional("energy_expended_kj", st.integers(0, 65535)),
)
glucose = record(
    "glucose",
    st.fixed_dictionaries({"glucose_mg_dl": st.integers(20, 600)}),
    optional("device_unit", st.just("mol/L")),
    optional("time_offset_min", st.integers(-32768, 32767)),
    optional("sensor_status", st.just(["strip_insertion_error"])),
    st.fixed_dictionaries({"sequence": seq, "base_time": timestamp}),
)
weight = record(
    "weight",
    st.fixed_dictionaries({"weight_kg": st.integers(400, 60000).map(lambda v: v * 5 / 1000)}),
    optional("timestamp", timestamp),
    optional("user_id", st.integers(0, 255)),
)
weight_lb = record(
    "weight",
    st.fixed_dictionaries(
        {"weight_kg": st.integers(1000, 60000).map(lambda v: round(v * 0.0045359237, 3))}
    ),
    st.just({"device_unit": "lb"}),
)
text16 = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=16)
hello = record(
    "hello",
    st.fixed_dictionaries({"battery_pct": st.one_of(st.none(), st.integers(0, 100))}),
    st.fixed_dictionaries(
        {
            "model": text16,
            "serial": text16,
            "firmware": st.tuples(*[st.integers(0, 255)] * 3).map(lambda t: ".".join(map(str, t))),
        }
    ),
)
status = record(
    "status",
    st.fixed_dictionaries({"battery_pct": st.integers(0, 100)}),
    st.fixed_dictionaries(
        {
            "flags": st.sets(
                st.sampled_from(["low_battery", "sensor_off", "charging", "bit9"])
            ).map(sorted),
            "error_code": st.integers(0, 255),
        }
    ),
)

SBF1_RECORDS = st.one_of(
    plx_continuous, plx_spot, bp, temperature, heart_rate, glucose, weight, weight_lb, hello, status
)

# (absolute, relative) resolution of each value key after conversion (protocols.codecs._gatt).
TOLERANCE = {
    "systolic_mmhg": (0.5, 0),  # kPa devices resolve 0.1 kPa = 0.75 mmHg
    "diastolic_mmhg": (0.5, 0),
    "map_mmhg": (0.5, 0),
    "temperature_c": (0.03, 0),  # °F devices resolve 0.1 °F = 0.056 °C
    # SFLOAT keeps 3 to 4 significant digits of the concentration in kg/L or mol/L:
    # half a unit in the last place is at most 0.5 / 204.5 of the value.
    "glucose_mg_dl": (0.05, 0.5 / 204.5),
    "weight_kg": (0.003, 0),  # 0.005 kg or 0.01 lb steps
}


def assert_values_close(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if value is None or isinstance(value, list):
            assert got[key] == pytest.approx(value, abs=1e-9)
        else:
            abs_tol, rel_tol = TOLERANCE.get(key, (1e-9, 0))
            # Both errors add up: quantised on the wire, then rounded once converted.
            assert abs(got[key] - value) <= abs_tol + rel_tol * abs(value) + 1e-9, key


@given(SBF1_RECORDS)
def test_sbf1_encode_decode(rec: dict[str, Any]) -> None:
    wire = SBF1.encode(rec)
    items = SBF1.decode(wire)
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, Decoded), item.to_json()
    line = item.to_json()
    assert line["kind"] == rec["kind"]
    # a clock that is not set travels as 0 (the wire value) and is flagged clock_set=false
    assert (line["seq"], line["device_time"]) == (rec["seq"], rec["device_time"] or 0)
    assert line.get("clock_set", True) is (rec["device_time"] is not None)
    assert_values_close(line["values"], rec["values"])
    for key, value in rec.items():
        if key not in ("kind", "values", "seq", "device_time", "uuid"):
            if isinstance(value, list):  # flag names come back in bit order
                assert sorted(line[key]) == sorted(value), key
            else:
                assert line[key] == value, key
    # ... and the decoded line re-encodes to the very same bytes.
    assert SBF1.encode(line) == wire


masimo_records = st.fixed_dictionaries(
    {
        "values": st.fixed_dictionaries(
            {},
            optional={
                "spo2_pct": st.one_of(st.none(), st.integers(0, 100)),
                "pulse_bpm": st.one_of(st.none(), st.integers(0, 300)),
            },
        ).filter(bool)
    },
    optional={
        "device_clock": st.just("11/23/26 17:02:03"),
        "serial": st.text("0123456789ABCDEF", min_size=1, max_size=12),
        "aux": st.fixed_dictionaries(
            {},
            optional={
                "pi_pct": st.one_of(st.none(), st.integers(0, 2000).map(lambda v: v / 100)),
                "spco_pct": st.integers(0, 400).map(lambda v: v / 10),
                "desat": st.integers(0, 99),
                "pi_delta": st.one_of(st.none(), st.integers(-99, 99)),
                "pvi": st.integers(0, 100),
            },
        ).filter(bool),
        "alarm_code": st.integers(0, 0xFFFF).map(lambda v: f"{v:04X}"),
        "exception_code": st.integers(0, 0xFFFFFF).map(lambda v: f"{v:06X}"),
    },
)


@given(masimo_records)
def test_masimo_encode_decode(rec: dict[str, Any]) -> None:
    codec = get_codec("masimo-ascii1")
    wire = codec.encode(rec)
    (item,) = codec.decode(wire)
    assert isinstance(item, Decoded), item.to_json()
    line = item.to_json()
    assert line["values"] == rec["values"]
    for key in ("device_clock", "serial", "aux", "alarm_code", "exception_code"):
        assert line.get(key) == rec.get(key)
    assert codec.encode(line) == wire


@given(
    st.fixed_dictionaries(
        {
            "values": st.fixed_dictionaries(
                {
                    "spo2_pct": st.one_of(st.none(), st.integers(0, 100)),
                    "pulse_bpm": st.one_of(st.none(), st.integers(0, 300)),
                }
            ),
            "status": st.sets(
                st.sampled_from(["artifact", "out_of_track", "smartpoint", "low_battery"])
            ),
        }
    )
)
def test_nonin_encode_decode(rec: dict[str, Any]) -> None:
    codec = get_codec("nonin-df8")
    rec["status"] = sorted(
        rec["status"], key=["out_of_track", "artifact", "smartpoint", "low_battery"].index
    )
    wire = codec.encode(rec)
    assert len(wire) == 4
    (item,) = codec.decode(wire)
    assert isinstance(item, Decoded)
    assert item.to_json()["values"] == rec["values"]
    assert item.to_json()["status"] == rec["status"]
    assert codec.encode(item.to_json()) == wire


@given(
    st.fixed_dictionaries(
        {
            "values": st.fixed_dictionaries(
                {
                    "spo2_pct": st.one_of(st.none(), st.integers(0, 100)),
                    "pulse_bpm": st.one_of(st.none(), st.integers(0, 254)),
                }
            ),
            "signal_strength": st.integers(0, 15),
            "pleth": st.integers(0, 127),
            "bar_graph": st.integers(0, 15),
        }
    )
)
def test_contec_encode_decode(rec: dict[str, Any]) -> None:
    codec = get_codec("contec-cms50d")
    wire = codec.encode(rec)
    (item,) = codec.decode(wire)
    assert isinstance(item, Decoded)
    line = item.to_json()
    assert line["values"] == rec["values"]
    assert (line["signal_strength"], line["pleth"], line["bar_graph"]) == (
        rec["signal_strength"],
        rec["pleth"],
        rec["bar_graph"],
    )
    assert codec.encode(line) == wire


@pytest.mark.parametrize(
    ("name", "rec", "message"),
    [
        ("sbf1", {"kind": "ecg", "values": {}}, "unknown kind"),
        ("sbf1", {"kind": "spo2", "values": {"spo2_pct": "x", "pulse_bpm": 1}}, "spo2_pct"),
        ("sbf1", {"kind": "spo2", "values": {}, "seq": 70000}, "seq"),
        ("sbf1", {"kind": "bp", "values": {}, "uuid": "0x2A5F"}, "does not carry"),
        ("sbf1", {"kind": "status", "values": {}, "flags": ["nope"]}, "unknown flag"),
        ("sbf1", {"kind": "hello", "values": {}, "model": "é"}, "ASCII"),
        ("masimo-ascii1", {"values": {}}, "spo2_pct or pulse_bpm"),
        ("masimo-ascii1", {"values": {"spo2_pct": 101}}, "0..100"),
        ("nonin-df8", {"values": {"spo2_pct": 98, "pulse_bpm": 600}}, "pulse_bpm"),
        (
            "contec-cms50d",
            {"values": {"spo2_pct": 98, "pulse_bpm": 70}, "status": ["x"]},
            "unknown",
        ),
        ("sbf1", {"error": "crc", "offset": 0, "raw": "zz"}, "hex"),
    ],
)
def test_encode_rejects_bad_records_clearly(name: str, rec: dict[str, Any], message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        get_codec(name).encode(rec)


def test_error_lines_replay_their_raw_bytes() -> None:
    bad = b"\x05\x01\x02\x03\x00"
    (item,) = SBF1.decode(bad)
    assert SBF1.encode(item.to_json()) == bad
