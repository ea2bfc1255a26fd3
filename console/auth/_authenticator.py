"""How a person proves who they are, behind an interface.

Today: password (Argon2id) + TOTP. Tomorrow: Pro Santé Connect (e-CPS over OpenID
Connect), the national means for health professionals. The account service does
everything around the proof — back-off, audit, sessions — and asks an
:class:`Authenticator` only two questions:

1. :meth:`~Authenticator.authenticate`: do these credentials prove this user id? This
   is the slow part (Argon2id costs ~50–100 ms on purpose) and it must not hold the
   database's single write transaction, so it only *reads*.
2. :meth:`~Authenticator.consume`: inside the service's write transaction, atomically
   spend whatever is single-use (the TOTP time step; for OIDC, the nonce), so that two
   logins racing with the same code cannot both succeed.

A PSC implementation would verify the ID token (issuer, audience, nonce, ``acr``) in
``authenticate`` and map the RPPS number to the account id; it would return no
``unlock_secret``, and signing would then go through the e-CPS itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from argon2 import PasswordHasher

from console.auth._passwords import hash_password, verify_password
from console.auth._totp import match_step

#: Reasons recorded in the audit ``detail`` of a failed login (never shown to the user:
#: the user sees one message so the screen does not tell an attacker which factor failed).
REASONS = ("unknown-user", "disabled", "bad-password", "bad-totp", "totp-replay", "no-totp")


@dataclass(frozen=True)
class AuthOutcome:
    """The answer of an authenticator.

    ``unlock_secret`` is what unlocks the user's signing key (the password here); it is
    held only long enough to decrypt that key and never stored or logged.
    """

    ok: bool
    user_id: str
    reason: str = "ok"
    one_time_state: int | None = None
    unlock_secret: str | None = field(default=None, repr=False)


class Authenticator(Protocol):
    """A means of authentication (see the module docstring)."""

    method: str

    def authenticate(
        self, db: Any, user_id: str, credentials: Mapping[str, str], now: datetime
    ) -> AuthOutcome:
        """Check credentials without writing anything."""
        ...

    def consume(self, conn: sqlite3.Connection, outcome: AuthOutcome) -> bool:
        """Spend single-use state in the caller's transaction; False if already spent."""
        ...


class PasswordTotpAuthenticator:
    """Argon2id password + RFC 6238 TOTP (±1 step, each step accepted once).

    Credentials: ``{"password": …, "totp": "123456"}``. The TOTP seed is stored sealed
    under the master key (``open_secret`` is given by the service's key ring).
    """

    method = "password+totp"

    def __init__(self, open_secret: Any, hasher: PasswordHasher | None = None) -> None:
        self._open_secret = open_secret
        self._hasher = hasher
        self._dummy: str | None = None

    def _dummy_hash(self) -> str:
        """Verified when the user id is unknown, so timing does not reveal which ids exist."""
        if self._dummy is None:
            self._dummy = hash_password("samu-dummy-password-for-timing", self._hasher)
        return self._dummy

    def authenticate(
        self, db: Any, user_id: str, credentials: Mapping[str, str], now: datetime
    ) -> AuthOutcome:
        password = credentials.get("password", "")
        code = credentials.get("totp", "")
        row = db.execute(
            "SELECT password_hash, totp_secret, totp_last_step, disabled FROM accounts"
            " WHERE user_id = ?",
            (user_id,),
        ).fetchone()
        if row is None:
            verify_password(self._dummy_hash(), password)
            return AuthOutcome(False, user_id, "unknown-user")
        password_hash, sealed_secret, last_step, disabled = row
        password_ok = verify_password(password_hash, password)
        if sealed_secret is None:
            return AuthOutcome(False, user_id, "no-totp" if password_ok else "bad-password")
        secret = self._open_secret(f"accounts\x00totp_secret\x00{user_id}", sealed_secret)
        step = match_step(secret.decode("ascii"), code, now.timestamp(), None)
        if not password_ok:
            return AuthOutcome(False, user_id, "bad-password")
        if step is None:
            return AuthOutcome(False, user_id, "bad-totp")
        if last_step is not None and step <= last_step:
            return AuthOutcome(False, user_id, "totp-replay")
        if disabled:
            return AuthOutcome(False, user_id, "disabled")
        return AuthOutcome(True, user_id, "ok", one_time_state=step, unlock_secret=password)

    def consume(self, conn: sqlite3.Connection, outcome: AuthOutcome) -> bool:
        cur = conn.execute(
            "UPDATE accounts SET totp_last_step = ? WHERE user_id = ? AND disabled = 0"
            " AND (totp_last_step IS NULL OR totp_last_step < ?)",
            (outcome.one_time_state, outcome.user_id, outcome.one_time_state),
        )
        return cur.rowcount == 1
