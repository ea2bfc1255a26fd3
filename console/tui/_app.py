"""The apps' common base and the régulation console.

:class:`SamuApp` holds what both apps share: the backend (service API), the session, the
privacy lock and the settings' theme and key map. :class:`RegulationApp` is the console:
login, then the board, with the case, decision, compte rendu, devices and audit screens.

Privacy lock (console.md): after ``lock_idle_s`` without a key or a click, identities and
free text are masked and a small unlock bar asks for the password (and a TOTP code too
when the lock lasted longer than ``totp_after_s``: a full sign-in then). The board keeps
running underneath, visible: priorities, scores, alarms and the bell never stop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, Static

from console.auth import AuthError, Role, Session
from console.services import BoardRow, RegulationService
from console.tui._backend import Backend


def _use_the_terminal_size() -> None:
    """On a real terminal, size the screen by the terminal, not by COLUMNS and LINES.

    Textual reads the size with ``shutil.get_terminal_size()``, which believes those
    variables over the terminal: values a parent process left in the environment (GNU
    readline exports them when imported, so a Python or pytest parent does) pinned the
    console at 80×24 in a larger terminal, and at that size through every resize. Under
    textual-serve (no terminal) the web driver reads COLUMNS itself: left alone.
    """
    stream = sys.__stdout__
    if stream is not None and stream.isatty():
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


class UnlockScreen(ModalScreen[Session | None]):
    """The unlock bar, docked at the bottom; the screen beneath stays visible."""

    CSS = """
    UnlockScreen { align: center bottom; background: $background 10%; }
    #unlock { height: auto; width: 100%; background: $warning 40%; padding: 0 1; }
    #unlock Input { width: 30; }
    #unlock-msg { width: 1fr; }
    """
    HELP = "Locked: identities and free text are hidden. Type your password (and code) to unlock."

    def __init__(self, need_totp: bool) -> None:
        super().__init__()
        self.need_totp = need_totp

    def compose(self) -> ComposeResult:
        with Horizontal(id="unlock"):
            yield Label("🔒 Verrouillé — ")
            yield Input(placeholder="mot de passe", password=True, id="unlock-password")
            if self.need_totp:
                yield Input(placeholder="code TOTP", id="unlock-totp", max_length=8)
            yield Static("", id="unlock-msg")

    def on_mount(self) -> None:
        # query, not query_one: an app quitting while the lock bar mounts has no field.
        for field in self.query("#unlock-password").results(Input):
            field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "unlock-password" and self.need_totp:
            self.query_one("#unlock-totp", Input).focus()
            return
        password = self.query_one("#unlock-password", Input).value
        code = self.query_one("#unlock-totp", Input).value if self.need_totp else ""
        self._unlock(password, code)

    @work(exclusive=True, exit_on_error=False)
    async def _unlock(self, password: str, code: str) -> None:
        from console.tui._app import SamuApp

        app = self.app
        assert isinstance(app, SamuApp)
        api = await app.wait_api()
        session = app.session
        assert session is not None
        msg = self.query_one("#unlock-msg", Static)
        try:
            if self.need_totp:
                session = await api.login(session.user_id, password, code, session.terminal)
            else:
                await api.unlock(session, password)
        except AuthError as exc:
            msg.update(f"Refused: {exc}")
            self.query_one("#unlock-password", Input).value = ""
            return
        except Exception as exc:
            msg.update(f"Unlock failed: {exc}")
            return
        self.dismiss(session)


class SamuApp(App[None]):
    """What both apps share (see the module docstring)."""

    TITLE = "SAMU"
    BINDINGS = [
        Binding("f1", "toggle_help", "Aide", id="app.help", tooltip="Help for the focused widget"),
        Binding("ctrl+q", "quit", "Quitter", id="app.quit", priority=True),
    ]
    #: What a narrow footer may leave out (see FitFooter): never F1, which lists every key.
    FOOTER = {"app.quit": ("", 3)}

    def __init__(self, backend: Backend, *, quit_after_s: float | None = None) -> None:
        _use_the_terminal_size()
        super().__init__()
        self.backend = backend
        self._quit_after_s = quit_after_s
        self.session: Session | None = None
        self.locked = False
        self._locked_at = 0.0
        self._last_input = time.monotonic()
        self._api_ready = asyncio.Event()
        console = backend.services.settings.console
        self.lock_idle_s = console.lock_idle_s
        self.totp_after_s = console.totp_after_lock_s

    # ------------------------------------------------------------------ life

    def on_mount(self) -> None:
        console = self.backend.services.settings.console
        if console.theme in self.available_themes:
            self.theme = console.theme
        else:
            self.notify(f"Unknown theme {console.theme!r}: using the default.", severity="warning")
        if console.bindings:
            self.set_keymap(console.bindings)
        if self.backend.start is not None:
            self.run_worker(self.backend.start(self.backend), name="system", exit_on_error=False)
        self.set_interval(0.5, self._watch_api)
        self.set_interval(1.0, self._watch_idle)
        if self._quit_after_s is not None:
            self.set_timer(self._quit_after_s, lambda: self.run_worker(self.action_quit()))

    def _watch_api(self) -> None:
        if self.backend.api is not None:
            self._api_ready.set()

    async def wait_api(self) -> RegulationService:
        """The service, once the backend has it (the demo's hub starts with the app)."""
        if self.backend.api is None:
            await self._api_ready.wait()
        assert self.backend.api is not None
        return self.backend.api

    async def action_quit(self) -> None:
        if self.backend.stop is not None:
            self.backend.stop()
            for worker in self.workers:
                if worker.name == "system":
                    try:
                        await asyncio.wait_for(worker.wait(), timeout=15.0)
                    except Exception:  # stopping anyway: never hang on quit
                        worker.cancel()
        self.exit()

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    # ------------------------------------------------------------------ the lock

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _watch_idle(self) -> None:
        if self.session is None or self.locked:
            return
        if time.monotonic() - self._last_input >= self.lock_idle_s:
            self.action_lock()

    def action_lock(self) -> None:
        if self.session is None or self.locked:
            return
        self.locked = True
        self._locked_at = time.monotonic()
        self._refresh_masking()
        need_totp = False  # decided when the bar opens (below) from the lock's length
        self.push_screen(UnlockScreen(need_totp), self._unlocked)
        self.set_timer(self.totp_after_s, self._lengthen_lock)

    def _lengthen_lock(self) -> None:
        """A lock longer than ``totp_after_s``: the bar now asks for a TOTP code too."""
        if self.locked and isinstance(self.screen, UnlockScreen) and not self.screen.need_totp:
            self.pop_screen()
            self.push_screen(UnlockScreen(True), self._unlocked)

    def _unlocked(self, session: Session | None) -> None:
        if session is None:
            return
        self.session = session
        self.locked = False
        self._last_input = time.monotonic()
        self._refresh_masking()

    def _refresh_masking(self) -> None:
        for screen in self.screen_stack:
            refresh = getattr(screen, "refresh_masking", None)
            if refresh is not None:
                refresh()

    def action_logout(self) -> None:
        self.run_worker(self._logout(), exit_on_error=False)

    async def _logout(self) -> None:
        api = await self.wait_api()
        if self.session is not None:
            try:
                await api.logout(self.session)
            except Exception as exc:
                self.notify(f"Logout: {exc}", severity="warning")
        self.session = None
        self.locked = False
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.show_login()

    def show_login(self) -> None:
        raise NotImplementedError


class RegulationApp(SamuApp):
    """The régulation console (``samu console``, ``samu demo``)."""

    TITLE = "SAMU — régulation"

    def on_mount(self) -> None:
        # No super().on_mount(): Textual itself calls every class's on_mount along the
        # MRO, so calling it here too started the system (hub, simulator) twice.
        self.show_login()

    def show_login(self) -> None:
        from console.tui._login import LoginScreen

        self.push_screen(LoginScreen("SAMU — régulation"), self._signed_in)

    def _signed_in(self, session: Session | None) -> None:
        if session is None:
            return
        from console.auth import Action, Target
        from console.tui._board import BoardScreen

        self.session = session
        self._last_input = time.monotonic()
        self.sub_title = f"{session.user_id} ({', '.join(sorted(r.value for r in session.roles))})"
        accounts = self.backend.services.accounts
        if accounts.permits(session, Action.BOARD_VIEW, Target("board", site=session.site)):
            self.push_screen(BoardScreen())
        elif Role.AUDITEUR in session.roles:
            from console.tui._admin import AuditScreen

            self.push_screen(AuditScreen())  # an auditor's home: the trail, not the board
        else:
            self.notify("This account may not use the régulation console.", severity="error")
            self.run_worker(self._logout(), exit_on_error=False)

    def _board(self) -> Screen[None] | None:
        from console.tui._board import BoardScreen

        for screen in self.screen_stack:
            if isinstance(screen, BoardScreen):
                return screen
        return None

    def open_case(self, case_id: str) -> None:
        from console.tui._case import CaseScreen

        self.push_screen(CaseScreen(case_id))

    def decide(self, row: BoardRow) -> None:
        from console.tui._case import DecisionScreen

        codes = self._codes("Decisions")
        if codes is not None:
            self.push_screen(DecisionScreen(row, codes))

    def _codes(self, what: str) -> dict[str, tuple[tuple[str, str], ...]] | None:
        """The Hub Santé code lists a form selects from, or None (said on screen)."""
        api = self.backend.api
        if api is None:
            self.notify("The system is still starting.", severity="warning")
            return None
        try:
            return api.codes()
        except Exception as exc:
            self.notify(f"{what} unavailable: {exc}", severity="error")
            return None

    def report(self, case_id: str) -> None:
        from console.tui._case import ReportScreen

        self.push_screen(ReportScreen(case_id))

    def record_call(self, site: str = "") -> None:
        """The call form (a case by hand); the case it lands on is then opened."""
        from console.tui._lifecycle import CallScreen

        codes = self._codes("Calls")
        if codes is None:
            return

        def opened(case_id: str | None) -> None:
            if case_id is not None:
                self.open_case(case_id)

        self.push_screen(CallScreen(codes, site=site), opened)

    def show_finished(self) -> None:
        from console.tui._lifecycle import FinishedScreen

        self.push_screen(FinishedScreen())

    def show_devices(self) -> None:
        from console.tui._admin import DevicesScreen

        self.push_screen(DevicesScreen())

    def show_audit(self) -> None:
        from console.tui._admin import AuditScreen

        if self.session is None or Role.AUDITEUR not in self.session.roles:
            self.notify("The audit screen is for auditeurs only.", severity="error")
            return
        self.push_screen(AuditScreen())

    def action_command_palette(self) -> None:
        # Locked, the console offers the unlock bar and nothing else: no screen may be
        # reached around the lock, even one that shows no identity.
        if self.locked:
            self.notify("The console is locked: unlock it first.", severity="warning")
            return
        super().action_command_palette()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.session is None or self.locked:
            return
        bound = {b.action for b in getattr(screen, "BINDINGS", []) if isinstance(b, Binding)}
        for actions, title, help_text, run_it in (
            ({"app.lock"}, "Verrouiller", "Mask identities now (ctrl+l)", self.action_lock),
            ({"app.logout"}, "Déconnexion", "End this session (ctrl+d)", self.action_logout),
            ({"devices"}, "Dispositifs", "Every device, battery, errors (v)", self.show_devices),
            ({"audit"}, "Audit", "Trail, verification, incidents (u)", self.show_audit),
        ):
            if not actions & bound:  # the screen's own key already lists it once
                yield SystemCommand(title, help_text, run_it)
        for binding in getattr(screen, "BINDINGS", []):
            # Every key of the screen, those a narrow footer leaves out and the case's tab
            # keys (not in the footer) included; not those the screen turns off.
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if screen.check_action(binding.action, ()) is False:
                continue
            action = binding.action
            first = binding.key.split(",", 1)[0]
            keys = binding.key_display or self.get_key_display(Binding(first, action))
            help_text = f"{binding.tooltip} ({keys})" if binding.tooltip else keys

            def run(action: str = action, screen: Screen[object] = screen) -> None:
                self.call_later(screen.run_action, action)

            yield SystemCommand(binding.description, help_text, run)
