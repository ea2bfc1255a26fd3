"""SVG snapshots of the screens (pytest-textual-snapshot; Textual is pinned exactly, so a
changed snapshot is a changed screen). Regenerate with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the SVG diff.

The populated screens show a world replayed from ``demo-garde`` on the simulator's fixed
epoch, and the app's clock is set to the end of that replay, so case ids, ages and
values are the same on every run and every day; each test signs in with its own account
(a TOTP code is accepted once) whose fixed name is in the header.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import TabbedContent

import scenarios
from console.auth import LocalOperator
from console.cases import default_dir
from console.services import RegulationService, Services, open_services
from console.settings import Settings
from console.tui import Backend, DemoAccount, RegulationApp, StationApp
from console.tui._board import BoardScreen
from console.tui._case import CaseScreen, DecisionScreen
from console.tui._format import MASK
from console.tui._login import LoginScreen

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")
SIZE = (130, 36)


def test_the_console_login_screen(snap_compare, tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        backend = Backend(services=services, api=RegulationService(services),
                          notes=["database: samu.db"])  # fmt: skip
        assert snap_compare(RegulationApp(backend), terminal_size=(100, 32))


def test_the_station_login_screen(snap_compare, tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        backend = Backend(services=services, api=RegulationService(services))
        app = StationApp(backend, site="ehpad-les-lilas", outbox=None)
        assert snap_compare(app, terminal_size=(100, 32))


# ---------------------------------------------------------------- a replayed world

needs_codes = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): decisions need them",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, datetime]]:
    db = tmp_path_factory.mktemp("snap") / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        replay = scenarios.InprocReplay(scenarios.load_scenario("demo-garde"), services)
        replay.run()
        end = datetime.fromtimestamp(replay.clock.epoch + replay.clock.now(), UTC)
        yield services, end


def app_for(world: tuple[Services, datetime], user: str) -> tuple[RegulationApp, DemoAccount]:
    services, end = world
    enrolment = services.accounts.create_user(OP, user, ["regulateur"], PW)
    backend = Backend(services=services, api=RegulationService(services), clock=lambda: end)
    return RegulationApp(backend), DemoAccount(user, PW, enrolment.otpauth_uri)


async def until(pilot, condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def signed_in(pilot, account: DemoAccount) -> BoardScreen:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*account.user_id, "tab", *account.password, "tab", *account.totp())
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, BoardScreen) and app.screen.model.rows)
    board = app.screen
    assert isinstance(board, BoardScreen)
    await until(pilot, lambda: board.query_one("#board").row_count == len(board.model.rows))
    app.clear_notifications()
    return board


@needs_codes
def test_the_board(snap_compare, world) -> None:
    app, account = app_for(world, "dr-board")

    async def run_before(pilot) -> None:
        await signed_in(pilot, account)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@needs_codes
def test_the_locked_board_masks_residents(snap_compare, world) -> None:
    app, account = app_for(world, "dr-locked")

    async def run_before(pilot) -> None:
        board = await signed_in(pilot, account)
        pilot.app.action_lock()
        first = board.model.ordered()[0].case_id
        table = board.query_one("#board")
        await until(pilot, lambda: str(table.get_cell(first, "resident")) == MASK)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@needs_codes
def test_a_case_on_its_triage_tab(snap_compare, world) -> None:
    app, account = app_for(world, "dr-case")

    async def run_before(pilot) -> None:
        await signed_in(pilot, account)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, CaseScreen)
                    and pilot.app.screen.detail is not None)  # fmt: skip
        # The Triage tab (score breakdown, reasons, policy): its content holds no clock.
        pilot.app.screen.query_one(TabbedContent).active = "tab-triage"
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@needs_codes
def test_the_decision_form(snap_compare, world) -> None:
    app, account = app_for(world, "dr-decide")

    async def run_before(pilot) -> None:
        await signed_in(pilot, account)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(pilot.app.screen, DecisionScreen)
                    and pilot.app.screen.query("#sel-priority"))  # fmt: skip
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@needs_codes
def test_the_board_at_80x24(snap_compare, world) -> None:
    """The smallest terminal a physician may have: every key and column whole."""
    app, account = app_for(world, "dr-board80")

    async def run_before(pilot) -> None:
        await signed_in(pilot, account)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@needs_codes
def test_a_case_at_80x24(snap_compare, world) -> None:
    app, account = app_for(world, "dr-case80")

    async def run_before(pilot) -> None:
        await signed_in(pilot, account)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, CaseScreen)
                    and pilot.app.screen.detail is not None)  # fmt: skip
        await pilot.press("5")  # the Triage tab, by its key: its content holds no clock
        await until(pilot, lambda: pilot.app.screen.query_one(TabbedContent).active
                    == "tab-triage")  # fmt: skip
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
