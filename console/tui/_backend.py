"""What a Textual app runs on: the service API and, for the demo, the live system.

The apps never assemble the system themselves (the composition root does): the command
line builds a :class:`Backend` and hands it over. ``start`` is run by the app as a worker
for its whole life (the demo's hub and simulator); ``live`` says whether board deltas are
pushed (a hub runs in this process) or the board must be re-read on a timer (a console
on a database another process writes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyotp

from console.services import RegulationService, Services


@dataclass(frozen=True)
class DemoAccount:
    """The demo physician: shown on the login screen, marked DEMO (console.md)."""

    user_id: str
    password: str
    otpauth_uri: str = field(repr=False)

    def totp(self) -> str:
        """The current TOTP code (what the physician's authenticator app would show)."""
        otp = pyotp.parse_uri(self.otpauth_uri)
        assert isinstance(otp, pyotp.TOTP)
        return str(otp.now())


@dataclass
class Backend:
    """The service an app talks to (see the module docstring)."""

    services: Services
    api: RegulationService | None = None
    start: Callable[[Backend], Awaitable[None]] | None = None
    stop: Callable[[], None] | None = None
    live: bool = False
    terminal: str = "console"
    #: Lines the login screen shows under the form (transport in use, notes).
    notes: list[str] = field(default_factory=list)
    demo: DemoAccount | None = None
    #: What "now" is for the ages the screens show (time since last data, case age).
    #: The wall clock, except where a replayed world is shown at its own simulated time
    #: (snapshot tests, a replay's live view).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
