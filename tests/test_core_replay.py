"""Library scenarios through the real core on the virtual clock: simulator → gateway →
envelopes → ingest → cases → triage, into a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import scenarios
from console.cases import CASE_ID
from console.services import RegulationCore, Services, open_services
from console.settings import Settings


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as s:
        yield s


def replay(name: str, services: Services) -> scenarios.ReplayResult:
    return scenarios.InprocReplay(scenarios.load_scenario(name), services).run()


def first(result: scenarios.ReplayResult, event: str) -> tuple[float, dict]:
    for step in result.steps:
        for e in step.events:
            if e.event == event:
                return step.t, {"case_id": e.case_id, "resident": e.resident_id, **e.detail}
    raise AssertionError(f"no {event} event")


def test_icd_storm_opens_one_case_from_the_implant_and_reaches_p0(services: Services) -> None:
    result = replay("icd-shock-storm", services)
    t, opened = first(result, "case_opened")
    assert opened["source"] == "implant" and CASE_ID.fullmatch(opened["case_id"])
    assert opened["case_id"].startswith("fr.health.samu075.DRFR15075")
    assert 300 <= t <= 420  # the first shock is transmitted after 5 min
    alerts = [e for s in result.steps for e in s.events if e.event == "implant_alert"]
    assert "shock_delivered" in alerts[0].detail["alerts"]
    assert any("vt_vf_storm" in e.detail["alerts"] for e in alerts)
    # every transmission attaches to the same case: never duplicated
    assert {e.case_id for e in alerts} == {opened["case_id"]}
    assert services.store.fetchone("SELECT count(*) FROM cases")[0] == 1
    at_p0 = [s.t for s in result.steps if s.patients["pt-0007"].priority == "P0"]
    assert at_p0 and at_p0[0] <= 16 * 60


@pytest.mark.slow  # ~4 s: a whole scenario replayed into the core
def test_sepsis_bilan_joins_the_vitals_case_and_its_observations_count(
    services: Services,
) -> None:
    result = replay("sepsis-ehpad", services)
    final = result.steps[-1].patients["res-0077"]
    assert final.priority == "P0" and final.news2 is not None and final.news2 >= 7
    (case_id, sources) = services.store.fetchone("SELECT case_id, sources FROM cases")
    assert json.loads(sources) == ["bilan", "vitals"]
    kinds = [
        r[0]
        for r in services.store.fetchall(
            "SELECT kind FROM case_timeline WHERE case_id = ? ORDER BY event_id", (case_id,)
        )
    ]
    assert kinds[0] == "opened" and "bilan" in kinds and "priority_changed" in kinds
    # The manual respiration rate and consciousness of the bilan entered the score.
    reasons = json.loads(
        services.store.fetchone("SELECT reasons FROM cases WHERE case_id = ?", (case_id,))[0]
    )
    assert any("respiration rate" in r for r in reasons)
    assert any("consciousness C" in r for r in reasons)


@pytest.mark.slow  # ~3.5 s: a whole scenario replayed into the core
def test_every_triage_result_names_its_policy_and_real_observations(services: Services) -> None:
    replay("night-fall-hypoxaemia", services)
    rows = services.store.fetchall(
        "SELECT policy_version, policy_sha256, observations FROM triage_results"
    )
    assert rows
    core = RegulationCore(services, now=0.0)
    for version, sha, used in rows:
        assert version == core.cases.policy.version and sha == core.cases.policy.sha256
        ids = json.loads(used)
        if ids:
            placeholders = ",".join("?" * len(ids))
            found = services.store.fetchone(
                f"SELECT count(*) FROM observations WHERE obs_id IN ({placeholders})", ids
            )[0]
            assert found == len(ids)


@pytest.mark.slow  # ~3.3 s: a whole scenario replayed into the core
def test_the_fall_artefact_alone_does_not_open_a_case(services: Services) -> None:
    """night-fall: an artefact at the fall (~10 min) must not escalate; the slow
    hypoxaemia after it must (expectations of the library file)."""
    result = replay("night-fall-hypoxaemia", services)
    early = [s for s in result.steps if s.t <= 14 * 60]
    assert all(s.patients["res-0142"].priority not in ("P0", "P1") for s in early)
    later = [s for s in result.steps if 14 * 60 < s.t <= 26 * 60]
    assert any(s.patients["res-0142"].priority in ("P0", "P1") for s in later)


def test_a_restarted_core_keeps_its_cases_and_latest_values(services: Services) -> None:
    result = replay("pacemaker-rrt-lead", services)
    last = result.steps[-1]
    assert last.patients["res-0201"].priority == "P1"  # lead impedance out of range
    now = result.run.sim.clock.epoch + last.t
    again = RegulationCore(services, now=now)
    view = again.cases.snapshot()["ehpad-les-tilleuls/res-0201"]
    assert view.case_id == last.patients["res-0201"].case_id
    assert view.priority == "P1"
    assert "implant: lead impedance out of range" in view.reasons  # measured, still true
    again.tick(now + 1)  # no change, no duplicate case
    assert services.store.fetchone("SELECT count(*) FROM cases")[0] == 1


def test_device_chaos_is_quarantined_and_raises_one_incident_per_kind(
    services: Services,
) -> None:
    result = replay("device-chaos", services)
    reasons = dict(
        services.store.fetchall("SELECT reason, count(*) FROM quarantine GROUP BY reason")
    )
    assert {"mac", "unknown_device", "too_large"} <= set(reasons)
    incidents = services.store.fetchall("SELECT kind, category, object FROM incidents ORDER BY id")
    assert ("security", "mac-failure", "device:ehpad-chaos/temp-c2") in incidents
    assert ("security", "unknown-device", "device:ehpad-chaos/unenrolled-temp-c2") in incidents
    # A flood of bad MACs is one incident to review, not one per message.
    assert sum(1 for i in incidents if i[1] == "mac-failure") == 1 < reasons["mac"]
    events = [e for s in result.steps for e in s.events if e.event == "incident"]
    assert len(events) == len(incidents)
    # Nothing bad ever appears as data: no observation comes from a quarantined sender.
    assert (
        services.store.fetchone(
            "SELECT count(*) FROM observations WHERE device = 'unenrolled-temp-c2'"
        )[0]
        == 0
    )


def test_video_consent_is_kept_per_session_and_nothing_of_the_stream(
    services: Services,
) -> None:
    replay("bronchiolitis-video-withdrawn", services)
    events = [
        r[0]
        for r in services.store.fetchall(
            "SELECT event FROM video_events WHERE session = 'vs-0412' ORDER BY event_id"
        )
    ]
    assert events[0] == "link_sent"
    assert "consent_granted" in events and "consent_withdrawn" in events
    assert events.index("consent_granted") < events.index("consent_withdrawn")
    (by, how) = services.store.fetchone(
        "SELECT consent_by, how FROM video_events WHERE event = 'consent_granted'"
    )
    assert by and how in ("verbal", "link")
