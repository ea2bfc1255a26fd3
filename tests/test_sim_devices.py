"""Bedside device firmware: frames decode to what the device measured; the state machine."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from firmware_sim import DeviceSpec, FaultKind, FaultWindow, Simulation, VirtualClock
from firmware_sim.devices import BloodPressureCuff, PulseOximeter, SerialDevice, State
from firmware_sim.physiology import Baseline, atrial_fibrillation, fall, hypoxaemia
from firmware_sim.transports import InprocPort
from protocols.codecs import Decoded, DecodeError, get_codec


def run_device(
    spec: DeviceSpec,
    seconds: float,
    *,
    seed: int = 1,
    artefacts: bool = True,
    course=None,
) -> tuple[SerialDevice, bytes]:
    clock = VirtualClock()
    sim = Simulation(clock, seed=seed, keep_log=True, artefacts=artefacts)
    if course is not None:
        sim.patient(spec.patient, baseline=Baseline(), course=course)
    port = InprocPort()
    device = sim.add_serial(spec, port)
    sim.start()
    clock.run_until(seconds)
    return device, port.read()


def decode(device: SerialDevice, data: bytes) -> tuple[list[Decoded], list[DecodeError]]:
    items = get_codec(device.format).decode(data)
    good = [i for i in items if isinstance(i, Decoded)]
    bad = [i for i in items if isinstance(i, DecodeError)]
    return good, bad


CASES = [
    ("spo2", "sbf1", {}),
    ("spo2", "sbf1", {"spot_check": True, "period_s": 30.0}),
    ("spo2", "masimo-ascii1", {}),
    ("spo2", "nonin-df8", {}),
    ("spo2", "contec-cms50d", {}),
    ("bp", "sbf1", {"period_s": 120.0}),
    ("temperature", "sbf1", {"period_s": 30.0}),
    ("ecg", "sbf1", {}),
    ("glucose", "sbf1", {"period_s": 60.0}),
    ("weight", "sbf1", {"period_s": 60.0}),
]


@pytest.mark.parametrize(
    ("kind", "fmt", "extra"), CASES, ids=[f"{k}-{f}-{len(e)}" for k, f, e in CASES]
)
def test_frames_decode_to_the_values_the_device_produced(kind: str, fmt: str, extra: dict) -> None:
    spec = DeviceSpec(f"{kind}-01", kind, fmt, "r1", "site-a", **extra)
    seconds = 60.0 if fmt == "contec-cms50d" else 600.0
    device, data = run_device(spec, seconds)
    good, bad = decode(device, data)
    assert not bad
    assert device.log is not None
    assert len(good) == len(device.log) > 2
    for emitted, decoded in zip(device.log, good, strict=True):
        assert decoded.kind == emitted.record["kind"]
        for key, value in emitted.record["values"].items():
            got = decoded.values[key]
            if isinstance(value, list):
                assert got == pytest.approx(value)
            elif value is None:
                assert got is None
            else:
                assert got == pytest.approx(value, abs=1e-6), (key, emitted.record)
        if fmt == "sbf1":
            assert decoded.seq == emitted.record["seq"]
            assert decoded.device_time == emitted.record["device_time"]
    kinds = {d.kind for d in good}
    expected = {"spo2": "spo2", "bp": "bp", "temperature": "temperature", "ecg": "heart_rate"}
    assert expected.get(kind, kind) in kinds
    if fmt == "sbf1":
        assert good[0].kind == "hello"  # the bridge announces the device first
        assert good[0].extra["serial"] == spec.device_id


def test_reported_values_track_the_physiology_within_device_accuracy() -> None:
    spec = DeviceSpec("spo2-01", "spo2", "nonin-df8", "r1", "site-a")
    device, _ = run_device(spec, 1800.0, artefacts=False, course=hypoxaemia(300.0, 1.0, 85.0))
    assert device.log is not None
    patient = device.hal.sensor.patient  # type: ignore[union-attr]
    errors = [
        e.record["values"]["spo2_pct"] - patient.at(e.t).spo2
        for e in device.log
        if e.record["values"]["spo2_pct"] is not None
    ]
    assert abs(float(np.mean(errors))) < 0.5
    assert float(np.std(errors)) < 1.5
    late = [e.record["values"]["spo2_pct"] for e in device.log if e.t > 1500]
    assert 82 <= np.mean(late) <= 88


def test_a_spot_check_is_an_averaged_reading_steadier_than_a_beat_to_beat_one() -> None:
    """A spot-check oximeter averages ~8 s of signal before it shows a value, so its
    measurement noise is about a third of a continuous oximeter's (quantisation stays):
    a healthy resident's single spot check no longer reads 91 % (NEWS2 3, a P1) out of
    noise alone."""

    def spread(**extra: object) -> float:
        spec = DeviceSpec("spo2-01", "spo2", "sbf1", "r1", "site-a", **extra)  # type: ignore[arg-type]
        device, _ = run_device(spec, 7200.0, artefacts=False, course=hypoxaemia(1e9, 1.0, 85.0))
        assert device.log is not None
        patient = device.hal.sensor.patient  # type: ignore[union-attr]
        errors = [
            e.record["values"]["spo2_pct"] - patient.at(e.t).spo2
            for e in device.log
            if e.record.get("kind") == "spo2"
        ]
        assert len(errors) > 200
        return float(np.std(errors))

    continuous, spot = spread(), spread(spot_check=True, period_s=10.0)
    assert spot < 0.8 * continuous, (spot, continuous)


def test_ecg_rr_intervals_are_regular_in_sinus_rhythm_and_scatter_in_af() -> None:
    spec = DeviceSpec("ecg-01", "ecg", "sbf1", "r1", "site-a")
    device, data = run_device(spec, 1200.0, artefacts=False, course=atrial_fibrillation(600.0))
    good, _ = decode(device, data)
    epoch = device.hal.clock.epoch
    frames = [d for d in good if d.kind == "heart_rate"]
    rr_sinus = [r for d in frames if d.device_time - epoch < 590 for r in d.values.get("rr_ms", [])]
    rr_af = [r for d in frames if d.device_time - epoch > 700 for r in d.values.get("rr_ms", [])]

    def cv(xs: list[float]) -> float:
        return float(np.std(xs) / np.mean(xs))

    assert len(rr_sinus) > 300 and len(rr_af) > 300
    assert cv(rr_sinus) < 0.1
    assert cv(rr_af) > 0.15
    assert np.mean(rr_af) < np.mean(rr_sinus)  # AF here is fast AF


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    def digest(seed: int) -> str:
        clock = VirtualClock()
        sim = Simulation(clock, seed=seed)
        ports = {}
        for kind, fmt, extra in CASES:
            spec = DeviceSpec(f"{kind}-{fmt}-{len(extra)}", kind, fmt, "r1", "site-a", **extra)
            ports[spec.device_id] = InprocPort()
            sim.add_serial(spec, ports[spec.device_id])
        sim.start()
        clock.run_until(120.0)
        h = hashlib.sha256()
        for name in sorted(ports):
            h.update(name.encode() + ports[name].read())
        return h.hexdigest()

    assert digest(42) == digest(42)
    assert digest(42) != digest(43)


def test_adding_a_device_does_not_change_what_the_others_send() -> None:
    def bytes_of(extra_device: bool) -> bytes:
        clock = VirtualClock()
        sim = Simulation(clock, seed=5)
        port = InprocPort()
        if extra_device:
            sim.add_serial(DeviceSpec("bp-9", "bp", "sbf1", "r9", "site-a"), InprocPort())
        sim.add_serial(DeviceSpec("spo2-1", "spo2", "masimo-ascii1", "r1", "site-a"), port)
        sim.start()
        clock.run_until(300.0)
        return port.read()

    assert bytes_of(False) == bytes_of(True)


def transitions(device) -> list[tuple[str, str]]:
    return [(t.dst.value, t.reason) for t in device.transitions]


def test_battery_low_then_critical_shuts_the_device_down() -> None:
    faults = (
        FaultWindow(FaultKind.LOW_BATTERY, 100.0, value=15.0),
        FaultWindow(FaultKind.CRITICAL_BATTERY, 200.0, value=4.0),
    )
    spec = DeviceSpec("spo2-01", "spo2", "sbf1", "r1", "site-a", faults=faults)
    device, data = run_device(spec, 400.0)
    states = [s for s, _ in transitions(device)]
    assert states == ["boot", "hello", "measuring", "low_battery", "shutdown"]
    assert device.state is State.SHUTDOWN
    good, _ = decode(device, data)
    statuses = [d for d in good if d.kind == "status"]
    assert any(
        "low_battery" in d.extra["flags"] and d.values["battery_pct"] == 15 for d in statuses
    )
    assert statuses[-1].values["battery_pct"] == 4
    last_measurement = max(d.device_time for d in good if d.kind == "spo2")
    assert last_measurement - device.hal.clock.epoch < 201  # nothing after shutdown


def test_sensor_fault_goes_to_fault_and_recovers() -> None:
    faults = (FaultWindow(FaultKind.SENSOR_FAULT, 100.0, 160.0),)
    spec = DeviceSpec(
        "temp-01", "temperature", "sbf1", "r1", "site-a", period_s=10.0, faults=faults
    )
    device, data = run_device(spec, 300.0)
    assert ("fault", "sensor fault") in transitions(device)
    assert ("measuring", "fault cleared") in transitions(device)
    good, _ = decode(device, data)
    fault_status = [d for d in good if d.kind == "status" and "sensor_fault" in d.extra["flags"]]
    assert fault_status and fault_status[0].extra["error_code"] != 0
    t_fault = [d.device_time for d in good if d.kind == "temperature"]
    epoch = device.hal.clock.epoch
    assert not [t for t in t_fault if 101 <= t - epoch < 159]


def test_disconnect_loses_frames_and_reconnect_says_hello_again() -> None:
    faults = (FaultWindow(FaultKind.DISCONNECT, 100.0, 150.0),)
    spec = DeviceSpec("spo2-01", "spo2", "sbf1", "r1", "site-a", faults=faults)
    device, data = run_device(spec, 300.0)
    assert [s for s, _ in transitions(device)] == [
        "boot",
        "hello",
        "measuring",
        "disconnected",
        "reconnecting",
        "hello",
        "measuring",
    ]
    good, _ = decode(device, data)
    hellos = [d for d in good if d.kind == "hello"]
    assert len(hellos) == 2
    times = [d.device_time - device.hal.clock.epoch for d in good if d.kind == "spo2"]
    assert not [t for t in times if 101 < t < 150]
    # seq keeps counting across the reconnection: the consumer can see nothing was skipped.
    seqs = [d.seq for d in good]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_dropout_is_silence_without_a_state_change() -> None:
    faults = (FaultWindow(FaultKind.DROPOUT, 60.0, 120.0),)
    spec = DeviceSpec("spo2-01", "spo2", "nonin-df8", "r1", "site-a", faults=faults)
    device, data = run_device(spec, 180.0)
    assert [s for s, _ in transitions(device)] == ["boot", "hello", "measuring"]
    good, _ = decode(device, data)
    assert device.log is not None
    assert 100 < len(good) < 130
    assert not [e for e in device.log if 60 <= e.t < 120]


def test_corrupt_and_truncated_frames_are_decode_errors_not_readings() -> None:
    faults = (
        FaultWindow(FaultKind.CORRUPT, 0.0, 300.0, rate=0.01),
        FaultWindow(FaultKind.TRUNCATE, 300.0, 600.0, rate=0.2),
    )
    spec = DeviceSpec("spo2-01", "spo2", "sbf1", "r1", "site-a", faults=faults)
    device, data = run_device(spec, 600.0)
    good, bad = decode(device, data)
    stats = device.hal.uart.stats  # type: ignore[union-attr]
    assert stats.corrupted > 5 and stats.truncated > 20
    reasons = {b.reason for b in bad}
    assert "crc" in reasons
    assert len(good) + stats.corrupted + stats.truncated >= stats.frames
    # Every reading that decodes is one the device really sent (CRC protects sbf1).
    assert device.log is not None
    sent = {(e.record["seq"], str(e.record["values"])) for e in device.log}
    assert all((d.seq, str(d.values)) in sent for d in good)


def test_clock_unset_and_skew_show_in_device_time() -> None:
    faults = (
        FaultWindow(FaultKind.CLOCK_UNSET, 0.0, 100.0),
        FaultWindow(FaultKind.CLOCK_SKEW, 100.0, 200.0, value=-3600.0),
    )
    spec = DeviceSpec("spo2-01", "spo2", "sbf1", "r1", "site-a", faults=faults)
    device, data = run_device(spec, 300.0)
    good, _ = decode(device, data)
    epoch = device.hal.clock.epoch
    early = [d for d in good if d.kind == "spo2"][:50]
    assert all(d.device_time is None for d in early)
    skewed = [d.device_time - epoch for d in good if d.device_time and d.device_time < epoch]
    assert skewed and min(skewed) >= -3600
    assert any(d.kind == "status" and "clock_not_set" in d.extra["flags"] for d in good)


def test_masimo_line_carries_alarms_and_exceptions_from_artefacts() -> None:
    spec = DeviceSpec("spo2-01", "spo2", "masimo-ascii1", "r1", "site-a")
    device, data = run_device(spec, 600.0, course=hypoxaemia(0.0, 10.0, 80.0) + fall(300.0))
    good, _ = decode(device, data)
    assert any("spo2_low" in d.extra["alarm"] for d in good)
    assert any("interference" in d.extra["exceptions"] for d in good)
    assert good[0].extra["serial"].isdigit()


def test_sensor_off_means_no_reading_and_the_format_says_so() -> None:
    faults = (FaultWindow(FaultKind.SENSOR_OFF, 60.0, 120.0),)
    for fmt, flag_key, flag in [
        ("nonin-df8", "status", "sensor_disconnected"),
        ("contec-cms50d", "status", "finger_out"),
        ("masimo-ascii1", "exceptions", "sensor_off"),
    ]:
        spec = DeviceSpec("spo2-01", "spo2", fmt, "r1", "site-a", faults=faults)
        device, data = run_device(spec, 150.0 if fmt != "contec-cms50d" else 90.0)
        good, _ = decode(device, data)
        off = [d for d in good if flag in d.extra.get(flag_key, [])]
        assert off, fmt
        assert all(d.values["spo2_pct"] is None and d.values["pulse_bpm"] is None for d in off)


def test_bp_cuff_inflation_takes_time_and_motion_spoils_a_reading() -> None:
    spec = DeviceSpec("bp-01", "bp", "sbf1", "r1", "site-a", period_s=600.0)
    device, data = run_device(spec, 1300.0, artefacts=False, course=fall(630.0))
    assert isinstance(device, BloodPressureCuff)
    states = transitions(device)
    assert states.count(("inflating", "measurement started")) >= 3
    starts = [t.t for t in device.transitions if t.dst is State.INFLATING]
    good, _ = decode(device, data)
    readings = [d for d in good if d.kind == "bp"]
    first = readings[0]
    assert first.device_time - device.hal.clock.epoch >= starts[0] + 25
    assert first.values["systolic_mmhg"] > first.values["diastolic_mmhg"]
    assert first.values["map_mmhg"] == round(
        first.values["diastolic_mmhg"]
        + (first.values["systolic_mmhg"] - first.values["diastolic_mmhg"]) / 3
    )
    errors = [d for d in good if d.kind == "status" and "measurement_error" in d.extra["flags"]]
    assert errors  # the fall's motion during the 10:30 inflation
    assert device.request_measurement() is True
    assert device.request_measurement() is False  # already inflating


def test_profile_ranges_pin_what_a_device_can_report() -> None:
    spec = DeviceSpec("spo2-01", "spo2", "masimo-ascii1", "r1", "site-a")
    device, _ = run_device(spec, 10.0)
    assert isinstance(device, PulseOximeter)
    assert device.profile is not None and device.profile.name == "masimo-rad97"
    record = {"kind": "spo2", "values": {"spo2_pct": 98, "pulse_bpm": 300}}
    device.send(record)
    assert record["values"]["pulse_bpm"] == 240


def test_a_virtual_hour_of_fifty_devices_runs() -> None:
    """An EHPAD wing: per resident an oximeter (1 Hz), a cuff, a thermometer, and for
    half of them an ECG patch (1 Hz) or a glucometer and a scale. The speed figure is
    `samu bench sim`'s business; this checks an hour of it completes and loses nothing."""
    clock = VirtualClock()
    sim = Simulation(clock, seed=2024)
    formats = ["sbf1", "masimo-ascii1", "nonin-df8"]
    ports: dict[str, InprocPort] = {}
    n = 0
    resident = 0
    while n < 50:
        resident += 1
        r = f"r{resident:02d}"
        kinds = [("spo2", formats[resident % 3]), ("bp", "sbf1"), ("temperature", "sbf1")]
        kinds += [("ecg", "sbf1")] if resident % 2 else [("glucose", "sbf1"), ("weight", "sbf1")]
        for kind, fmt in kinds[: 50 - n]:
            spec = DeviceSpec(f"{kind}-{r}", kind, fmt, r, "site-a")
            ports[spec.device_id] = InprocPort()
            sim.add_serial(spec, ports[spec.device_id])
            n += 1
    sim.start()
    clock.run_until(3600.0)
    assert len(sim.devices) == 50
    total = 0
    for device_id, device in sim.devices.items():
        good, bad = decode(device, ports[device_id].read())
        assert not bad
        assert len(good) == device.hal.uart.stats.frames  # type: ignore[union-attr]
        total += len(good)
        if device.period_s <= 1.0:
            assert len(good) > 3500
    assert total > 50_000
