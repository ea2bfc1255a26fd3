"""The call form and the finished cases, driven with Pilot on a real database: a case by
hand on a call, then validated and closed from the keyboard; refusals on screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import Input, Select, Static

import scenarios
from console.cases import DecisionRequest, default_dir
from console.services import RegulationService, Services, open_services
from console.settings import Settings
from console.tui._board import BoardScreen
from console.tui._case import CaseScreen
from console.tui._lifecycle import CallScreen, FinishedScreen
from tests.test_tui_console import PW, make_app, person, sign_in, wait_for

pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)
assert PW


@pytest.fixture
def world(tmp_path) -> Iterator[Services]:  # type: ignore[no-untyped-def]
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("sepsis-ehpad"), services).run()
        yield services


def message(screen: object) -> str:
    return str(screen.query_one("#error", Static).render())  # type: ignore[attr-defined]


async def test_a_call_opens_or_joins_a_case_from_the_call_form(world: Services) -> None:
    services = world
    app = make_app(services)
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot, app, person(services, "arm"))
        (row,) = app.screen.model.rows.values()  # type: ignore[attr-defined]
        await pilot.press("n")  # the board's key: the call form, on the selected case's site
        await wait_for(pilot, lambda: isinstance(app.screen, CallScreen))
        assert app.screen.query_one("#site", Input).value == row.site
        form = app.screen
        # Nothing chosen: said, nothing recorded.
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "À remplir" in message(form))
        form.query_one("#resident", Input).value = "res-404"
        form.query_one("#motif", Select).value = "M03.06"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "no resident 'res-404'" in message(form))
        resident = row.patients[0].split("/", 1)[1]
        form.query_one("#resident", Input).value = resident
        await pilot.press("ctrl+s")
        # Recorded: the case it landed on opens.
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen))
    sources, kinds = services.store.fetchone(
        "SELECT sources, (SELECT group_concat(kind) FROM case_timeline t"
        " WHERE t.case_id = c.case_id) FROM cases c WHERE case_id = ?",
        (row.case_id,),
    )
    assert "call" in sources and "call" in kinds.split(",")  # joined, not a second case
    assert services.store.fetchone("SELECT count(*) FROM cases")[0] == 1


async def test_a_nurse_has_no_call_key(world: Services) -> None:
    """Calls are régulateur and ARM work: a nurse's board offers no call key, and the
    service would refuse her anyway."""
    services = world
    app = make_app(services)
    async with app.run_test(size=(100, 30)) as pilot:
        from console.tui import DemoAccount
        from tests.test_tui_console import OP, type_login

        site = services.store.fetchone("SELECT site FROM cases")[0]
        enrolment = services.accounts.create_user(OP, "nurse9", ["ide_ehpad"], PW, site=site)
        nurse = DemoAccount("nurse9", PW, enrolment.otpauth_uri)

        await type_login(pilot, app, nurse)
        await wait_for(pilot, lambda: isinstance(app.screen, BoardScreen))
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, CallScreen)


async def test_finished_cases_are_validated_and_closed_from_the_keyboard(
    world: Services,
) -> None:
    services = world
    api = RegulationService(services)
    doctor = person(services, "regulateur")
    (case_id,) = services.store.fetchone("SELECT case_id FROM cases")
    session = services.accounts.login(doctor.user_id, PW, doctor.totp(), "t0")
    request = DecisionRequest(
        case_id=case_id, priority="P0", care_level="R1", decision_type="INTER"
    )
    await api.decide(session, request)
    await api.compte_rendu(session, case_id, sign=True)
    app = make_app(services)
    async with app.run_test(size=(80, 24)) as pilot:
        arm = person(services, "arm")
        await wait_for(pilot, lambda: app.screen is not None)
        from tests.test_tui_console import type_login

        await type_login(pilot, app, arm)
        await wait_for(pilot, lambda: isinstance(app.screen, BoardScreen))
        await pilot.press("t")  # the board's key for the finished cases
        await wait_for(pilot, lambda: isinstance(app.screen, FinishedScreen) and app.screen.rows)
        screen = app.screen
        assert isinstance(screen, FinishedScreen)
        assert [(r.case_id, r.status) for r in screen.rows] == [(case_id, "ACHEVE")]
        # The ARM may not validate (a medical act): refused, said, unchanged.
        await pilot.press("v")
        text = lambda: str(screen.query_one("#message", Static).render())  # noqa: E731
        await wait_for(pilot, lambda: "Refused" in text())
        assert services.store.fetchone("SELECT status FROM cases")[0] == "ACHEVE"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
    # A régulateur validates, then the ARM closes.
    app = make_app(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in_anywhere(pilot, app, person(services, "regulateur"))
        app.push_screen(FinishedScreen())
        await wait_for(pilot, lambda: isinstance(app.screen, FinishedScreen) and app.screen.rows)
        await pilot.press("c")  # not validated yet: refused
        screen = app.screen
        await wait_for(
            pilot, lambda: "validated first" in str(screen.query_one("#message", Static).render())
        )
        await pilot.press("v")
        await wait_for(
            pilot, lambda: services.store.fetchone("SELECT status FROM cases")[0] == "VALIDE"
        )
        await wait_for(pilot, lambda: [r.status for r in screen.rows] == ["VALIDE"])  # type: ignore[attr-defined]
        await pilot.press("c")
        await wait_for(
            pilot, lambda: services.store.fetchone("SELECT status FROM cases")[0] == "CLOTURE"
        )
        await wait_for(pilot, lambda: screen.rows == [])  # type: ignore[attr-defined]


async def sign_in_anywhere(pilot, app, account) -> None:  # type: ignore[no-untyped-def]
    from tests.test_tui_console import type_login

    await type_login(pilot, app, account)
    await wait_for(pilot, lambda: isinstance(app.screen, BoardScreen))
