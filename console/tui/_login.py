"""Login: user id, password, TOTP code, in that order (console.md).

Tab moves to the next field and Enter in the last submits, so a physician (or a script
driving a terminal) types the id, Tab, the password, Tab, the code, Enter. A refusal says
why in one line, with the back-off wait when there is one; the password and code fields
are emptied, the id is kept. On the demo database the demo account's password and the
current TOTP code are shown below the form, marked DEMO, the code refreshed as it turns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from console.auth import AuthError, Session
from console.tui._widgets import FitFooter

if TYPE_CHECKING:
    from console.tui._app import SamuApp


class LoginScreen(Screen[Session]):
    """Returns the new :class:`Session` when the login succeeds."""

    CSS = """
    LoginScreen { align: center middle; }
    #login { width: 64; height: auto; max-height: 100%; border: round $accent; padding: 0 2; }
    #login Input { margin-bottom: 1; }
    #login Label { margin-bottom: 1; }
    #message { color: $error; height: auto; }
    #demo { border: round $warning; padding: 0 1; height: auto; margin-top: 1; }
    #notes { color: $text-muted; height: auto; }
    """

    HELP = "Sign in with your user id, password and the 6-digit code of your TOTP app."

    # Priority bindings: Tab moves the focus before the next typed key is dispatched, so
    # `id Tab password Tab code Enter` typed (or sent by a script) in one burst lands in
    # the right fields; a plain binding would act only after the key bubbled up.
    BINDINGS = [
        Binding("tab", "app.focus_next", "Champ suivant", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Champ précédent", show=False, priority=True),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    @property
    def samu(self) -> SamuApp:
        from console.tui._app import SamuApp

        assert isinstance(self.app, SamuApp)
        return self.app

    def compose(self) -> ComposeResult:
        backend = self.samu.backend
        with Vertical(id="login"):
            yield Label(f"[b]{self._title}[/b] — connexion")
            # One line per field, so the form and the demo box fit an 80x24 terminal.
            yield Input(placeholder="identifiant (user id)", id="user", compact=True)
            yield Input(placeholder="mot de passe", password=True, id="password", compact=True)
            yield Input(placeholder="code TOTP (6 chiffres)", id="totp", max_length=8,
                        compact=True)  # fmt: skip
            yield Static("", id="message")
            if backend.demo is not None:
                demo = Static("", id="demo")
                demo.border_title = "DEMO"
                yield demo
            yield Static("\n".join(backend.notes), id="notes")
        yield FitFooter()

    def on_mount(self) -> None:
        self.query_one("#user", Input).focus()
        if self.samu.backend.demo is not None:
            self._refresh_demo()
            self.set_interval(1.0, self._refresh_demo)

    def _refresh_demo(self) -> None:
        demo = self.samu.backend.demo
        if demo is None:
            return
        self.query_one("#demo", Static).update(
            f"DEMO account (not for real use): user {demo.user_id}\n"
            f"password: {demo.password}\n"
            f"TOTP: {demo.totp()}"
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "user":
            self.query_one("#password", Input).focus()
        elif event.input.id == "password":
            self.query_one("#totp", Input).focus()
        else:
            self._submit()

    def _submit(self) -> None:
        user = self.query_one("#user", Input).value.strip()
        password = self.query_one("#password", Input).value
        code = self.query_one("#totp", Input).value.strip()
        message = self.query_one("#message", Static)
        if not user or not password or not code:
            missing = [n for n, v in (("user id", user), ("password", password),
                                      ("TOTP code", code)) if not v]  # fmt: skip
            message.update(f"Missing: {', '.join(missing)}.")
            return
        message.update("Signing in…")
        self.run_worker(self._login(user, password, code), exclusive=True, exit_on_error=False)

    async def _login(self, user: str, password: str, code: str) -> None:
        message = self.query_one("#message", Static)
        api = await self.samu.wait_api()
        try:
            session = await api.login(user, password, code, self.samu.backend.terminal)
        except AuthError as exc:
            wait = getattr(exc, "retry_after_s", 0.0)
            extra = f" Wait {wait:.0f} s before the next try." if wait else ""
            message.update(f"Refused: {exc}.{extra}")
            self.query_one("#password", Input).value = ""
            self.query_one("#totp", Input).value = ""
            self.query_one("#password", Input).focus()
            return
        except Exception as exc:  # the console must say what failed, never crash
            message.update(f"Sign-in failed: {exc}")
            return
        self.dismiss(session)
