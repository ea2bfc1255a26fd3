"""Library scenarios run in process on the virtual clock and produce what they describe."""

from __future__ import annotations

from collections import Counter

import pytest

import scenarios
from firmware_sim import VirtualClock
from firmware_sim.transports import InprocBus
from protocols import (
    BilanBody,
    Envelope,
    EnvelopeError,
    ImplantBody,
    KeyRing,
    VideoBody,
    VitalsBody,
    open_envelope,
)
from protocols.codecs import Decoded, get_codec
from scenarios import build_scenario, inproc_links


def run(
    name: str | scenarios.Scenario,
    transport: str | None = None,
    duration: float | None = None,
    **load: int,
):
    sc = name if isinstance(name, scenarios.Scenario) else scenarios.load_scenario(name)
    if duration is not None:
        sc = sc.model_copy(
            update={"scenario": sc.scenario.model_copy(update={"duration": duration})}
        )
    if load and sc.load is not None:
        sc = sc.model_copy(update={"load": sc.load.model_copy(update=load)})
    clock = VirtualClock()
    bus = InprocBus()
    built = build_scenario(
        sc,
        clock,
        link_for=inproc_links(bus),
        transport=transport,
        keep_log=True,
    )
    built.start()
    clock.run_until(sc.scenario.duration)
    for core in built.gateways.values():
        core.flush()
    ring = KeyRing(built.keys.as_mapping())
    built.bus = bus  # type: ignore[attr-defined]
    good: list[Envelope] = []
    bad: Counter[str] = Counter()
    for m in bus.messages:
        try:
            good.append(open_envelope(m.payload, ring))
        except EnvelopeError as exc:
            bad[exc.reason] += 1
    return built, good, bad


def test_night_fall_desaturation_reaches_the_oximeter() -> None:
    built, _, _ = run("night-fall-hypoxaemia")
    device = built.sim.devices["spo2-0142"]
    data = built.sim.sinks["spo2-0142"].read()  # type: ignore[attr-defined]
    lines = [i for i in get_codec("masimo-ascii1").decode(data) if isinstance(i, Decoded)]
    early = [d.values["spo2_pct"] for d in lines[60:600] if d.values["spo2_pct"] is not None]
    late = [d.values["spo2_pct"] for d in lines[-300:] if d.values["spo2_pct"] is not None]
    assert sum(early) / len(early) > 93
    assert sum(late) / len(late) < 87
    assert any("interference" in d.extra["exceptions"] for d in lines[590:660])  # the fall
    assert device.state.value == "measuring"


def test_sepsis_bilan_carries_identity_flags_and_measured_vitals() -> None:
    _built, envelopes, bad = run("sepsis-ehpad")
    assert not bad
    bilans = [e.body for e in envelopes if isinstance(e.body, BilanBody)]
    assert len(bilans) == 1
    b = bilans[0]
    assert b.resident.birth_name == "DUBOIS" and b.flags.new_confusion
    obs = {o.code: o.value for o in b.observations}
    assert obs["67775-7"] == "C"
    assert obs["9279-1"] >= 20 and obs["8310-5"] > 38.0
    assert all(o.method == "manual" for o in b.observations)


def test_icd_storm_and_pacemaker_scenarios_raise_their_alerts() -> None:
    _, envelopes, bad = run("icd-shock-storm")
    assert not bad
    codes = Counter(
        a.code for e in envelopes if isinstance(e.body, ImplantBody) for a in e.body.alerts
    )
    assert codes["vt_vf_episode"] == 4
    assert codes["shock_delivered"] >= 3 and codes["vt_vf_storm"] >= 1
    _, envelopes, bad = run("pacemaker-rrt-lead")
    assert not bad
    codes = Counter(
        a.code for e in envelopes if isinstance(e.body, ImplantBody) for a in e.body.alerts
    )
    assert codes["battery_rrt"] == 1 and codes["lead_impedance_out_of_range"] == 1


def test_video_scenarios() -> None:
    _, envelopes, _ = run("bronchiolitis-video-withdrawn")
    events = [e.body.event for e in envelopes if isinstance(e.body, VideoBody)]
    assert events[-2:] == ["consent_withdrawn", "stream_ended"]
    _, envelopes, _ = run("stroke-video-fast")
    consent = [
        e.body
        for e in envelopes
        if isinstance(e.body, VideoBody) and e.body.event == "consent_granted"
    ]
    assert consent[0].consent is not None and consent[0].consent.by == "SANTE.INF"
    bilan = next(e.body for e in envelopes if isinstance(e.body, BilanBody))
    assert bilan.flags.fast is not None and bilan.flags.fast.positive


def test_device_chaos_through_the_gateway_produces_every_kind_of_bad_message() -> None:
    built, envelopes, bad = run("device-chaos", transport="mqtt")
    assert bad["mac"] > 0 and bad["unknown-sender"] > 0 and bad["oversize"] > 0
    ids = Counter(e.id for e in envelopes)
    assert any(n > 1 for n in ids.values())  # duplicates
    core = next(iter(built.gateways.values()))
    assert core.stats.errors["crc"] > 0  # corrupt sbf1 frames caught at the gateway
    statuses = [e.body for e in envelopes if e.kind == "status"]
    assert any(getattr(s, "clock_offset_s", None) for s in statuses)
    assert any("clock_not_set" in getattr(s, "flags", ()) for s in statuses)


def test_quiet_night_stays_quiet() -> None:
    built, _, _ = run("quiet-night", duration=1200.0)
    assert len(built.sim.devices) == 10
    for device in built.sim.devices.values():
        assert device.state.value == "measuring", device.device_id
    for patient in built.sim.patients.values():
        v = patient.at(1199.0)
        assert v.spo2 > 90 and 45 < v.heart_rate < 110 and v.consciousness == "A"


@pytest.mark.parametrize("transport", [None, "mqtt"])
def test_load_scenario_scales_down_for_tests(transport: str | None) -> None:
    built, envelopes, bad = run("load-200-ehpad", transport=transport, duration=120.0, sites=3)
    assert len(built.sim.devices) == 15
    if transport == "mqtt":
        assert not bad
        assert len({e.site for e in envelopes}) == 3
        assert sum(isinstance(e.body, VitalsBody) for e in envelopes) > 15 * 100


def test_same_seed_same_envelope_bytes() -> None:
    a, _, _ = run("device-chaos", transport="mqtt", duration=120.0)
    b, _, _ = run("device-chaos", transport="mqtt", duration=120.0)
    pa = [m.payload for m in a.bus.messages]  # type: ignore[attr-defined]
    pb = [m.payload for m in b.bus.messages]  # type: ignore[attr-defined]
    assert len(pa) > 200
    assert pa == pb


def test_transmitter_disconnection_sends_its_will_then_catches_up() -> None:
    sc = scenarios.loads_scenario(
        """
schema_version = 1
[scenario]
name = "tx-offline"
duration = "20m"
site = "home-9"
[[patients]]
id = "p"
[[implants]]
id = "crtd-9"
type = "crt-d"
patient = "p"
transmissions = { every = "5m", first_at = "1m" }
[[implants.events]]
at = "3m"
kind = "transmitter_disconnect"
[[implants.events]]
at = "4m"
kind = "vf_episode"
therapy = "shock"
[[implants.events]]
at = "12m"
kind = "transmitter_reconnect"
"""
    )
    built, envelopes, bad = run(sc)
    assert not bad
    kinds = [e.kind for e in envelopes]
    assert kinds[0] == "birth" and "death" in kinds
    death = kinds.index("death")
    after = [e.body for e in envelopes[death:] if isinstance(e.body, ImplantBody)]
    alerts = [a.code for body in after for a in body.alerts]
    assert "shock_delivered" in alerts and "transmitter_disconnected" in alerts
    sent = [e.sent for e in envelopes[death + 1 :]]
    assert min(sent).timestamp() - built.sim.clock.epoch >= 12 * 60  # nothing while offline
