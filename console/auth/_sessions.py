"""Authenticated sessions, roles, and the injectable clock.

A :class:`Session` is what a successful login hands to the caller (TUI, CLI, hub); every
service call takes it, so the habilitation check knows who acts, with which roles, from
which terminal. Sessions expire 12 h after authentication (re-authentication, not
idle-locking: the privacy lock after a short idle time is the console's job and only
asks for the password again, see console.md).

Time is always read through a :data:`Clock` so tests move time forward instead of
sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: A function returning the current time as an aware datetime.
Clock = Callable[[], datetime]

REAUTH_AFTER = timedelta(hours=12)


def system_clock() -> datetime:
    """Now, in UTC (aware)."""
    return datetime.now(UTC)


class Role(StrEnum):
    """The five roles of records-security.md (exact spellings are the contract)."""

    REGULATEUR = "regulateur"
    ARM = "arm"
    IDE_EHPAD = "ide_ehpad"
    AUDITEUR = "auditeur"
    ADMIN = "admin"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)


class AuthError(Exception):
    """Base of authentication failures; the message is safe to show to the user."""


class SessionExpiredError(AuthError):
    """The session is older than the re-authentication period, ended, or revoked."""


@dataclass(frozen=True)
class Session:
    """One authenticated person on one terminal.

    ``token`` is the bearer secret (only its SHA-256 is stored); ``signer`` is the
    user's Ed25519 private key, decrypted at login with the password and kept only in
    this object's memory, so records can be signed only within an authenticated session.
    Neither appears in ``repr``.
    """

    user_id: str
    roles: frozenset[Role]
    terminal: str
    authenticated_at: datetime
    method: str = "password+totp"
    site: str | None = None
    reauth_after: timedelta = REAUTH_AFTER
    token: str = field(default="", repr=False, compare=False)
    signer: Ed25519PrivateKey | None = field(default=None, repr=False, compare=False)
    signer_key_id: str | None = field(default=None, compare=False)

    @property
    def expires_at(self) -> datetime:
        """When the session must re-authenticate."""
        return self.authenticated_at + self.reauth_after

    def is_expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on (the boundary instant is already expired)."""
        return now >= self.expires_at

    def check_fresh(self, now: datetime) -> None:
        """Raise :class:`SessionExpiredError` once the session has expired."""
        if self.is_expired(now):
            raise SessionExpiredError(
                f"session of {self.user_id} expired at {self.expires_at.isoformat()}: "
                "please log in again"
            )

    @property
    def role_label(self) -> str:
        """All held roles, sorted and joined with ``+`` (the audit ``role`` when no
        single role is the one acting)."""
        return "+".join(sorted(r.value for r in self.roles)) or "none"
