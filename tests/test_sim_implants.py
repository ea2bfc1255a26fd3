"""Cardiac implants and their transmitters: episodes, therapies, battery, leads, alerts."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim import EnvelopeSender, KeyStore, Simulation, VirtualClock
from firmware_sim.implants import (
    SESSION_ALERT,
    SESSION_SCHEDULED,
    EpisodePlan,
    Implant,
    LeadChange,
    Transmitter,
    Window,
)
from firmware_sim.physiology import Baseline, Course, NoiseSource, atrial_fibrillation, shock_storm
from firmware_sim.transports import InprocBus, InprocLink
from protocols import ImplantBody, KeyRing, open_envelope


def setup(kind: str, course: Course, *, offline: list[Window] | None = None, every: float = 3600.0):
    clock = VirtualClock()
    sim = Simulation(clock, seed=9)
    patient = sim.patient("pt", baseline=Baseline(), course=course)
    implant = Implant(f"{kind}-1", kind, patient, NoiseSource(np.random.default_rng(1)))  # type: ignore[arg-type]
    bus = InprocBus()
    keys = KeyStore.from_seed(9)
    sender = EnvelopeSender(
        "home-1",
        implant.implant_id,
        keys.key("home-1", implant.implant_id),
        clock,
        InprocLink(bus),
        rng=np.random.default_rng(2),
    )
    tx = Transmitter(implant, sender, clock, every_s=every, first_at=60.0, offline=offline)
    return clock, implant, tx, bus, keys


def sessions(bus: InprocBus, keys: KeyStore) -> list[ImplantBody]:
    ring = KeyRing(keys.as_mapping())
    out = []
    for m in bus.messages:
        env = open_envelope(m.payload, ring)  # every envelope validates and verifies
        if env.kind == "implant":
            assert m.topic == f"samu/v1/site/home-1/device/{env.device}/implant"
            assert isinstance(env.body, ImplantBody)
            out.append(env.body)
    return out


def codes(body: ImplantBody) -> list[str]:
    return [a.code for a in body.alerts]


def test_icd_shock_storm_raises_episode_shock_and_storm_alerts() -> None:
    clock, implant, tx, bus, keys = setup("icd", shock_storm(300.0, episodes=4, interval_s=240.0))
    implant.plan_episode(EpisodePlan(780.0, "VT", 20.0, "shock", success=False))
    tx.start()
    clock.run_until(1800.0)
    bodies = sessions(bus, keys)
    alerts = [b for b in bodies if b.session.type == SESSION_ALERT]
    assert len(alerts) == 4  # one device-initiated session per episode
    assert all("vt_vf_episode" in codes(b) for b in alerts)
    assert "shock_delivered" in codes(alerts[1])  # VF: shocked
    assert "shock_unsuccessful" in codes(alerts[2]) and "therapies_exhausted" in codes(alerts[2])
    storm = [a for b in alerts for a in b.alerts if a.code == "vt_vf_storm"]
    assert storm and storm[0].episodes_24h == 3
    last = alerts[-1]
    assert [e.type for e in last.episodes] == ["VT", "VF", "VT", "VF"]
    shocks = {o.term: o.value for o in last.observations}[
        "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT"
    ]
    assert shocks >= 1
    assert any(b.session.type == SESSION_SCHEDULED for b in bodies)
    assert last.device.type == 753666


def test_pacemaker_battery_rrt_and_rv_lead_out_of_range() -> None:
    clock, implant, tx, bus, keys = setup("pacemaker", Course(), every=1800.0)
    implant.change_lead(LeadChange("RV", 600.0, 2400.0, 1200.0))
    clock.call_later(300.0, lambda: implant.battery_milestone("RRT", 300.0))
    tx.start()
    clock.run_until(3600.0)
    bodies = sessions(bus, keys)
    alert_codes = [c for b in bodies for c in codes(b)]
    assert alert_codes.count("battery_rrt") == 1
    lead_alerts = [a for b in bodies for a in b.alerts if a.code == "lead_impedance_out_of_range"]
    assert len(lead_alerts) == 1
    assert (
        lead_alerts[0].lead == "RV"
        and lead_alerts[0].ohms is not None
        and lead_alerts[0].ohms > 2000
    )
    final = {o.term: o.value for o in bodies[-1].observations}
    assert final["MDC_IDC_MSMT_BATTERY_STATUS"] == "RRT"
    assert final["MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE"] == pytest.approx(2400, rel=0.05)
    assert "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT" not in final  # cannot shock
    with pytest.raises(ValueError, match="no HV lead"):
        implant.change_lead(LeadChange("HV", 0.0, 10.0, 0.0))


def test_af_burden_alert_once_over_threshold() -> None:
    clock, _, tx, bus, keys = setup("crt-d", atrial_fibrillation(600.0))
    tx.start()
    clock.run_until(2400.0)
    bodies = sessions(bus, keys)
    af = [a for b in bodies for a in b.alerts if a.code == "af_burden_over_threshold"]
    assert len(af) == 1 and af[0].af_burden_pct is not None and af[0].af_burden_pct > 6.0


def test_transmitter_queues_while_offline_and_reports_the_disconnection() -> None:
    clock, _implant, tx, bus, keys = setup(
        "icd", shock_storm(400.0, episodes=1), offline=[Window(300.0, 900.0)]
    )
    tx.start()
    clock.run_until(1200.0)
    states = [t.dst.value for t in tx.transitions]
    assert states == ["boot", "hello", "measuring", "disconnected", "reconnecting", "measuring"]
    bodies = sessions(bus, keys)
    times = [b.session.time for b in bodies]
    assert times == sorted(times)  # queued sessions go out in order
    episode_alert = [b for b in bodies if "vt_vf_episode" in codes(b)]
    assert episode_alert  # not lost while offline
    gone = [a for b in bodies for a in b.alerts if a.code == "transmitter_disconnected"]
    assert len(gone) == 1 and gone[0].detail == "offline for 10 min"
