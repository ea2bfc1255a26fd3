"""The régulation console, driven with Textual's Pilot on a real database.

The world is a real SQLite file into which the ``demo-garde`` scenario was replayed (the
same ingest, cases and triage as the hub), real accounts (password + TOTP) and the real
service API; the app is the real :class:`RegulationApp`. Tests wait on conditions, never
on fixed sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, Select, Static

import scenarios
from console.auth import LocalOperator
from console.cases import CaseEvent, DecisionRequest, default_dir
from console.services import RegulationService, Services, open_services
from console.settings import Settings
from console.tui import Backend, DemoAccount, RegulationApp, StationApp
from console.tui._admin import AuditScreen
from console.tui._board import BoardScreen
from console.tui._case import CaseScreen, DecisionScreen, ReportScreen
from console.tui._format import MASK
from console.tui._login import LoginScreen

pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Services, dict[str, DemoAccount]]]:
    db = tmp_path_factory.mktemp("tui") / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("demo-garde"), services).run()
        enrolment = services.accounts.create_user(OP, "drmartin", ["regulateur"], PW)
        yield services, {"drmartin": DemoAccount("drmartin", PW, enrolment.otpauth_uri)}


def make_app(
    services: Services, *, live: bool = True, demo: DemoAccount | None = None
) -> RegulationApp:
    backend = Backend(services=services, api=RegulationService(services), live=live, demo=demo)
    return RegulationApp(backend)


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


_COUNT = iter(range(1000))


def count_bells(app: RegulationApp) -> list[float]:
    """The times the terminal bell rang (the app's bell, recorded instead of sounded)."""
    bells: list[float] = []
    app.bell = lambda: bells.append(time.monotonic())  # type: ignore[method-assign]
    return bells


def person(services: Services, role: str) -> DemoAccount:
    """A new account for one test: a TOTP code is accepted once (replay protection), so
    two sign-ins by one person within 30 s would be refused, rightly."""
    user = f"{role[:5]}{next(_COUNT)}"
    enrolment = services.accounts.create_user(OP, user, [role], PW)
    return DemoAccount(user, PW, enrolment.otpauth_uri)


async def type_login(pilot, app: RegulationApp, account: DemoAccount) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*account.user_id, "tab", *account.password, "tab")
    await pilot.press(*account.totp(), "enter")


async def sign_in(pilot, app: RegulationApp, account: DemoAccount) -> BoardScreen:
    await type_login(pilot, app, account)
    await wait_for(pilot, lambda: isinstance(app.screen, BoardScreen) and app.screen.model.rows)
    screen = app.screen
    assert isinstance(screen, BoardScreen)
    await wait_for(pilot, lambda: screen.query_one("#board").row_count == len(screen.model.rows))
    return screen


async def test_the_login_form_is_id_password_code_and_refuses_a_wrong_code(world) -> None:
    services, accounts = world
    app = make_app(services, demo=accounts["drmartin"])
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        assert app.focused is not None and app.focused.id == "user"
        demo = str(app.screen.query_one("#demo", Static).render())
        assert f"password: {PW}" in demo.splitlines()
        assert any(line.startswith("TOTP: ") and line[6:].isdigit() for line in demo.splitlines())
        await pilot.press(*"drmartin", "tab", *PW, "tab", *"000000", "enter")
        message = app.screen.query_one("#message", Static)
        await wait_for(pilot, lambda: "Refused" in str(message.render()))
        assert isinstance(app.screen, LoginScreen)
        assert app.screen.query_one("#password", Input).value == ""
        assert app.screen.query_one("#user", Input).value == "drmartin"


async def test_the_board_orders_by_priority_and_rings_once_per_alarm(world) -> None:
    services, _ = world
    app = make_app(services)
    bells = count_bells(app)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        ordered = board.model.ordered()
        ranks = [r.decided_priority or r.suggested_priority for r in ordered]
        assert ranks == sorted(ranks, key=["P0", "P1", "P2", "P3", "NR"].index)
        assert bells == []
        target = ordered[-1].case_id
        api = app.backend.api
        assert api is not None
        now = datetime.now(UTC).timestamp()
        # Two alarms in one delta: two bells, two banner lines, never merged.
        arrest = {"to": "P0", "reasons": ["test: arrest"]}
        api.publish([
            CaseEvent("priority_changed", target, None, now, arrest),
            CaseEvent("implant_alert", target, None, now, {"alerts": ["shock_delivered"]}),
        ])  # fmt: skip
        await wait_for(pilot, lambda: len(bells) == 2)
        banner = str(board.query_one("#alarms").render())
        assert "P0" in banner and "test: arrest" in banner and "shock_delivered" in banner
        await pilot.press("a")
        await wait_for(pilot, lambda: not board.alarms)


async def test_a_decision_needs_a_reason_when_it_overrides_and_is_then_signed(world) -> None:
    services, _ = world
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        row = board.model.ordered()[0]
        app.decide(row)
        await wait_for(pilot, lambda: isinstance(app.screen, DecisionScreen)
                       and app.screen.query("#sel-priority"))  # fmt: skip
        form = app.screen
        other = "P2" if row.suggested_priority != "P2" else "P3"
        form.query_one("#sel-priority", Select).value = other
        form.query_one("#sel-care_level", Select).value = "R2"
        form.query_one("#sel-decision_type", Select).value = "CONSEIL"
        await pilot.press("ctrl+s")
        error = form.query_one("#error", Static)
        await wait_for(pilot, lambda: "reason is required" in str(error.render()))
        form.query_one("#reason", Input).value = "appel de l'EHPAD: amélioration sous O2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, DecisionScreen))
        decided = services.store.fetchall(
            "SELECT priority, author FROM decisions WHERE case_id = ?", (row.case_id,)
        )
        assert [p for p, _ in decided] == [other]


async def test_a_case_opens_with_its_tabs_and_the_compte_rendu_is_signed(world) -> None:
    services, _ = world
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen))
        case = app.screen
        assert isinstance(case, CaseScreen)
        await wait_for(
            pilot, lambda: case.detail is not None and case.query_one("#trail").row_count
        )
        assert "Affaire" in str(case.query_one("#head", Static).render())
        # The top case of the board has vital signs: the Vitals tab reads them.
        await wait_for(pilot, lambda: case.points)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen))
        report = app.screen
        assert isinstance(report, ReportScreen)
        await wait_for(pilot, lambda: bool(report.markdown))
        # Signing ends the régulation: refused while no decision is recorded.
        status = report.query_one("#report-status", Static)
        await pilot.press("s")
        await wait_for(pilot, lambda: "no decision yet" in str(status.render()))
        assert report.report_id is None
        api = app.backend.api
        assert api is not None and app.session is not None
        row = board.model.rows[report.case_id]
        await api.decide(app.session, DecisionRequest(
            case_id=row.case_id, priority=row.suggested_priority, care_level="R2",
            decision_type="CONSEIL",
        ))  # fmt: skip
        await pilot.press("s")
        await wait_for(pilot, lambda: report.report_id is not None)
        assert f"Signé : {report.report_id} par {app.session.user_id}" in report.markdown
        # The compte rendu's case for other systems: FHIR R4 and Hub Santé RS-EDA.
        folder = services.db_path.resolve().parent / "exports"
        stem = f"compte-rendu-{report.case_id.rsplit('.', 1)[-1]}"
        await pilot.press("f", "x")
        await wait_for(pilot, lambda: (folder / f"{stem}.fhir.json").exists()
                       and (folder / f"{stem}.rs-eda.json").exists())  # fmt: skip
        bundle = json.loads((folder / f"{stem}.fhir.json").read_text())
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
        eda = json.loads((folder / f"{stem}.rs-eda.json").read_text())
        assert eda["createCaseHealth"]["caseId"] == report.case_id
        assert services.store.fetchone(
            "SELECT 1 FROM audit_events WHERE action LIKE 'report.sign%' AND object = ?",
            (f"case:{report.case_id}",),
        )


async def test_the_lock_masks_identities_but_alarms_still_ring(world) -> None:
    services, _ = world
    app = make_app(services)
    bells = count_bells(app)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        table = board.query_one("#board")
        first = board.model.ordered()[0]
        await wait_for(pilot, lambda: str(table.get_cell(first.case_id, "resident")) != MASK)
        app.action_lock()
        await wait_for(pilot, lambda: str(table.get_cell(first.case_id, "resident")) == MASK)
        api = app.backend.api
        assert api is not None
        api.publish([CaseEvent("priority_changed", first.case_id, None, time.time(),
                               {"to": "P0", "reasons": ["during the lock"]})])  # fmt: skip
        await wait_for(pilot, lambda: len(bells) == 1)
        assert "during the lock" in str(board.query_one("#alarms").render())
        # What is on the glass, not only the cells: no resident of the board is rendered.
        await pilot.pause()
        residents = {p.split("/", 1)[-1] for r in board.model.rows.values() for p in r.patients}
        assert residents
        on_screen = app.export_screenshot()
        assert not [r for r in residents if r in on_screen], "an identity shows while locked"
        # No way around the lock: the command palette stays closed.
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert not CommandPalette.is_open(app)
        await pilot.press(*"wrong password", "enter")
        await wait_for(
            pilot, lambda: "Refused" in str(app.screen.query_one("#unlock-msg").render())
        )
        assert app.locked
        app.screen.query_one("#unlock-password", Input).value = ""
        await pilot.press(*PW, "enter")
        await wait_for(pilot, lambda: not app.locked)
        await wait_for(pilot, lambda: str(table.get_cell(first.case_id, "resident")) != MASK)
        await pilot.pause()
        assert first.patients[0].split("/", 1)[-1] in app.export_screenshot()


async def test_the_system_a_backend_runs_is_started_once(world) -> None:
    """Textual calls every class's on_mount along the MRO: an app that also called
    super().on_mount() started the demo's hub and simulator twice (two consumers of
    one MQTT outbox crashed at the first message)."""
    services, _ = world
    starts: list[str] = []

    async def start(backend: Backend) -> None:
        starts.append("start")

    for app in (
        RegulationApp(Backend(services=services, api=RegulationService(services), start=start)),
        StationApp(Backend(services=services, api=RegulationService(services), start=start),
                   site="ehpad-les-lilas", outbox=None),
    ):  # fmt: skip
        starts.clear()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda app=app: starts and not app.workers)
            await pilot.pause(0.2)
        assert starts == ["start"], type(app).__name__


async def test_the_audit_screen_is_for_auditeurs_only(world) -> None:
    services, _ = world
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        await sign_in(pilot, app, person(services, "regulateur"))
        await pilot.press("u")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, AuditScreen)
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        await type_login(pilot, app, person(services, "auditeur"))
        # An auditor has no board (habilitation matrix): the audit screen is home.
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen)
                       and app.screen.query("#verify"))  # fmt: skip
        verify = app.screen.query_one("#verify", Static)
        await wait_for(pilot, lambda: "intact" in str(verify.render()))


async def test_video_consent_says_who_and_is_recorded_then_withdrawn(world) -> None:
    from console.tui._case import ConsentScreen

    services, _ = world
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        case_id = board.model.ordered()[-1].case_id
        app.open_case(case_id)
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen) and app.screen.detail)
        case = app.screen
        await pilot.press("l")
        await wait_for(pilot, lambda: services.store.fetchone(
            "SELECT 1 FROM video_events WHERE case_ref = ? AND event = 'link_sent'"
            " AND recorded_by LIKE 'user:%'", (case_id,)))  # fmt: skip
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConsentScreen)
                       and app.screen.query("#consent-by"))  # fmt: skip
        form = app.screen
        await pilot.press("ctrl+s")
        error = form.query_one("#consent-error", Static)
        await wait_for(pilot, lambda: "who" in str(error.render()))
        form.query_one("#consent-by", Input).value = "Mme Durand"
        form.query_one("#consent-relation", Input).value = "fille"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is case)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, ConsentScreen)
                       and app.screen.query("#consent-by"))  # fmt: skip
        app.screen.query_one("#consent-by", Input).value = "Mme Durand"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is case)
    rows = services.store.fetchall(
        "SELECT event, consent_by, relation, how FROM video_events WHERE case_ref = ?"
        " AND recorded_by LIKE 'user:%' ORDER BY event_id",
        (case_id,),
    )
    assert rows == [
        ("link_sent", None, None, None),
        ("consent_granted", "Mme Durand", "fille", "oral"),
        ("consent_withdrawn", "Mme Durand", None, "oral"),
    ]
    audited = services.store.fetchall(
        "SELECT action FROM audit_events WHERE object = ? AND action LIKE 'video.%' ORDER BY seq",
        (f"case:{case_id}",),
    )
    assert [a for (a,) in audited] == [
        "video.link_sent",
        "video.consent_granted",
        "video.consent_withdrawn",
    ]


async def test_the_age_of_the_data_grows_while_none_comes(world) -> None:
    """A row whose devices went quiet must look older every second, not keep the age
    it had at its last change (the board re-renders ages even when no row changed)."""
    services, _ = world
    now = [datetime.now(UTC)]
    backend = Backend(services=services, api=RegulationService(services), clock=lambda: now[0])
    app = RegulationApp(backend)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        table = board.query_one("#board")
        first = board.model.ordered()[0].case_id
        before = str(table.get_cell(first, "last"))
        now[0] += timedelta(hours=30)
        await wait_for(pilot, lambda: str(table.get_cell(first, "last")) != before)
        assert str(table.get_cell(first, "last")).endswith(" h")


async def test_an_alarm_reaches_the_physician_inside_an_open_case(world) -> None:
    services, _ = world
    app = make_app(services)
    bells = count_bells(app)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        # Signing in on a board that holds P1 cases lists them at once, without a bell.
        assert "open at sign-in" in str(board.query_one("#alarms").render())
        assert bells == []
        target = board.model.ordered()[-1]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen))
        api = app.backend.api
        assert api is not None
        api.publish([CaseEvent("priority_changed", target.case_id, None, time.time(),
                               {"to": "P0", "reasons": ["arrest in a case"]})])  # fmt: skip
        await wait_for(pilot, lambda: len(bells) == 1)
        await wait_for(pilot, lambda: any(n.title == "ALARME" for n in app._notifications))
        (toast,) = [n for n in app._notifications if n.title == "ALARME"]
        assert "P0" in toast.message and "arrest in a case" in toast.message


async def test_an_open_case_is_read_again_only_when_it_changed(world) -> None:
    """Each read is an audited access: an unchanged case is not re-read every 5 s."""
    services, _ = world
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        account = person(services, "regulateur")
        await sign_in(pilot, app, account)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen)
                       and app.screen.detail is not None)  # fmt: skip
        case = app.screen
        assert isinstance(case, CaseScreen)

        def reads() -> int:
            (n,) = services.store.fetchone(
                "SELECT count(*) FROM audit_events WHERE action = 'case.read' AND actor = ?"
                " AND object = ?",
                (account.user_id, f"case:{case.case_id}"),
            )
            return int(n)

        await wait_for(pilot, lambda: reads() == 1)
        for _ in range(3):
            case._reload_if_changed()  # what the 5-s timer does
        await pilot.pause(0.5)
        assert reads() == 1
        await pilot.press("f5")  # asked for: read again
        await wait_for(pilot, lambda: reads() == 2)


async def test_the_bilan_tab_shows_why_the_nurse_called_and_the_dlu(world) -> None:
    services, _ = world
    app = make_app(services)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        with_bilan = [r for r in board.model.ordered() if "bilan" in r.sources]
        assert with_bilan
        app.open_case(with_bilan[0].case_id)
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen)
                       and app.screen.detail is not None)  # fmt: skip
        case = app.screen
        assert isinstance(case, CaseScreen) and case.detail is not None
        (bilan, *_) = case.detail.bilans
        assert bilan.complaint and bilan.nurse
        shown = str(case.query_one("#bilan", Static).render())
        assert f"Motif : {bilan.complaint}" in shown
        app.action_lock()
        await wait_for(pilot, lambda: bilan.complaint not in str(
            case.query_one("#bilan", Static).render()))  # fmt: skip
        await wait_for(pilot, lambda: app.screen.query("#unlock-password"))


async def test_one_rise_rings_once_however_it_reaches_the_board(world) -> None:
    """The delta that carries an alarm and a re-read of the board that already shows the
    new priority are the same event: one bell, one banner line."""
    services, _ = world
    app = make_app(services)
    bells = count_bells(app)
    async with app.run_test(size=(160, 45)) as pilot:
        board = await sign_in(pilot, app, person(services, "regulateur"))
        top = board.model.ordered()[0]  # a P1 case: its row on the board is at P1 already
        assert (top.decided_priority or top.suggested_priority) in ("P0", "P1")
        target = top.case_id
        api = app.backend.api
        assert api is not None
        rise = CaseEvent("priority_changed", target, None, time.time(),
                         {"to": "P1", "reasons": ["one rise"]})  # fmt: skip
        api.publish([rise])
        await wait_for(pilot, lambda: len(bells) == 1)
        api.publish([rise])  # the same rise seen a second time
        board.raise_alarm(board.alarms[0])
        await pilot.pause(0.3)
        assert len(bells) == 1
        assert sum("one rise" in a.reasons for a in board.alarms) == 1
