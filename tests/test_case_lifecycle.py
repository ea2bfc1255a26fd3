"""A case's life beyond the automatic opening rules (cases.md): opened by hand on a call,
validated and closed after its compte rendu, never reopened — what arrives about the
resident afterwards opens a new case, and the board's alarms never land on a finished
one. Real SQLite file, real envelopes through the real core, real sessions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from console.auth import Denied, LocalOperator, Session, code_at
from console.cases import (
    CaseError,
    DecisionError,
    DecisionRequest,
    ManualCaseRequest,
    ReportError,
    StatusRequest,
    default_dir,
)
from console.ingest import Incoming, Sender
from console.records import AuditContext
from console.services import RegulationCore, RegulationService, Services, open_services
from console.settings import Settings
from protocols import Envelope, Observation, VitalsBody, seal_envelope
from protocols.topics import topic_for

pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)

SITE = "ehpad-lilas"
PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")
ENROL = AuditContext(actor="local:tester", role="local-operator", terminal="pts/test")
SPO2, HR, TEMP = "59408-5", "8867-4", "8310-5"


@dataclass
class World:
    services: Services
    api: RegulationService
    core: RegulationCore
    sessions: dict[str, Session]
    keys: dict[str, bytes]
    secrets: dict[str, str]
    seq: int = 0

    def vitals(self, device: str, t: float, **values: float) -> Incoming:
        """One signed vitals message from ``device`` at ``t`` (epoch s)."""
        self.seq += 1
        at = datetime.fromtimestamp(t, UTC)
        units = {SPO2: "%", HR: "/min", TEMP: "Cel"}
        codes = {"spo2": SPO2, "hr": HR, "temp": TEMP}
        body = VitalsBody(
            v=1,
            observations=tuple(
                Observation(code=codes[k], value=v, unit=units[codes[k]], time=at, method="device")
                for k, v in values.items()
            ),
        )
        env = Envelope.create(site=SITE, device=device, seq=self.seq, body=body, sent=at)
        return Incoming(topic_for(env), seal_envelope(env, self.keys[device]), t)

    def send(self, device: str, t: float, **values: float) -> list[str]:
        """Deliver one message as the hub does (triage with the batch); its events."""
        got = self.core.receive([self.vitals(device, t, **values)], triage=True)
        return [f"{e.event}:{e.case_id}" for e in got.events]

    def case_of(self, resident: str) -> list[tuple[str, str]]:
        return self.services.store.fetchall(
            "SELECT c.case_id, c.status FROM cases c JOIN case_residents r USING (case_id)"
            " WHERE r.resident_id = ? ORDER BY c.opened_ts",
            (f"{SITE}/{resident}",),
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        enrolled = services.devices.enrol(
            ENROL,
            [Sender(SITE, "ox-1", "spo2", "res-01"), Sender(SITE, "ox-2", "spo2", "res-02")],
            now=datetime.now(UTC),
        )
        keys = {sender.device: key for sender, key, _ in enrolled}
        sessions, secrets = {}, {}
        for user, role, site in (
            ("drmartin", "regulateur", None),
            ("arm1", "arm", None),
            ("nurse1", "ide_ehpad", SITE),
            ("audit1", "auditeur", None),
        ):
            enrolment = services.accounts.create_user(OP, user, [role], PW, site=site)
            secret = secrets[user] = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
            sessions[user] = services.accounts.login(user, PW, code_at(secret, time.time()), "t1")
        core = RegulationCore(services, now=time.time())
        yield World(services, RegulationService(services), core, sessions, keys, secrets)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def sign_off(w: World, case_id: str, priority: str) -> None:
    """What ends a régulation: a decision, then the signed compte rendu (ACHEVE)."""
    request = DecisionRequest(
        case_id=case_id, priority=priority, care_level="R1", decision_type="INTER"
    )
    run(w.api.decide(w.sessions["drmartin"], request))
    run(w.api.compte_rendu(w.sessions["drmartin"], case_id, sign=True))


def audit(w: World, action: str) -> list[tuple[str, str]]:
    return w.services.store.fetchall(
        "SELECT actor, outcome FROM audit_events WHERE action = ? ORDER BY seq", (action,)
    )


# ---------------------------------------------------------------- after the régulation


def test_what_arrives_after_the_compte_rendu_opens_a_new_case_never_the_finished_one(
    world: World,
) -> None:
    w, t = world, time.time()
    events = w.send("ox-1", t, spo2=85)  # SpO2 85 scores 3: P1
    ((first, status),) = w.case_of("res-01")
    assert f"case_opened:{first}" in events and status == "ACTIF"
    sign_off(w, first, "P1")
    assert w.case_of("res-01") == [(first, "ACHEVE")]
    # Still P1 a moment later: the physician has just dealt with it; no new case for
    # the same state, and nothing more written onto the finished one.
    updated = w.services.store.fetchone("SELECT updated_at FROM cases WHERE case_id = ?", (first,))
    assert w.send("ox-1", t + 1, spo2=85) == []
    w.core.tick(t + 2)
    assert w.case_of("res-01") == [(first, "ACHEVE")]
    assert (
        w.services.store.fetchone("SELECT updated_at FROM cases WHERE case_id = ?", (first,))
        == updated
    )
    # A further rise (NEWS2 ≥ 7: P0) is a new episode: a new case, on the board, alarmed.
    events = w.send("ox-1", t + 3, spo2=85, hr=135, temp=39.5)
    (_, (second, status)) = w.case_of("res-01")
    assert second != first and status == "ACTIF"
    assert events[:2] == [f"case_opened:{second}", f"priority_changed:{second}"]
    board = run(w.api.board(w.sessions["drmartin"]))
    assert [(r.case_id, r.suggested_priority) for r in board.rows] == [(second, "P0")]


def test_a_case_finished_from_another_process_is_released_before_the_next_rise(
    world: World,
) -> None:
    """``samu records compte-rendu --sign`` on a live hub's database: the hub learns it
    from the database, not from a call, and a rise right after still opens a case."""
    w, t = world, time.time()
    w.send("ox-1", t, spo2=94)  # SpO2 94 scores 1: P2, no case
    assert w.case_of("res-01") == []
    w.send("ox-1", t + 1, spo2=85)
    ((first, _),) = w.case_of("res-01")
    with open_services(w.services.settings) as other:  # a second process's view
        other_api = RegulationService(other)
        session = other.accounts.login(
            "drmartin",
            PW,
            code_at(w.secrets["drmartin"], time.time() + 30),  # a code not used yet
            "t2",
        )
        request = DecisionRequest(
            case_id=first, priority="P1", care_level="R2", decision_type="CONSEIL"
        )
        run(other_api.decide(session, request))
        run(other_api.compte_rendu(session, first, sign=True))
    # No tick in between: the rise itself finds the case finished.
    events = w.send("ox-1", t + 2, spo2=85, hr=135, temp=39.5)
    (_, (second, _)) = w.case_of("res-01")
    assert f"case_opened:{second}" in events and second != first


# ---------------------------------------------------------------- validate, close


def test_a_finished_case_is_validated_then_closed_one_step_at_a_time(world: World) -> None:
    w, t = world, time.time()
    w.send("ox-1", t, spo2=85)
    ((case_id, _),) = w.case_of("res-01")
    dr, arm = w.sessions["drmartin"], w.sessions["arm1"]
    with pytest.raises(CaseError, match="compte rendu must be signed first"):
        run(w.api.advance_case(dr, StatusRequest(case_id=case_id, to="VALIDE")))
    with pytest.raises(CaseError, match="must be validated first"):
        run(w.api.advance_case(dr, StatusRequest(case_id=case_id, to="CLOTURE")))
    sign_off(w, case_id, "P1")
    # Validation is a medical act: not the ARM's.
    with pytest.raises(Denied):
        run(w.api.advance_case(arm, StatusRequest(case_id=case_id, to="VALIDE")))
    # Finished, the case leaves the board for the list of dossiers still to validate.
    assert run(w.api.board(dr)).rows == ()
    assert [(r.case_id, r.status) for r in run(w.api.finished(dr))] == [(case_id, "ACHEVE")]
    assert [r.case_id for r in run(w.api.finished(w.sessions["nurse1"]))] == [case_id]
    with pytest.raises(Denied):
        run(w.api.finished(w.sessions["audit1"]))
    assert run(w.api.advance_case(dr, StatusRequest(case_id=case_id, to="VALIDE"))) == "VALIDE"
    assert [r.status for r in run(w.api.finished(dr))] == ["VALIDE"]
    with pytest.raises(CaseError, match="already VALIDE"):
        run(w.api.advance_case(dr, StatusRequest(case_id=case_id, to="VALIDE")))
    # Closing the validated dossier is the ARM's administrative end of it.
    with pytest.raises(Denied):
        run(w.api.advance_case(w.sessions["nurse1"], StatusRequest(case_id=case_id, to="CLOTURE")))
    assert run(w.api.advance_case(arm, StatusRequest(case_id=case_id, to="CLOTURE"))) == "CLOTURE"
    assert run(w.api.finished(dr)) == []  # closed: nothing left to do
    with pytest.raises(CaseError, match="a finished step is not taken again"):
        run(w.api.advance_case(dr, StatusRequest(case_id=case_id, to="VALIDE")))
    # A closed dossier takes no new decision.
    with pytest.raises(DecisionError, match="is CLOTURE: its régulation is over"):
        run(
            w.api.decide(
                dr,
                DecisionRequest(
                    case_id=case_id, priority="P1", care_level="R1", decision_type="INTER"
                ),
            )
        )
    steps = [
        json.loads(d)
        for (d,) in w.services.store.fetchall(
            "SELECT detail FROM case_timeline WHERE case_id = ? AND kind = 'status'"
            " ORDER BY event_id",
            (case_id,),
        )
    ]
    assert steps == [
        {"from": "ACHEVE", "to": "VALIDE", "by": "user:drmartin"},
        {"from": "VALIDE", "to": "CLOTURE", "by": "user:arm1"},
    ]
    assert audit(w, "case.validate") == [
        ("drmartin", "denied"),  # ACTIF
        ("arm1", "denied"),
        ("drmartin", "success"),
        ("drmartin", "denied"),  # already
        ("drmartin", "denied"),  # CLOTURE
    ]
    assert audit(w, "case.close") == [
        ("drmartin", "denied"),
        ("nurse1", "denied"),
        ("arm1", "success"),
    ]
    with pytest.raises(CaseError, match="no case"):
        run(w.api.advance_case(dr, StatusRequest(case_id="fr.health.samu075.X", to="VALIDE")))


# ---------------------------------------------------------------- by hand


def test_a_call_opens_a_case_by_hand_and_the_core_joins_it(world: World) -> None:
    w, t = world, time.time()
    arm = w.sessions["arm1"]
    call = ManualCaseRequest(site=SITE, resident="res-02", motif="M03.06", caller="SANTE.INF")
    reply = run(w.api.open_case(arm, call))
    assert reply.opened and w.case_of("res-02") == [(reply.case_id, "ACTIF")]
    sources, opened_by = w.services.store.fetchone(
        "SELECT sources, opened_by FROM cases WHERE case_id = ?", (reply.case_id,)
    )
    assert json.loads(sources) == ["call"] and opened_by == "user:arm1"
    (detail,) = w.services.store.fetchone(
        "SELECT detail FROM case_timeline WHERE case_id = ? AND kind = 'opened'", (reply.case_id,)
    )
    assert json.loads(detail)["labels"]["motif"] == "Douleur thoracique"
    board = run(w.api.board(w.sessions["drmartin"]))
    assert [r.case_id for r in board.rows] == [reply.case_id]
    # The same resident called about again: the open case, never a second one.
    again = run(w.api.open_case(w.sessions["drmartin"], call))
    assert (again.case_id, again.opened) == (reply.case_id, False)
    # The resident's vitals then land on that case, even before a tick.
    events = w.send("ox-2", t, spo2=85)
    assert f"priority_changed:{reply.case_id}" in events
    assert "case_opened" not in " ".join(events)
    assert w.case_of("res-02") == [(reply.case_id, "ACTIF")]
    (sources,) = w.services.store.fetchone(
        "SELECT sources FROM cases WHERE case_id = ?", (reply.case_id,)
    )
    assert json.loads(sources) == ["vitals", "call"]


@pytest.mark.parametrize(
    ("user", "request_", "error"),
    [
        ("arm1", {"resident": "res-99", "motif": "M03.06"}, "no resident 'res-99'"),
        ("arm1", {"resident": "res-02", "motif": "M99.99"}, "'M99.99' is not a motif code"),
        ("arm1", {"resident": "res-02", "motif": "M03.06", "caller": "MARTIEN"}, "typeAppelant"),
        ("nurse1", {"resident": "res-02", "motif": "M03.06"}, "Denied"),
        ("audit1", {"resident": "res-02", "motif": "M03.06"}, "Denied"),
    ],
)
def test_a_call_is_refused_and_audited_when_it_cannot_be_a_case(
    world: World, user: str, request_: dict[str, str], error: str
) -> None:
    w = world
    call = ManualCaseRequest(site=SITE, **request_)
    with pytest.raises((CaseError, Denied)) as caught:
        run(w.api.open_case(w.sessions[user], call))
    assert error in f"{type(caught.value).__name__}: {caught.value}"
    assert w.services.store.fetchone("SELECT count(*) FROM cases")[0] == 0
    assert audit(w, "case.create")[-1] == (user, "denied")


def test_a_manual_case_request_refuses_what_is_not_an_id() -> None:
    with pytest.raises(ValueError, match="pattern"):
        ManualCaseRequest(site="ehpad lilas; drop", resident="res-01", motif="M03.06")


# ---------------------------------------------------------------- a failed batch


def test_a_batch_that_rolls_back_leaves_nothing_behind_in_memory(world: World) -> None:
    """A failure inside the batch's transaction (here a real trigger refusing the triage
    result) rolls back the case it opened; the book must not keep that case id, or the
    next results would land on a case that does not exist."""
    w, t = world, time.time()
    store = w.services.store
    with store.transaction() as conn:
        conn.execute(
            "CREATE TRIGGER refuse_results BEFORE INSERT ON triage_results"
            " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    message = w.vitals("ox-1", t, spo2=85)
    with pytest.raises(Exception, match="disk says no"):
        w.core.receive([message], triage=True)
    assert store.fetchone("SELECT count(*) FROM cases")[0] == 0
    assert w.core.cases.open_cases() == {}
    with store.transaction() as conn:
        conn.execute("DROP TRIGGER refuse_results")
    # Redelivered (unacknowledged), the batch is applied whole, once.
    got = w.core.receive([message], triage=True)
    ((case_id, _),) = w.case_of("res-01")
    assert f"case_opened:{case_id}" in [f"{e.event}:{e.case_id}" for e in got.events]
    assert w.core.cases.open_cases() == {f"{SITE}/res-01": case_id}
    assert store.fetchone("SELECT count(*) FROM observations")[0] == 1


def test_one_signed_compte_rendu_per_regulation_and_a_reason_cannot_forge_it(
    world: World,
) -> None:
    w, t = world, time.time()
    w.send("ox-1", t, spo2=85)
    ((case_id, _),) = w.case_of("res-01")
    forged = "vu\n\n## Professionnels\n- drchef — médecin régulateur\n\n<!--"
    request = DecisionRequest(
        case_id=case_id, priority="P0", care_level="R1", decision_type="INTER", reason=forged
    )
    run(w.api.decide(w.sessions["drmartin"], request))
    signed = run(w.api.compte_rendu(w.sessions["drmartin"], case_id, sign=True))
    # The reason is one plain line: no heading, no comment, the real sections intact.
    assert signed.markdown.count("## Professionnels") == 1
    assert "<!--" not in signed.markdown and "drchef" in signed.markdown
    assert "- drmartin — " in signed.markdown
    with pytest.raises(ReportError, match=f"already signed \\({signed.report_id}\\)"):
        run(w.api.compte_rendu(w.sessions["drmartin"], case_id, sign=True))
    assert w.services.store.fetchone("SELECT count(*) FROM comptes_rendus")[0] == 1
    assert audit(w, "report.sign")[-1] == ("drmartin", "denied")


def test_joining_a_case_and_stepping_an_unknown_one_are_in_the_trail(world: World) -> None:
    w = world
    call = ManualCaseRequest(site=SITE, resident="res-02", motif="M03.06")
    run(w.api.open_case(w.sessions["arm1"], call))
    run(w.api.open_case(w.sessions["arm1"], call))
    assert audit(w, "case.create") == [("arm1", "success")]
    assert audit(w, "case.join") == [("arm1", "success")]
    with pytest.raises(CaseError, match="no case"):
        run(w.api.advance_case(w.sessions["drmartin"], StatusRequest(case_id="nope", to="VALIDE")))
    assert audit(w, "case.validate") == [("drmartin", "failure")]
