"""Every vector of protocols.md section 1, through the public API and the JSON line."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from protocols.codecs import (
    CODEC_NAMES,
    Codec,
    Decoded,
    DecodeError,
    cobs_encode,
    crc16_ccitt_false,
    get_codec,
)

SBF1 = get_codec("sbf1")


def sbf1_wire(
    payload: bytes, uuid: int = 0, ftype: int = 2, seq: int = 7, device_time: int = 1_790_000_000
) -> bytes:
    """An sbf1 frame built by hand from protocols.md 1.1, independently of the encoder."""
    body = struct.pack("<BBHIH", 1, ftype, seq, device_time, uuid) + payload
    return cobs_encode(body + struct.pack("<H", crc16_ccitt_false(body))) + b"\x00"


def decode_one(codec: Codec, data: bytes) -> dict[str, Any]:
    items = codec.decode(data)
    assert len(items) == 1, [i.to_json() for i in items]
    assert isinstance(items[0], Decoded), items[0].to_json()
    line = items[0].to_json()
    assert json.loads(json.dumps(line)) == line  # really a JSON line
    return line


def test_codec_names_and_lookup() -> None:
    assert CODEC_NAMES == ("sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d")
    for name in CODEC_NAMES:
        assert get_codec(name).name == name
    with pytest.raises(KeyError, match=r"unknown frame format 'nope'.*sbf1"):
        get_codec("nope")


# (uuid, payload hex from protocols.md, kind, expected values)
GATT_VECTORS = [
    (0x2A5F, "00 62 00 48 00", "spo2", {"spo2_pct": 98, "pulse_bpm": 72}),
    (
        0x2A35,
        "04 78 00 50 00 5D 00 48 00",
        "bp",
        {"systolic_mmhg": 120, "diastolic_mmhg": 80, "map_mmhg": 93, "pulse_bpm": 72},
    ),
    (0x2A1C, "00 6F 01 00 FF", "temperature", {"temperature_c": 36.7}),
    (0x2A37, "10 48 41 03", "heart_rate", {"heart_rate_bpm": 72, "rr_ms": [833 * 1000 / 1024]}),
    (0x2A9D, "00 B0 36", "weight", {"weight_kg": 70.0}),
]


@pytest.mark.parametrize(("uuid", "payload", "kind", "values"), GATT_VECTORS)
def test_sbf1_measurement_vectors(
    uuid: int, payload: str, kind: str, values: dict[str, Any]
) -> None:
    line = decode_one(SBF1, sbf1_wire(bytes.fromhex(payload), uuid))
    assert line["kind"] == kind
    assert line["values"] == values
    assert line["offset"] == 0
    assert line["seq"] == 7
    assert line["device_time"] == 1_790_000_000
    assert line["uuid"] == f"0x{uuid:04X}"


@pytest.mark.parametrize(("uuid", "payload", "kind", "values"), GATT_VECTORS)
def test_sbf1_encoder_reproduces_the_vectors(
    uuid: int, payload: str, kind: str, values: dict[str, Any]
) -> None:
    record = {"kind": kind, "values": values, "seq": 7, "device_time": 1_790_000_000}
    assert SBF1.encode(record) == sbf1_wire(bytes.fromhex(payload), uuid)


def test_heart_rate_rr_interval_in_ms() -> None:
    line = decode_one(SBF1, sbf1_wire(bytes.fromhex("10 48 41 03"), 0x2A37))
    assert line["values"]["rr_ms"] == [pytest.approx(813.4765625)]


def test_plx_spot_check_with_options() -> None:
    payload = bytes.fromhex("1F 62 00 48 00") + struct.pack("<HBBBBB", 2026, 11, 23, 17, 2, 3)
    payload += struct.pack("<H", 1 << 7) + (1 << 5).to_bytes(3, "little") + bytes.fromhex("0F F0")
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A5E))
    assert line["values"] == {"spo2_pct": 98, "pulse_bpm": 72}
    assert line["timestamp"] == "2026-11-23T17:02:03"
    assert line["measurement_status"] == ["validated_data"]
    assert line["device_status"] == ["low_perfusion"]
    assert line["pulse_amplitude_index"] == pytest.approx(1.5)
    assert line["device_clock_not_set"] is True


def test_blood_pressure_in_kpa_is_converted_to_mmhg() -> None:
    # 16.0 / 10.7 / 12.4 kPa (exponent -1), no pulse rate
    payload = bytes([0x01]) + struct.pack("<HHH", 0xF0A0, 0xF06B, 0xF07C)
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A35))
    assert line["values"]["systolic_mmhg"] == pytest.approx(16.0 * 7.50062, abs=0.05)
    assert line["values"]["diastolic_mmhg"] == pytest.approx(10.7 * 7.50062, abs=0.05)
    assert line["values"]["map_mmhg"] == pytest.approx(12.4 * 7.50062, abs=0.05)
    assert "pulse_bpm" not in line["values"]
    assert line["device_unit"] == "kPa"


def test_temperature_in_fahrenheit_is_converted() -> None:
    payload = bytes([0x01]) + struct.pack("<I", 0xFF0003DA)  # 98.6 °F
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A1C))
    assert line["values"]["temperature_c"] == pytest.approx(37.0, abs=0.005)


def test_glucose_kg_per_litre_never_assumed_mg_dl() -> None:
    """100 mg/dL is 0.001 kg/L (SIG layout: bit1 concentration present, bit2 clear)."""
    payload = bytes([0x02]) + struct.pack("<H", 5) + struct.pack("<HBBBBB", 2026, 11, 23, 8, 0, 0)
    payload += struct.pack("<H", 0xD001) + bytes([0x11])  # 1e-3 kg/L, capillary, finger
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A18))
    assert line["kind"] == "glucose"
    assert line["values"]["glucose_mg_dl"] == pytest.approx(100.0)
    assert line["sequence"] == 5
    assert line["device_unit"] == "kg/L"


def test_glucose_mol_per_litre() -> None:
    """5.5 mmol/L = 0.0055 mol/L → 5.5 × 18.0182 mg/dL (SIG: bit2 = mol/L)."""
    payload = bytes([0x06]) + struct.pack("<H", 6) + bytes(7)
    payload += struct.pack("<H", 0xC037) + bytes([0x11])  # 55e-4 mol/L
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A18))
    assert line["values"]["glucose_mg_dl"] == pytest.approx(5.5 * 18.0182, abs=0.05)
    assert line["device_unit"] == "mol/L"


@pytest.mark.parametrize(("flags", "expected"), [(0x00, 100.0), (0x02, 0.001 * 1000 * 18.0182)])
def test_glucose_layout_as_summarised_in_protocols_md(flags: int, expected: float) -> None:
    """protocols.md: "flags, sequence, base time, [offset], concentration SFLOAT in kg/L
    (bit1 set: mol/L)" — no type/location byte. Accepted, unit from bit1."""
    payload = bytes([flags]) + struct.pack("<H", 1) + bytes(7) + struct.pack("<H", 0xD001)
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A18))
    assert line["values"]["glucose_mg_dl"] == pytest.approx(expected, abs=0.05)


def test_weight_imperial_is_converted() -> None:
    payload = bytes([0x01]) + struct.pack("<H", 15432)  # 154.32 lb
    line = decode_one(SBF1, sbf1_wire(payload, 0x2A9D))
    assert line["values"]["weight_kg"] == pytest.approx(154.32 * 0.45359237, abs=0.001)


def test_hello_frame() -> None:
    payload = b"OXI-1".ljust(16, b"\x00") + b"SN0042".ljust(16, b"\x00") + bytes([1, 2, 3, 87])
    line = decode_one(SBF1, sbf1_wire(payload, 0, ftype=1, seq=0))
    assert line["kind"] == "hello"
    assert line["values"] == {"battery_pct": 87}
    assert (line["model"], line["serial"], line["firmware"]) == ("OXI-1", "SN0042", "1.2.3")


def test_status_frame_flags_by_name() -> None:
    payload = struct.pack("<BHB", 12, 0b101001, 4)
    line = decode_one(SBF1, sbf1_wire(payload, 0, ftype=3))
    assert line["kind"] == "status"
    assert line["values"] == {"battery_pct": 12}
    assert line["flags"] == ["low_battery", "clock_not_set", "measurement_error"]
    assert line["error_code"] == 4


def test_device_time_zero_means_clock_not_set() -> None:
    line = decode_one(SBF1, sbf1_wire(bytes.fromhex("00 62 00 48 00"), 0x2A5F, device_time=0))
    assert line["device_time"] == 0  # the wire's u32, as the contract's frame table gives it
    assert line["clock_set"] is False
    assert "clock_set" not in decode_one(SBF1, sbf1_wire(bytes.fromhex("00 62 00 48 00"), 0x2A5F))


def test_sfloat_special_value_in_a_measurement_is_null_with_reason() -> None:
    line = decode_one(SBF1, sbf1_wire(bytes.fromhex("00 FF 07 48 00"), 0x2A5F))
    assert line["values"] == {"spo2_pct": None, "pulse_bpm": 72}
    assert line["unavailable"] == {"spo2_pct": "nan"}


MASIMO_LINE = (
    b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=072 PI=20.00% SPCO=01.0% SPMET=00.5% "
    b"DESAT=01 PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820\r\n"
)


def test_masimo_vector() -> None:
    codec = get_codec("masimo-ascii1")
    line = decode_one(codec, MASIMO_LINE)
    assert line["kind"] == "spo2"
    assert line["values"] == {"spo2_pct": 98, "pulse_bpm": 72}
    assert line["serial"] == "0123456789"
    assert line["alarm"] == []
    assert "sensor_off" in line["exceptions"]
    assert line["aux"]["pi_pct"] == 20.0
    assert line["aux"]["pi_delta"] == -2
    assert "seq" not in line
    assert codec.encode(line) == MASIMO_LINE


def test_masimo_dashes_mean_unavailable() -> None:
    line = decode_one(get_codec("masimo-ascii1"), b"SPO2=---% BPM=--- PI=--.--%\r\n")
    assert line["values"] == {"spo2_pct": None, "pulse_bpm": None}
    assert line["aux"]["pi_pct"] is None


def test_masimo_unavailable_line_of_a_rad8_with_signed_dashes() -> None:
    """A Rad-8 with no sensor prints PIDELTA=+-- (and BPM=---%): still one decoded line."""
    codec = get_codec("masimo-ascii1")
    wire = (
        b"03/19/16 13:37:12 SN=0000093112 SPO2=---% BPM=---% DESAT=-- PIDELTA=+-- "
        b"ALARM=0000 EXC=000001\r\n"
    )
    line = decode_one(codec, wire)
    assert line["values"] == {"spo2_pct": None, "pulse_bpm": None}
    assert line["aux"] == {"desat": None, "pi_delta": None}
    assert line["exceptions"] == ["no_sensor"]
    assert b"PIDELTA=+-- " in codec.encode(line)


def test_masimo_parses_by_key_not_position() -> None:
    """Older units omit fields and other orders exist: tokens, not columns."""
    codec = get_codec("masimo-ascii1")
    line = decode_one(codec, b"01/02/03 04:05:06 BPM=061 ALARM=0012 SPO2=091%\r\n")
    assert line["values"] == {"pulse_bpm": 61, "spo2_pct": 91}
    assert line["alarm"] == ["spo2_low", "alarm_active"]
    assert line["device_clock"] == "01/02/03 04:05:06"
    line = decode_one(codec, b"SPO2=097%\n")
    assert line["values"] == {"spo2_pct": 97}


def test_masimo_exception_bits() -> None:
    line = decode_one(get_codec("masimo-ascii1"), b"SPO2=---% BPM=--- EXC=000421\r\n")
    assert line["exceptions"] == ["no_sensor", "sensor_off", "low_signal_iq"]
    assert line["exception_code"] == "000421"


def test_nonin_record() -> None:
    codec = get_codec("nonin-df8")
    # STATUS1: bit7 | artifact | HR bit 7 → HR 0x80 + 0x2C = 172; SpO2 98; low battery
    line = decode_one(codec, bytes([0x80 | 0x04 | 0x01, 0x2C, 98, 0x01]))
    assert line["values"] == {"spo2_pct": 98, "pulse_bpm": 172}
    assert line["status"] == ["artifact", "low_battery"]


def test_nonin_missing_values() -> None:
    line = decode_one(get_codec("nonin-df8"), bytes([0x83, 0x7F, 127, 0x00]))
    assert line["values"] == {"spo2_pct": None, "pulse_bpm": None}


def test_nonin_resyncs_on_the_status1_high_bit() -> None:
    codec = get_codec("nonin-df8")
    good = bytes([0x80, 72, 97, 0])
    items = codec.decode(bytes([0x12, 0x7F]) + good + good[:2] + good)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["DecodeError", "Decoded", "DecodeError", "Decoded"]
    assert [i.offset for i in items] == [0, 2, 6, 8]
    assert all(i.reason == "sync" for i in items if isinstance(i, DecodeError))


def test_contec_vector() -> None:
    codec = get_codec("contec-cms50d")
    line = decode_one(codec, bytes.fromhex("85 3C 04 48 62"))
    assert line["values"] == {"spo2_pct": 98, "pulse_bpm": 72}
    assert line["signal_strength"] == 5
    assert line["pleth"] == 60
    assert line["bar_graph"] == 4
    assert line["status"] == []
    assert codec.encode(line) == bytes.fromhex("85 3C 04 48 62")


def test_contec_pulse_bit_7_and_flags() -> None:
    # pulse 0x80 | 0x10 = 144: bit 7 in byte 2 (0x40); finger out; searching
    line = decode_one(
        get_codec("contec-cms50d"), bytes([0x80 | 0x10 | 3, 10, 0x40 | 0x20 | 2, 0x10, 95])
    )
    assert line["values"] == {"spo2_pct": 95, "pulse_bpm": 144}
    assert line["status"] == ["finger_out", "searching"]


def test_contec_only_byte_0_has_bit_7() -> None:
    codec = get_codec("contec-cms50d")
    good = bytes.fromhex("85 3C 04 48 62")
    items = codec.decode(good[2:] + good + bytes([0x85, 0x90]) + good)
    assert [type(i).__name__ for i in items] == ["DecodeError", "Decoded", "DecodeError", "Decoded"]
    assert [i.offset for i in items] == [0, 3, 8, 10]
