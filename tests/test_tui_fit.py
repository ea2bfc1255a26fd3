"""The console in an 80×24 terminal, keyboard first: what is on the glass.

The board, the case, the decision form, the devices and the audit trail are driven with
Pilot at 80×24 on a world replayed from ``demo-garde``, and the screen is read as text,
as a physician sees it: the footer's keys whole, the board's columns whole (the
reasons, the one flexible column, ending in … rather than cut), the alarms and the
priorities in view. The fitting itself (:mod:`console.tui._fit`) is tested on its own
first. Tests wait on conditions, never on fixed sleeps.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator

import pytest
from rich.cells import cell_len
from rich.console import Console
from textual.widgets import DataTable, TabbedContent

import scenarios
from console.auth import LocalOperator
from console.cases import default_dir
from console.services import RegulationService, Services, open_services
from console.settings import Settings
from console.tui import Backend, DemoAccount, RegulationApp
from console.tui._admin import AuditScreen, DevicesScreen
from console.tui._board import BoardScreen, BoardTable
from console.tui._case import TABS, CaseScreen, DecisionScreen
from console.tui._fit import Col, Key, Planned, fit_keys, plan_columns
from console.tui._login import LoginScreen
from console.tui._widgets import FitFooter, FitTable

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")
SMALL = (80, 24)

# ---------------------------------------------------------------- the fitting, alone


def test_columns_that_fit_are_all_shown_with_their_full_headers() -> None:
    cols = (Col("a", "Alpha", 4), Col("b", "Bravo", 6, drop=1, short="B"),
            Col("r", "Reasons", 10, flex=True))  # fmt: skip
    plan = plan_columns(cols, 60, {"a": 3, "b": 6, "r": 40})
    assert plan == (Planned("a", "Alpha", 5), Planned("b", "Bravo", 6), Planned("r", "Reasons", 40))


def test_a_narrow_table_drops_the_least_needed_first_and_the_flex_column_ends_it() -> None:
    cols = (
        Col("prio", "Prio", 4),
        Col("site", "Site", 20),
        Col("implant", "Implant", 20, drop=1, short="♥", narrow=3),
        Col("video", "Vidéo", 17, drop=3),
        Col("case", "Affaire", 19, drop=5),
        Col("reasons", "Motifs", 10, drop=2, flex=True, wants=10),
    )
    seen = {"prio": 4, "site": 18, "implant": 18, "video": 15, "case": 19}
    wide = plan_columns(cols, 200, seen)
    assert [p.key for p in wide] == [c.key for c in cols]
    narrow = plan_columns(cols, 50, seen)
    # The case number and the video go; the implant keeps its narrow form (♥2).
    assert [p.key for p in narrow] == ["prio", "site", "implant", "reasons"]
    assert dict((p.key, (p.label, p.width)) for p in narrow)["implant"] == ("♥", 3)
    assert sum(p.width + 2 for p in narrow) == 50  # the reasons take what is left


def test_columns_that_always_show_are_kept_even_when_too_wide() -> None:
    cols = (Col("a", "A", 30), Col("b", "B", 30, drop=1), Col("r", "R", 10, flex=True))
    plan = plan_columns(cols, 40, {"a": 30, "b": 30})
    assert [p.key for p in plan] == ["a", "r"]


def test_footer_keys_shorten_then_drop_the_least_needed_then_widen_back() -> None:
    keys = (Key("o", "o", "Ouvrir"), Key("r", "r", "Compte rendu", "CR"),
            Key("v", "v", "Dispositifs", "Disp.", 2), Key("ctrl+d", "^d", "Déconnexion", "", 3),
            Key("f1", "f1", "Aide"))  # fmt: skip
    full = sum(k.width(False) for k in keys)
    assert fit_keys(keys, full) == tuple((k, k.label) for k in keys)
    fitted = dict(fit_keys(keys, 36))
    assert keys[3] not in fitted  # the least needed is left out
    assert fitted[keys[1]] == "CR" and fitted[keys[0]] == "Ouvrir"
    assert sum(len(k.display) + len(label) + 2 for k, label in fitted.items()) <= 36
    # Keys with drop 0 are never left out, however narrow.
    assert {k.key for k in dict(fit_keys(keys, 5))} == {"o", "r", "f1"}


# ---------------------------------------------------------------- on the glass

needs_codes = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    db = tmp_path_factory.mktemp("tui-fit") / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("demo-garde"), services).run()
        yield services


_COUNT = iter(range(1000))


def person(services: Services, role: str = "regulateur") -> DemoAccount:
    """A new account per sign-in (a TOTP code is accepted once)."""
    user = f"fit{role[:4]}{next(_COUNT)}"
    enrolment = services.accounts.create_user(OP, user, [role], PW)
    return DemoAccount(user, PW, enrolment.otpauth_uri)


def make_app(services: Services) -> RegulationApp:
    return RegulationApp(Backend(services=services, api=RegulationService(services)))


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time; on screen:\n{glass(pilot.app)}")
        await pilot.pause(0.05)


def glass(app: RegulationApp) -> str:
    """The screen as text, as the terminal shows it (the screens beneath included)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, force_terminal=True,
        color_system="truecolor", legacy_windows=False,
    )  # fmt: skip
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text()


def lines(app: RegulationApp) -> list[str]:
    return glass(app).splitlines()


def footer_line(app: RegulationApp) -> str:
    return lines(app)[-1]


def footer_fits(app: RegulationApp) -> bool:
    """The footer holds its keys without scrolling any out of sight."""
    footer = app.screen.query_one(FitFooter)
    return bool(footer.children) and footer.virtual_size.width <= footer.size.width


async def sign_in(pilot, app: RegulationApp, account: DemoAccount) -> BoardScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*account.user_id, "tab", *account.password, "tab", *account.totp(), "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, BoardScreen) and app.screen.model.rows)
    board = app.screen
    assert isinstance(board, BoardScreen)
    table = board.query_one("#board", BoardTable)
    await wait_for(pilot, lambda: table.row_count == len(board.model.rows) and table.columns)
    app.clear_notifications()
    await wait_for(pilot, lambda: footer_fits(app) and "palette" in footer_line(app))
    return board


def assert_board_fits(app: RegulationApp, board: BoardScreen) -> None:
    """Every column whole, on screen, and no horizontal scrolling."""
    table = board.query_one("#board", BoardTable)
    assert table.virtual_size.width <= table.scrollable_content_region.width
    assert not table.show_horizontal_scrollbar
    shown = lines(app)
    header = next(line for line in shown if line.lstrip().startswith("Prio"))
    for column in table.columns.values():
        assert column.label.plain in header, column.label.plain
    assert header.rstrip().endswith("Motifs")
    widths = {str(c.key.value): c.width for c in table.columns.values()}
    for case_id in board.model.rows:
        for key, width in widths.items():
            cell = table.get_cell(case_id, key)
            if key != "reasons":  # the reasons may end in … (the case's Triage tab has all)
                assert cell_len(cell.plain) <= width, (key, cell.plain, width)
    # Each row's priority is on the glass, in the first column.
    prios = [line.split()[0] for line in shown if line.lstrip()[:2] in ("P0", "P1", "P2", "P3")]
    assert len(prios) == len(board.model.rows)


@needs_codes
async def test_the_board_fits_80x24_with_its_keys_in_the_footer(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        board = await sign_in(pilot, app, person(world))
        assert_board_fits(app, board)
        columns = [str(k.value) for k in board.query_one("#board", BoardTable).columns]
        assert columns[:5] == ["prio", "last", "site", "resident", "news2"]
        assert "case" not in columns  # the least needed column gives way first
        footer = footer_line(app)
        assert len(footer) <= 80 and footer.rstrip().endswith("^p palette")
        for key in ("⏎ Ouvrir", "d Décider", "r CR", "a Acquitter", "^l Verrou", "f1 Aide"):
            assert key in footer, (key, footer)
        assert "Audit" not in footer  # a régulateur has no audit screen: no dead key
        # The alarms open at sign-in: one line each, each in view with its priority.
        banner = [line for line in lines(app) if line.lstrip().startswith("⚠")]
        assert len(banner) == len(board.alarms) > 0
        assert all(line.split()[1] in ("P0", "P1") for line in banner)


@needs_codes
async def test_keys_left_out_of_a_narrow_footer_are_in_the_palette_and_f1(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        board = await sign_in(pilot, app, person(world))
        footer = footer_line(app)
        commands = {c.title for c in app.get_system_commands(board)}
        for binding in BoardScreen.BINDINGS:
            if binding.action == "audit":
                continue  # turned off for a régulateur (check_action)
            assert binding.description in footer or binding.description in commands
        assert "Déconnexion" not in footer and "Déconnexion" in commands
        await pilot.press("f1")
        await wait_for(pilot, lambda: board.query("HelpPanel"))
        shown = glass(app)
        assert "Board:" in shown  # the board's help, beside it
        keys = {b.binding.description for b in board.active_bindings.values()}
        assert {"Déconnexion", "Quitter", "Dispositifs"} <= keys  # all in the key panel


@needs_codes
async def test_the_board_relayouts_when_the_terminal_narrows_and_keeps_the_cursor(world) -> None:
    app = make_app(world)
    async with app.run_test(size=(170, 40)) as pilot:
        board = await sign_in(pilot, app, person(world))
        table = board.query_one("#board", BoardTable)
        assert "case" in {str(k.value) for k in table.columns}  # wide: every column
        assert_board_fits(app, board)
        await pilot.press("down")
        chosen = board.selected_case()
        assert chosen is not None
        await pilot.resize_terminal(*SMALL)
        await wait_for(pilot, lambda: "case" not in {str(k.value) for k in table.columns}
                       and table.row_count == len(board.model.rows))  # fmt: skip
        await wait_for(pilot, lambda: footer_fits(app) and "palette" in footer_line(app))
        assert board.selected_case() == chosen
        assert_board_fits(app, board)
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: "qsofa" in {str(k.value) for k in table.columns})
        assert_board_fits(app, board)


@needs_codes
async def test_each_case_tab_has_its_key_shown_on_the_tab(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        await sign_in(pilot, app, person(world))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen)
                       and app.screen.detail is not None)  # fmt: skip
        case = app.screen
        tabs = case.query_one("#tabs", TabbedContent)
        shown = glass(app)
        for _, title, digit, _ in TABS:
            assert f"{digit} {title}" in shown  # the key, on the tab itself
        await wait_for(pilot, lambda: footer_fits(app) and "^p palette" in footer_line(app))
        # A key per tab, and the same key on an AZERTY keyboard (no Shift: & é " ' ( -).
        for pane, _, digit, azerty in TABS:
            other = "6" if pane != "tab-trail" else "1"
            for key in (digit, other, azerty):
                await pilot.press(key)
                want = pane if key != other else ("tab-trail" if other == "6" else "tab-vitals")
                await wait_for(pilot, lambda want=want: tabs.active == want)
            assert tabs.get_pane(pane).region.height > 0  # shown, not only selected
        await pilot.press("5")
        await wait_for(pilot, lambda: "Suggested priority" in glass(app))
        await pilot.press("2")
        await wait_for(pilot, lambda: "Événement" in glass(app))
        # The keys are in the command palette too, by the tab's name.
        commands = {c.title for c in app.get_system_commands(case)}
        assert {f"Onglet {title}" for _, title, _, _ in TABS} <= commands


@needs_codes
async def test_the_case_head_and_vitals_fit_80x24(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        board = await sign_in(pilot, app, person(world))
        top = board.model.ordered()[0]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaseScreen) and app.screen.points)
        head = app.screen.query_one("#head")
        await wait_for(pilot, lambda: "NEWS2" in glass(app))
        assert head.region.height == 2  # who, then how bad: two lines
        shown = lines(app)
        assert "Affaire" in shown[1] and top.site in shown[1] and "NEWS2" in shown[2]
        assert "Glycémie" in glass(app)  # the last vital sign, without scrolling


@needs_codes
async def test_the_decision_form_fits_80x24_with_its_own_keys(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        await sign_in(pilot, app, person(world))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DecisionScreen)
                       and app.screen.query("#sel-priority"))  # fmt: skip
        form = app.screen.query_one("#form")
        await wait_for(pilot, lambda: "Signer (ctrl+s)" in glass(app))
        assert form.region.right <= 80 and form.region.bottom <= 23
        shown = glass(app)
        for label in ("Priorité", "Niveau de soins", "Type de décision", "Ressource",
                      "Orientation", "Motif", "suggérée", "Annuler (Esc)"):  # fmt: skip
            assert label in shown, label
        footer = footer_line(app)
        assert "esc Annuler" in footer and "^s Signer" in footer and "f1 Aide" in footer


@needs_codes
async def test_the_devices_fit_80x24(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        await sign_in(pilot, app, person(world))
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen)
                       and app.screen.query_one(FitTable).row_count)  # fmt: skip
        table = app.screen.query_one(FitTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        header = next(line for line in lines(app) if line.lstrip().startswith("Site"))
        for label in ("Dispositif", "État", "Batt.", "Il y a", "Err.", "Quar."):
            assert label in header, (label, header)
        await wait_for(pilot, lambda: footer_fits(app) and "esc Retour" in footer_line(app))


@needs_codes
async def test_the_audit_trail_fits_80x24(world) -> None:
    app = make_app(world)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        account = person(world, "auditeur")
        await pilot.press(*account.user_id, "tab", *account.password, "tab", *account.totp())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen)
                       and app.screen.query_one("#trail", DataTable).row_count)  # fmt: skip
        table = app.screen.query_one("#trail", FitTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        await wait_for(pilot, lambda: footer_fits(app) and "f5 Vérifier" in footer_line(app))
        header = next(line for line in lines(app) if line.lstrip().startswith("#"))
        assert header.rstrip().endswith("Issue")  # the last column, whole
