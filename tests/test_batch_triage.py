"""Triage right after a committed batch (``CaseBook.triage_residents``, called by
``RegulationCore.receive(items, triage=True)`` as ``samu hub`` does).

The batch scores only the residents it touched, and records only a *rise* of priority
(or a resident's first result): a value crossing into P1/P0 is on the board, with its
``priority_changed`` event and its case (cases.md: a case opens when the suggested
priority becomes P0/P1 from vitals), the moment the batch is committed. Every other
change — a NEWS2 point at the same priority, a lowering — is left to the 1 s tick. With
``triage=True`` the ingest, the case updates and those results are one transaction:
all of the batch is stored, or nothing of it.

Everything here is real: signed envelopes from enrolled devices, the core over a SQLite
file; failures come from the database itself (a trigger), not from a mock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.cases import CaseEvent
from console.ingest import Accepted, Incoming, Sender, iso
from console.records import AuditContext
from console.services import RegulationCore, Services, open_services
from console.settings import Settings
from protocols import Envelope, Observation, VitalsBody, seal_envelope
from protocols.topics import topic_for
from tests.support.sqlite import Commits, refusing

SITE = "ehpad-lilas"
A, B = f"{SITE}/res-a", f"{SITE}/res-b"
T0 = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)
#: Readings of one device this far apart: each is alone in the book's 60 s median
#: window, so the value triage reads is the one just sent.
STEP = 120.0
OP = AuditContext(actor="local:tester", role="local-operator", terminal="pts/test")

# SpO2 (scale 1) and pulse only: NEWS2 is incomplete and summed over those two.
P3_NEWS2_0 = {"spo2": 97.0, "pulse": 72.0}  # 0 + 0
P2_NEWS2_1 = {"spo2": 96.0, "pulse": 95.0}  # 0 + 1
P2_NEWS2_2 = {"spo2": 96.0, "pulse": 115.0}  # 0 + 2
P1_NEWS2_5 = {"spo2": 91.0, "pulse": 115.0}  # 3 + 2: SpO2 scores 3, NEWS2 5
P1_NEWS2_6 = {"spo2": 91.0, "pulse": 135.0}  # 3 + 3


class Ward:
    """Two oximeters (``ox-a`` bound to res-a, ``ox-b`` to res-b) enrolled in a real
    system, a :class:`RegulationCore` over it, and what the database then holds."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        enrolled = services.devices.enrol(
            OP,
            [Sender(SITE, "ox-a", "spo2", "res-a"), Sender(SITE, "ox-b", "spo2", "res-b")],
            now=T0,
        )
        self.keys = {sender.device: key for sender, key, _ in enrolled}
        self.core = RegulationCore(services, now=T0.timestamp())
        self.seq = 0

    def reading(
        self, resident: str, t: float, *, spo2: float, pulse: float, resp: float | None = None
    ) -> Incoming:
        """A signed vitals message from the resident's device, ``t`` s after T0."""
        device = {A: "ox-a", B: "ox-b"}[resident]
        at = T0 + timedelta(seconds=t)
        self.seq += 1
        observations = [
            Observation(code="59408-5", value=spo2, unit="%", time=at, method="device"),
            Observation(code="8867-4", value=pulse, unit="/min", time=at, method="device"),
        ]
        if resp is not None:
            observations.append(
                Observation(code="9279-1", value=resp, unit="/min", time=at, method="device")
            )
        body = VitalsBody(v=1, observations=tuple(observations))
        env = Envelope.create(site=SITE, device=device, seq=self.seq, body=body, sent=at)
        return Incoming(topic_for(env), seal_envelope(env, self.keys[device]), at.timestamp())

    def send(
        self, resident: str, t: float, vitals: dict[str, float], *, triage: bool = True
    ) -> list[CaseEvent]:
        """One batch of one reading, as the hub receives it (``triage=True``)."""
        got = self.core.receive([self.reading(resident, t, **vitals)], triage=triage)
        assert all(isinstance(o, Accepted) for o in got.outcomes), got.outcomes
        return got.events

    def results(self, resident: str) -> list[tuple[str, str, int | None]]:
        """(at, priority, news2) of every triage result recorded for the resident."""
        return [
            (str(at), str(p), n)
            for at, p, n in self.store.fetchall(
                "SELECT at, priority, news2 FROM triage_results WHERE resident_id = ?"
                " ORDER BY result_id",
                (resident,),
            )
        ]

    def case_of(self, resident: str) -> tuple[str, str, str | None, list[str]] | None:
        """(case id, status, suggested priority, sources) of the resident's case."""
        row = self.store.fetchone(
            "SELECT c.case_id, c.status, c.suggested_priority, c.sources FROM cases c"
            " JOIN case_residents r ON r.case_id = c.case_id WHERE r.resident_id = ?",
            (resident,),
        )
        return None if row is None else (row[0], row[1], row[2], json.loads(row[3]))

    def timeline(self, case_id: str) -> list[tuple[str, dict[str, object]]]:
        return [
            (str(kind), json.loads(detail))
            for kind, detail in self.store.fetchall(
                "SELECT kind, detail FROM case_timeline WHERE case_id = ? ORDER BY event_id",
                (case_id,),
            )
        ]

    def count(self, table: str) -> int:
        return int(self.store.fetchone(f"SELECT count(*) FROM {table}")[0])

    def commits_during(self) -> Commits:
        return Commits(self.store.conn)

    def at_p1(self) -> str:
        """res-a first P2 (NEWS2 1) at T0, then P1 (NEWS2 5) at STEP: its case id."""
        self.send(A, 0, P2_NEWS2_1)
        self.send(A, STEP, P1_NEWS2_5)
        case = self.case_of(A)
        assert case is not None and case[2] == "P1"
        return case[0]


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[Ward]:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        yield Ward(services)


def kinds(events: list[CaseEvent]) -> list[tuple[str, str | None]]:
    return [(e.event, e.resident_id) for e in events]


def ts(t: float) -> str:
    return iso(T0.timestamp() + t)


# ---------------------------------------------------------------------------- rises


def test_a_residents_first_result_is_recorded_by_the_batch(ward: Ward) -> None:
    """A resident's first result is recorded with its batch, whatever the level; no
    case opens below P1, so there is no event to stream."""
    assert ward.send(A, 0, P3_NEWS2_0) == []
    assert ward.results(A) == [(ts(0), "P3", 0)]
    assert ward.case_of(A) is None
    view = ward.core.cases.view(A)
    assert view is not None and view.priority == "P3"


def test_a_rise_from_p2_to_p1_is_recorded_with_its_batch_and_opens_a_case(ward: Ward) -> None:
    ward.send(A, 0, P2_NEWS2_1)
    assert ward.results(A) == [(ts(0), "P2", 1)]

    rising = ward.reading(A, STEP, **P1_NEWS2_5)
    got = ward.core.receive([rising], triage=True)  # no tick in between

    assert kinds(got.events) == [("case_opened", A), ("priority_changed", A)]
    opened, changed = got.events
    assert opened.detail == {"source": "vitals"}
    assert (changed.detail["from"], changed.detail["to"]) == ("P2", "P1")
    assert "SpO2 scale 1 scores 3" in changed.detail["reasons"]
    assert opened.case_id == changed.case_id and opened.at == changed.at == T0.timestamp() + STEP
    # Recorded at the batch's time, resting on the observations the batch carried.
    assert ward.results(A) == [(ts(0), "P2", 1), (ts(STEP), "P1", 5)]
    (used,) = ward.store.fetchone(
        "SELECT observations FROM triage_results ORDER BY result_id DESC LIMIT 1"
    )
    (accepted,) = got.outcomes
    assert isinstance(accepted, Accepted)
    assert {o.obs_id for o in accepted.observations} <= set(json.loads(used))
    # The case: open from vitals, at P1, its timeline in order.
    assert ward.case_of(A) == (opened.case_id, "ACTIF", "P1", ["vitals"])
    timeline = ward.timeline(str(opened.case_id))
    assert [k for k, _ in timeline] == ["opened", "triage", "priority_changed"]
    assert timeline[0][1] == {"source": "vitals", "by": "triage"}
    assert (timeline[2][1]["from"], timeline[2][1]["to"]) == ("P2", "P1")
    view = ward.core.cases.view(A)
    assert view is not None and (view.priority, view.case_id) == ("P1", opened.case_id)


def test_a_rise_within_p0_p1_is_recorded_on_the_open_case(ward: Ward) -> None:
    """P1 → P0 (NEWS2 ≥ 7) is a rise too: recorded with the batch, on the same case."""
    case_id = ward.at_p1()
    events = ward.send(A, 2 * STEP, {"spo2": 91.0, "pulse": 135.0, "resp": 26.0})
    assert kinds(events) == [("priority_changed", A)]
    assert (events[0].case_id, events[0].detail["from"], events[0].detail["to"]) == (
        case_id,
        "P1",
        "P0",
    )
    assert ward.results(A)[-1] == (ts(2 * STEP), "P0", 9)
    assert ward.count("cases") == 1  # the open case is reused, never duplicated


# ------------------------------------------------------------ left to the tick


def test_a_news2_change_at_the_same_priority_waits_for_the_tick(ward: Ward) -> None:
    ward.send(A, 0, P2_NEWS2_1)

    assert ward.send(A, STEP, P2_NEWS2_2) == []
    assert ward.results(A) == [(ts(0), "P2", 1)]  # nothing from the batch
    view = ward.core.cases.view(A)
    assert view is not None and view.news2 == 1  # the board still shows the last result

    assert ward.core.tick(T0.timestamp() + STEP + 1) == []  # no priority change to stream
    assert ward.results(A) == [(ts(0), "P2", 1), (ts(STEP + 1), "P2", 2)]


def test_a_news2_change_at_p1_waits_for_the_tick_on_the_open_case(ward: Ward) -> None:
    case_id = ward.at_p1()
    before = ward.timeline(case_id)

    assert ward.send(A, 2 * STEP, P1_NEWS2_6) == []
    assert ward.results(A)[-1] == (ts(STEP), "P1", 5)
    assert ward.timeline(case_id) == before
    (news2,) = ward.store.fetchone("SELECT news2 FROM cases WHERE case_id = ?", (case_id,))
    assert news2 == 5

    assert ward.core.tick(T0.timestamp() + 2 * STEP + 1) == []
    assert ward.results(A)[-1] == (ts(2 * STEP + 1), "P1", 6)
    added = ward.timeline(case_id)[len(before) :]
    assert [k for k, _ in added] == ["triage"]  # a result on the case, no priority_changed
    (news2,) = ward.store.fetchone("SELECT news2 FROM cases WHERE case_id = ?", (case_id,))
    assert news2 == 6


def test_a_lowering_is_not_recorded_by_the_batch(ward: Ward) -> None:
    """Back to normal values: the batch records nothing; the tick records the result
    held at P1, then the lowering once it held ``deescalate_after_s``."""
    case_id = ward.at_p1()
    hold = ward.core.cases.deescalate_after_s
    dropped_at = 2 * STEP

    assert ward.send(A, dropped_at, P3_NEWS2_0) == []
    assert ward.results(A) == [(ts(0), "P2", 1), (ts(STEP), "P1", 5)]
    assert ward.case_of(A) == (case_id, "ACTIF", "P1", ["vitals"])
    view = ward.core.cases.view(A)
    assert view is not None and view.priority == "P1"

    assert ward.core.tick(T0.timestamp() + dropped_at + 1) == []
    assert ward.results(A)[-1] == (ts(dropped_at + 1), "P1", 0)  # held: no event
    events = ward.core.tick(T0.timestamp() + dropped_at + hold + 1)
    assert kinds(events) == [("priority_changed", A)]
    assert (events[0].detail["from"], events[0].detail["to"]) == ("P1", "P3")
    assert ward.results(A)[-1] == (ts(dropped_at + hold + 1), "P3", 0)


# ------------------------------------------------------------------- who is scored


def test_only_the_residents_the_batch_touched_are_scored(ward: Ward) -> None:
    ward.send(A, 0, P2_NEWS2_1)
    ward.send(B, 0, P2_NEWS2_1)
    # res-b's rise arrives by a batch that does not triage (the replay path): the book
    # has its values, nothing scored them yet.
    assert ward.send(B, STEP, P1_NEWS2_5, triage=False) == []

    # A batch about res-a only: res-b is not scored, its rise not recorded.
    assert ward.send(A, STEP, P2_NEWS2_1) == []
    assert ward.results(B) == [(ts(0), "P2", 1)]
    assert ward.case_of(B) is None
    view = ward.core.cases.view(B)
    assert view is not None and view.priority == "P2"

    # The tick scores everyone: res-b's rise is recorded then.
    events = ward.core.tick(T0.timestamp() + STEP + 1)
    assert kinds(events) == [("case_opened", B), ("priority_changed", B)]
    assert ward.results(B)[-1] == (ts(STEP + 1), "P1", 5)
    assert ward.results(A) == [(ts(0), "P2", 1)]


def test_unknown_ids_are_ignored(ward: Ward) -> None:
    ward.send(A, 0, P2_NEWS2_1)
    ward.send(A, STEP, P1_NEWS2_5, triage=False)  # a pending rise of res-a
    book = ward.core.cases
    now = T0.timestamp() + STEP

    assert book.triage_residents([], now) == []
    assert book.triage_residents(["ehpad-lilas/nobody", "elsewhere/res-a"], now) == []
    assert ward.count("triage_results") == 1

    events = book.triage_residents(["ehpad-lilas/nobody", A, A], now)
    assert kinds(events) == [("case_opened", A), ("priority_changed", A)]
    assert ward.results(A)[-1] == (ts(STEP), "P1", 5)  # recorded once


# ------------------------------------------------------------------ the transaction


def test_ingest_cases_and_triage_are_one_commit(ward: Ward) -> None:
    ward.send(A, 0, P2_NEWS2_1)
    with ward.commits_during() as trace:
        events = ward.send(A, STEP, P1_NEWS2_5)
    assert kinds(events) == [("case_opened", A), ("priority_changed", A)]
    assert trace.commits == 1


def test_a_failure_in_triage_leaves_nothing_of_the_batch(ward: Ward) -> None:
    """The rise's result cannot be written: the message, its observations, the device's
    counters, the new case, the audit event — none of it is stored, and the book does
    not keep the rolled-back case. The unacknowledged batch then comes back whole."""
    ward.send(A, 0, P2_NEWS2_1)
    tables = (
        "ingest_messages",
        "observations",
        "cases",
        "case_residents",
        "case_timeline",
        "triage_results",
        "audit_events",
    )
    before = {t: ward.count(t) for t in tables}
    (frames_before,) = ward.store.fetchone("SELECT frames FROM devices WHERE device = 'ox-a'")
    rising = ward.reading(A, STEP, **P1_NEWS2_5)

    with refusing(ward.store.path, "triage_results"):
        with pytest.raises(sqlite3.DatabaseError, match="refused by the test"):
            ward.core.receive([rising], triage=True)
        assert {t: ward.count(t) for t in tables} == before
        (frames,) = ward.store.fetchone("SELECT frames FROM devices WHERE device = 'ox-a'")
        assert frames == frames_before
        view = ward.core.cases.view(A)
        assert view is not None and (view.priority, view.case_id) == ("P2", None)

    # The book forgot the batch's values too: a tick finds nothing to record.
    assert ward.core.tick(T0.timestamp() + STEP) == []
    assert {t: ward.count(t) for t in tables} == before
    # Redelivered, the batch is new to the database and applied whole, once.
    got = ward.core.receive([rising], triage=True)
    assert all(isinstance(o, Accepted) for o in got.outcomes)
    assert kinds(got.events) == [("case_opened", A), ("priority_changed", A)]
    assert ward.count("cases") == 1
    assert ward.results(A) == [(ts(0), "P2", 1), (ts(STEP), "P1", 5)]


def test_a_rolled_back_batch_leaves_no_news2_history_for_another_resident(ward: Ward) -> None:
    """The failed batch had written res-a's NEWS2 into the history ring before its
    transaction rolled back; the rebuilt book renumbered its rows, and res-b, new, was
    given res-a's old row: its NEWS2 3 read as 'risen by 3' and opened a P1 case."""
    with refusing(ward.store.path, "triage_results"), pytest.raises(sqlite3.DatabaseError):
        ward.send(A, 0, P3_NEWS2_0)
    events = ward.send(B, 30, {"spo2": 94.0, "pulse": 115.0})  # NEWS2 3: P2 on its own
    assert kinds(events) == []
    assert ward.results(B) == [(ts(30), "P2", 3)]


def test_a_rolled_back_batch_raises_its_incident_again_when_redelivered(ward: Ward) -> None:
    """Three forged MACs and a rise in one batch; the triage insert fails. The incident
    row rolled back with the batch, so the watch must not remember having raised it."""
    ward.send(A, 0, P2_NEWS2_1)
    forged = []
    for _ in range(3):
        r = ward.reading(A, STEP, **P2_NEWS2_1)
        data = json.loads(r.payload)
        data["mac"] = "A" * 43
        forged.append(Incoming(r.source, json.dumps(data).encode(), r.received_ts))
    batch = [*forged, ward.reading(A, STEP, **P1_NEWS2_5)]
    with refusing(ward.store.path, "triage_results"), pytest.raises(sqlite3.DatabaseError):
        ward.core.receive(batch, triage=True)
    assert ward.store.fetchall("SELECT kind FROM incidents") == []
    got = ward.core.receive(batch, triage=True)
    assert "incident" in [e.event for e in got.events]
    assert ward.store.fetchall("SELECT kind, category FROM incidents") == [
        ("security", "mac-failure")
    ]
