"""Back-off on failed secrets, per account and per terminal, and the burst incident.

Every check of a secret a person types (login, unlock, password change) goes through
here, so none of them is an unthrottled oracle.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from console.auth._accounts import BURST_FAILURES
from console.auth._backoff import BackoffState
from console.auth._context import AccountsContext
from console.records import AuditContext, open_incident


class Throttle:
    """Failure counters in ``auth_backoff`` and the waits they impose."""

    def __init__(self, ctx: AccountsContext) -> None:
        self._ctx = ctx

    def retry_after(self, uid: str, terminal: str, t: float) -> float:
        return max(
            self.state("account", uid).retry_after_s(t, self._ctx.backoff),
            self.state("terminal", terminal).retry_after_s(t, self._ctx.backoff),
        )

    def state(self, scope: str, key: str, conn: Any = None) -> BackoffState:
        row = self._ctx.store.fetchone(
            "SELECT failures, last_failure_at FROM auth_backoff WHERE scope = ? AND key = ?",
            (scope, key),
            conn=conn,
        )
        return BackoffState(int(row[0]), float(row[1])) if row else BackoffState()

    def record_failure(self, conn: sqlite3.Connection, uid: str, terminal: str, t: float) -> float:
        wait = 0.0
        for scope, key in (("account", uid), ("terminal", terminal)):
            state = self.state(scope, key, conn).after_failure(t, self._ctx.backoff)
            conn.execute(
                "INSERT INTO auth_backoff (scope, key, failures, last_failure_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET"
                " failures = excluded.failures, last_failure_at = excluded.last_failure_at",
                (scope, key, state.failures, state.last_failure_at),
            )
            wait = max(wait, state.retry_after_s(t, self._ctx.backoff))
            if state.failures == BURST_FAILURES:
                self._burst_incident(scope, key, terminal)
        return wait

    def clear(self, conn: sqlite3.Connection, uid: str, terminal: str) -> None:
        """A success: both counters start again from zero."""
        for scope, key in (("account", uid), ("terminal", terminal)):
            conn.execute("DELETE FROM auth_backoff WHERE scope = ? AND key = ?", (scope, key))

    def _burst_incident(self, scope: str, key: str, terminal: str) -> None:
        """Open one security incident when a burst of failures reaches the threshold.

        Once per burst (exactly at the threshold; the counter restarts after a success
        or a quiet day). Unknown account ids are not named — the terminal's burst covers
        them, and a typed id may be a misplaced password.
        """
        if scope == "account":
            known = self._ctx.store.fetchone("SELECT 1 FROM accounts WHERE user_id = ?", (key,))
            if not known:
                return
            obj = f"user:{key}"
        else:
            obj = f"terminal:{key}"
        open_incident(
            self._ctx.store,
            AuditContext(actor="system:auth", role="system", terminal=terminal),
            kind="security",
            category="failed-login-burst",
            severity="medium",
            object=obj,
            title=f"{BURST_FAILURES} consecutive failed logins for {obj}",
        )
