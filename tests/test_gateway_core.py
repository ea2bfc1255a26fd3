"""The EHPAD gateway's logic, in process on the virtual clock: decode → signed envelopes."""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter

import pytest

from firmware_sim import (
    DeviceSpec,
    FaultKind,
    FaultWindow,
    KeyStore,
    Simulation,
    VirtualClock,
    profile_for,
)
from firmware_sim.gateway import GatewayCore, GatewayPort
from firmware_sim.transports import InprocBus, InprocLink, InprocPort
from protocols import Envelope, EnvelopeError, KeyRing, StatusBody, VitalsBody, open_envelope

SITE = "ehpad-test"


def gateway_site(
    specs: list[DeviceSpec], seconds: float, seed: int = 3
) -> tuple[Simulation, GatewayCore, InprocBus, KeyStore]:
    clock = VirtualClock()
    sim = Simulation(clock, seed=seed, keep_log=True)
    bus = InprocBus()
    keys = KeyStore.from_seed(seed)
    core = GatewayCore(SITE, "gw-1", [], InprocLink(bus), keys, clock=clock, seed=seed)
    for spec in specs:
        device = sim.add_serial(
            spec, InprocPort(on_bytes=functools.partial(core.feed, spec.device_id))
        )
        core.add_port(
            GatewayPort(
                spec.device_id, "inproc://", profile_for(spec), spec.patient, device.hal.faults
            )
        )

    def silence_check() -> None:
        core.check_silence()
        clock.call_later(5.0, silence_check)

    clock.call_later(5.0, silence_check)
    sim.start()
    clock.run_until(seconds)
    core.flush()
    return sim, core, bus, keys


def opened(bus: InprocBus, keys: KeyStore) -> tuple[list[Envelope], Counter[str]]:
    ring = KeyRing(keys.as_mapping())
    good: list[Envelope] = []
    bad: Counter[str] = Counter()
    for m in bus.messages:
        try:
            env = open_envelope(m.payload, ring)
        except EnvelopeError as exc:
            bad[exc.reason] += 1
            continue
        assert m.topic == f"samu/v1/site/{env.site}/device/{env.device}/{env.kind}"
        good.append(env)
    return good, bad


def spec(device_id: str, kind: str, fmt: str = "sbf1", **kw) -> DeviceSpec:
    return DeviceSpec(device_id, kind, fmt, "res-1", SITE, **kw)


def test_every_reading_becomes_a_signed_valid_vitals_envelope_with_the_device_values() -> None:
    sim, _core, bus, keys = gateway_site(
        [
            spec("spo2-1", "spo2", "masimo-ascii1"),
            spec("bp-1", "bp", period_s=300.0),
            spec("ecg-1", "ecg"),
        ],
        900.0,
    )
    envelopes, bad = opened(bus, keys)
    assert not bad
    kinds = Counter((e.device, e.kind) for e in envelopes)
    assert kinds[("spo2-1", "birth")] == kinds[("bp-1", "birth")] == 1
    assert kinds[("spo2-1", "vitals")] > 850
    # Retained births, one per device, so a late subscriber learns what each device is.
    assert {t.split("/")[5] for t in bus.retained} == {"spo2-1", "bp-1", "ecg-1"}
    bp_log = [e.record["values"] for e in sim.devices["bp-1"].log if e.record["kind"] == "bp"]
    bp_env = [e.body for e in envelopes if e.device == "bp-1" and e.kind == "vitals"]
    assert len(bp_env) == len(bp_log) >= 3
    for values, body in zip(bp_log, bp_env, strict=True):
        assert isinstance(body, VitalsBody)
        obs = {o.code: o.value for o in body.observations}
        assert obs["8480-6"] == values["systolic_mmhg"]
        assert obs["8462-4"] == values["diastolic_mmhg"]
        assert obs["8867-4"] == values["pulse_bpm"]
        assert body.patient == "res-1"
        assert body.device_status is not None and body.device_status.battery_pct is not None
    seqs = [e.seq for e in envelopes if e.device == "spo2-1"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len({e.id for e in envelopes}) == len(envelopes)


def test_contec_is_published_once_a_second_not_sixty_times() -> None:
    _, core, bus, keys = gateway_site([spec("spo2-c", "spo2", "contec-cms50d")], 120.0)
    envelopes, _ = opened(bus, keys)
    vitals = [e for e in envelopes if e.kind == "vitals"]
    assert 100 < len(vitals) <= 121
    assert core.stats.decoded > 60 * 100


def test_clock_skew_is_reported_and_readings_are_not_misdated() -> None:
    faults = (FaultWindow(FaultKind.CLOCK_SKEW, 100.0, 400.0, value=2400.0),)
    _, _, bus, keys = gateway_site([spec("spo2-1", "spo2", faults=faults)], 500.0)
    envelopes, _ = opened(bus, keys)
    statuses = [e.body for e in envelopes if e.kind == "status"]
    skewed = [s for s in statuses if isinstance(s, StatusBody) and s.clock_offset_s]
    assert skewed and skewed[0].state == "degraded"
    assert skewed[0].clock_offset_s == pytest.approx(2400, abs=2)
    for e in envelopes:
        if e.kind == "vitals":
            assert isinstance(e.body, VitalsBody)
            lag = (e.sent - e.body.observations[0].time).total_seconds()
            assert 0 <= lag <= 2.0  # never 40 minutes in the future


def test_envelope_faults_are_what_the_console_must_catch() -> None:
    faults = (
        FaultWindow(FaultKind.DUPLICATE, 0.0, 100.0, rate=0.5),
        FaultWindow(FaultKind.BAD_MAC, 100.0, 200.0, rate=0.5),
        FaultWindow(FaultKind.UNKNOWN_DEVICE, 200.0, 210.0),
        FaultWindow(FaultKind.OVERSIZE, 220.0, 223.0),
        FaultWindow(FaultKind.REORDER, 300.0, 400.0, rate=0.3),
    )
    _, core, bus, keys = gateway_site([spec("spo2-1", "spo2", "nonin-df8", faults=faults)], 450.0)
    envelopes, bad = opened(bus, keys)
    stats = core.devices["spo2-1"].sender.stats
    assert bad["mac"] == stats.bad_mac > 20
    assert bad["unknown-sender"] == stats.unknown_device >= 9
    assert bad["oversize"] == stats.oversize >= 2
    ids = Counter(e.id for e in envelopes)
    dups = [i for i, n in ids.items() if n > 1]
    assert len(dups) == stats.duplicated > 20
    for i in dups:  # a duplicate is the same message: same id, same seq, same bytes
        assert len({e.seq for e in envelopes if e.id == i}) == 1
    seqs = [e.seq for e in envelopes]
    inversions = sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    assert inversions >= stats.reordered > 5


def test_a_silent_device_is_reported_disconnected_then_reborn() -> None:
    faults = (FaultWindow(FaultKind.DISCONNECT, 100.0, 200.0),)
    _, _, bus, keys = gateway_site([spec("spo2-1", "spo2", faults=faults)], 300.0)
    envelopes, _ = opened(bus, keys)
    seq = [
        (e.kind, getattr(e.body, "state", None)) for e in envelopes if e.kind in ("status", "birth")
    ]
    assert ("status", "disconnected") in seq
    after = seq[seq.index(("status", "disconnected")) :]
    assert ("birth", None) in after


def test_will_and_goodbye_are_signed_deaths_of_the_gateway() -> None:
    _, core, _, keys = gateway_site([spec("spo2-1", "spo2")], 5.0)
    ring = KeyRing(keys.as_mapping())
    will = core.will()
    env = open_envelope(will.payload, ring)
    assert will.topic == f"samu/v1/site/{SITE}/device/gw-1/death"
    assert env.kind == "death" and env.body.reason == "connection_lost"  # type: ignore[union-attr]
    bye = open_envelope(core.goodbye()[0].payload, ring)
    assert bye.body.reason == "shutdown"  # type: ignore[union-attr]
    assert bye.seq > env.seq
    assert json.loads(will.payload)["device"] == "gw-1"
