"""The service API every front end uses: habilitations inside every call, every call
audited, the board as a snapshot plus versioned deltas, alarms never coalesced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

import scenarios
from console.auth import Denied, LocalOperator, Session, code_at
from console.cases import CaseEvent, DecisionRequest, default_dir
from console.services import MAX_BACKLOG, RegulationService, Services, open_services
from console.settings import Settings

#: Decisions read the official Hub Santé code lists, which live outside the repository.
pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Services, dict[str, Session]]]:
    db = tmp_path_factory.mktemp("api") / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("sepsis-ehpad"), services).run()
        sessions = {}
        for user, role, site in (
            ("drmartin", "regulateur", None),
            ("audit1", "auditeur", None),
            ("nurse1", "ide_ehpad", "ehpad-saint-joseph"),
            ("nurse2", "ide_ehpad", "ehpad-ailleurs"),
        ):
            enrolment = services.accounts.create_user(OP, user, [role], PW, site=site)
            secret = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
            sessions[user] = services.accounts.login(user, PW, code_at(secret, time.time()), "t1")
        yield services, sessions


def events(services: Services, action: str) -> list[tuple[str, str]]:
    return services.store.fetchall(
        "SELECT actor, outcome FROM audit_events WHERE action = ? ORDER BY seq", (action,)
    )


async def test_the_board_is_habilitated_and_audited(world) -> None:
    services, s = world
    api = RegulationService(services)
    board = await api.board(s["drmartin"])
    assert len(board.rows) == 1 and board.rows[0].suggested_priority == "P0"
    assert board.rows[0].patients == ("ehpad-saint-joseph/res-0077",)
    assert ("drmartin", "success") in events(services, "board.view")
    with pytest.raises(Denied):
        await api.board(s["audit1"])  # auditors read the trail, not the board
    assert ("audit1", "denied") in events(services, "board.view")
    assert len((await api.board(s["nurse1"])).rows) == 1  # her own site
    assert (await api.board(s["nurse2"])).rows == ()  # another EHPAD's residents: none


async def test_a_case_needs_clinical_read(world) -> None:
    services, s = world
    api = RegulationService(services)
    (row,) = (await api.board(s["drmartin"])).rows
    detail = await api.case(s["drmartin"], row.case_id)
    assert detail.timeline[0].kind == "opened" and any(e.kind == "bilan" for e in detail.timeline)
    assert ("drmartin", "success") in events(services, "case.read")
    with pytest.raises(Denied):
        await api.case(s["nurse2"], row.case_id)


async def test_alarms_are_never_coalesced_and_a_slow_subscriber_resyncs(world) -> None:
    services, s = world
    api = RegulationService(services)
    (row,) = (await api.board(s["drmartin"])).rows
    stream = api.updates(s["drmartin"])
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # the subscription is registered
    now = time.time()
    api.publish(
        [
            CaseEvent("priority_changed", row.case_id, None, now, {"to": "P1", "reasons": ["a"]}),
            CaseEvent("priority_changed", row.case_id, None, now, {"to": "P0", "reasons": ["b"]}),
        ]
    )
    delta = await asyncio.wait_for(first, 5)
    assert [a.priority for a in delta.alarms] == ["P1", "P0"]  # both, in order
    assert [r.case_id for r in delta.upserts] == [row.case_id]  # the row once, newest state
    version = delta.version
    for _ in range(MAX_BACKLOG + 5):  # nobody reads: the backlog overflows
        api.publish([CaseEvent("priority_changed", row.case_id, None, now, {"to": "P1"})])
    got = [await asyncio.wait_for(anext(stream), 5)]
    while not got[-1].resync:
        got.append(await asyncio.wait_for(anext(stream), 5))
    assert got[-1].version > version and len(got[-1].alarms) >= 5  # the alarms survived
    await stream.aclose()


async def test_decide_through_the_service(world) -> None:
    services, s = world
    api = RegulationService(services)
    (row,) = (await api.board(s["drmartin"])).rows
    decision = await api.decide(
        s["drmartin"],
        DecisionRequest(
            case_id=row.case_id,
            priority="P0",
            care_level="R1",
            decision_type="INTER",
            resource="SMUR.ADULT",
        ),
    )
    assert decision.intention >= 1 and decision.priority == "P0"
    with pytest.raises(Denied):
        await api.decide(
            s["nurse1"],
            DecisionRequest(
                case_id=row.case_id, priority="P0", care_level="R1", decision_type="INTER"
            ),
        )
    preview = await api.compte_rendu(s["drmartin"], row.case_id)
    assert preview.report_id is None and "SMUR" in preview.markdown
    signed = await api.compte_rendu(s["drmartin"], row.case_id, sign=True)
    assert signed.report_id and signed.report_id.startswith("cr_")
    assert (await api.board(s["drmartin"])).rows == ()  # ACHEVE: off the board


def test_the_lock_policy_is_the_installation_s(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from console.settings import load_settings

    monkeypatch.setenv("SAMU_CONSOLE__LOCK_IDLE_S", "30")
    monkeypatch.setenv("SAMU_CONSOLE__TOTP_AFTER_LOCK_S", "600")
    with open_services(load_settings(None, db=tmp_path / "s.db"), create=True) as services:
        policy = RegulationService(services).lock_policy
    assert (policy.idle_s, policy.totp_after_s, policy.reauth_h) == (30.0, 600.0, 12.0)
