"""What every part of the account service shares: the store, keys, clock and policies.

The parts (:mod:`._logins`, :mod:`._administration`, :mod:`._user_keys`,
:mod:`._throttle`) each receive one :class:`AccountsContext`; the
:class:`~console.auth.AccountService` facade builds it once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher

from console.auth._accounts import Actor, Outcome, token_hash
from console.auth._authenticator import Authenticator
from console.auth._backoff import BackoffPolicy
from console.auth._sessions import Clock, Session, SessionExpiredError
from console.crypto import MasterKeyRing
from console.records import AuditEvent, Store


@dataclass(frozen=True)
class AccountsContext:
    """The shared state of the account service (read-only once built)."""

    store: Store
    ring: MasterKeyRing
    clock: Clock
    hasher: PasswordHasher
    backoff: BackoffPolicy
    reauth_after: timedelta
    authenticator: Authenticator

    def audit(
        self,
        actor: Actor,
        action: str,
        obj: str,
        *,
        outcome: Outcome = "success",
        detail: Mapping[str, Any] | None = None,
        role: str | None = None,
        purpose: str = "normal",
        conn: sqlite3.Connection | None = None,
    ) -> int:
        """Append one audit event on behalf of ``actor`` (``conn``: inside a transaction)."""
        return int(
            self.store.append_audit(
                AuditEvent(
                    actor=actor.user_id,
                    role=role or actor.role_label,
                    terminal=actor.terminal,
                    action=action,
                    object=obj,
                    purpose=purpose,
                    outcome=outcome,
                    detail=dict(detail or {}),
                ),
                conn=conn,
            )
        )

    def check_session(self, session: Session) -> None:
        """Raise :class:`SessionExpiredError` unless the session is live.

        Live = created by :meth:`login`, not logged out, less than 12 h old, and its
        account is not disabled (disabling someone ends their sessions at once).
        """
        now = self.clock()
        session.check_fresh(now)
        row = self.store.fetchone(
            "SELECT s.ended_at, s.end_reason, s.expires_at, a.disabled FROM auth_sessions s"
            " JOIN accounts a ON a.user_id = s.user_id WHERE s.token_hash = ? AND s.user_id = ?",
            (token_hash(session.token), session.user_id),
        )
        if row is None:
            raise SessionExpiredError("unknown session: please log in")
        ended_at, end_reason, expires_at, disabled = row
        if disabled:
            raise SessionExpiredError(f"account {session.user_id} is disabled")
        if ended_at is not None:
            raise SessionExpiredError(f"session ended ({end_reason}): please log in again")
        if now >= datetime.fromisoformat(expires_at):
            raise SessionExpiredError("session expired: please log in again")
