"""Logging in and out, the privacy-lock unlock and password changes: every check of a
secret a person types, throttled and audited."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from console.auth._accounts import (
    AuthenticationFailedError,
    BackoffError,
    iso,
    token_hash,
)
from console.auth._authenticator import AuthOutcome
from console.auth._context import AccountsContext
from console.auth._passwords import (
    check_password_policy,
    hash_password,
    normalise_password,
    verify_password,
)
from console.auth._sessions import Role, Session
from console.auth._throttle import Throttle
from console.auth._user_keys import UserKeys, unseal_key
from console.crypto import encrypt_private_key
from console.records import AuditEvent


class Logins:
    """Sessions: open (password + TOTP), unlock, close; password changes."""

    def __init__(self, ctx: AccountsContext, throttle: Throttle, keys: UserKeys) -> None:
        self._ctx = ctx
        self._throttle = throttle
        self._keys = keys

    def login(self, user_id: str, password: str, totp: str, terminal: str) -> Session:
        """Password + TOTP login (see :meth:`authenticate`)."""
        return self.authenticate(user_id, {"password": password, "totp": totp}, terminal)

    def authenticate(self, user_id: str, credentials: Mapping[str, str], terminal: str) -> Session:
        """Authenticate and open a session, with back-off and audit.

        Raises:
            BackoffError: an attempt during the back-off wait (not checked, not counted).
            AuthenticationFailedError: wrong id, password or code, replayed code, disabled
                account — one message for all; the trail records which.
        """
        uid = user_id.strip().lower()
        now = self._ctx.clock()
        t = now.timestamp()
        wait = self._throttle.retry_after(uid, terminal, t)
        if wait > 0:
            self._audit_login_failure(uid, terminal, "backoff", wait, counted=False)
            raise BackoffError(
                f"too many failed attempts: next attempt allowed in {int(wait + 0.999)} s",
                wait,
            )
        with self._ctx.store.read() as db:
            outcome = self._ctx.authenticator.authenticate(db, uid, credentials, now)
        session: Session | None = None
        with self._ctx.store.transaction() as conn:
            if outcome.ok and not self._ctx.authenticator.consume(conn, outcome):
                outcome = AuthOutcome(False, uid, "totp-replay")
            if not outcome.ok:
                wait = self._throttle.record_failure(conn, uid, terminal, t)
                self._audit_login_failure(uid, terminal, outcome.reason, wait, conn=conn)
            else:
                session = self._open_session(conn, uid, terminal, now)
        if session is None:
            suffix = f" (next attempt allowed in {int(wait + 0.999)} s)" if wait > 0 else ""
            raise AuthenticationFailedError(
                f"login refused: wrong user id, password or code{suffix}", wait
            )
        if outcome.unlock_secret is not None:
            session = self._keys.signer_for(session, outcome.unlock_secret)
        return session

    def _audit_login_failure(
        self,
        uid: str,
        terminal: str,
        reason: str,
        wait: float,
        *,
        counted: bool = True,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        known = self._ctx.store.fetchone("SELECT 1 FROM accounts WHERE user_id = ?", (uid,))
        detail: dict[str, Any] = {
            "reason": reason,
            "method": self._ctx.authenticator.method,
            "retry_after_s": round(wait, 3),
            "counted": counted,
        }
        if known:
            actor, obj = uid, f"user:{uid}"
        else:
            actor, obj = "unknown-user", "user:?"
            detail["attempted_id_sha256"] = hashlib.sha256(uid.encode()).hexdigest()[:16]
        self._ctx.store.append_audit(
            AuditEvent(
                actor=actor,
                role="none",
                terminal=terminal,
                action="auth.login",
                object=obj,
                purpose="normal",
                outcome="failure",
                detail=detail,
            ),
            conn=conn,
        )

    def _open_session(
        self, conn: sqlite3.Connection, uid: str, terminal: str, now: datetime
    ) -> Session:
        self._throttle.clear(conn, uid, terminal)
        roles = frozenset(
            Role(r[0])
            for r in conn.execute("SELECT role FROM account_roles WHERE user_id = ?", (uid,))
        )
        site_row = conn.execute("SELECT site FROM accounts WHERE user_id = ?", (uid,)).fetchone()
        token = secrets.token_urlsafe(32)
        session = Session(
            user_id=uid,
            roles=roles,
            terminal=terminal,
            authenticated_at=now,
            method=self._ctx.authenticator.method,
            site=site_row[0] if site_row else None,
            reauth_after=self._ctx.reauth_after,
            token=token,
        )
        conn.execute(
            "INSERT INTO auth_sessions (token_hash, user_id, terminal, method, authenticated_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                token_hash(token),
                uid,
                terminal,
                session.method,
                iso(now),
                iso(session.expires_at),
            ),
        )
        self._ctx.audit(
            session,
            "auth.login",
            f"user:{uid}",
            detail={"method": session.method, "expires_at": iso(session.expires_at)},
            conn=conn,
        )
        return session

    def logout(self, session: Session) -> None:
        """End the session (its token stops working at once)."""
        now = self._ctx.clock()
        with self._ctx.store.transaction() as conn:
            conn.execute(
                "UPDATE auth_sessions SET ended_at = ?, end_reason = 'logout'"
                " WHERE token_hash = ? AND ended_at IS NULL",
                (iso(now), token_hash(session.token)),
            )
            self._ctx.audit(session, "auth.logout", f"user:{session.user_id}", conn=conn)

    def unlock(self, session: Session, password: str) -> None:
        """Lift the console's privacy lock with the password (console.md).

        Counts towards back-off like a login, and is audited either way.

        Raises:
            SessionExpiredError: the session itself is no longer valid.
            BackoffError / AuthenticationFailedError: wait, or wrong password.
        """
        self._ctx.check_session(session)
        self._check_password(session, password, "session.unlock", "wrong password")
        with self._ctx.store.transaction() as conn:
            self._ctx.audit(session, "session.unlock", f"user:{session.user_id}", conn=conn)

    def _check_password(self, session: Session, password: str, event: str, wrong: str) -> None:
        """A session's holder types their password again (unlock, password change).

        Throttled and audited like a login: without that, either would be an unthrottled
        password oracle. A success clears the counters; a failure is counted and audited
        with ``event`` before raising.

        Raises:
            BackoffError: too many recent failures (not checked, not counted).
            AuthenticationFailedError: the password is wrong (message ``wrong``).
        """
        uid, terminal = session.user_id, session.terminal
        t = self._ctx.clock().timestamp()
        wait = self._throttle.retry_after(uid, terminal, t)
        if wait > 0:
            self._ctx.audit(
                session,
                event,
                f"user:{uid}",
                outcome="failure",
                detail={"reason": "backoff", "retry_after_s": round(wait, 3)},
            )
            raise BackoffError(
                f"too many failed attempts: next attempt allowed in {int(wait + 0.999)} s", wait
            )
        row = self._ctx.store.fetchone(
            "SELECT password_hash FROM accounts WHERE user_id = ?", (uid,)
        )
        ok = row is not None and verify_password(row[0], password)
        with self._ctx.store.transaction() as conn:
            if ok:
                self._throttle.clear(conn, uid, terminal)
                return
            wait = self._throttle.record_failure(conn, uid, terminal, t)
            self._ctx.audit(
                session,
                event,
                f"user:{uid}",
                outcome="failure",
                detail={"reason": "bad-password", "retry_after_s": round(wait, 3)},
                conn=conn,
            )
        raise AuthenticationFailedError(wrong, wait)

    def change_password(self, session: Session, old: str, new: str) -> None:
        """The user changes their own password; their signing key is re-sealed under it.

        Raises:
            BackoffError: too many recent failures: wait (not checked, not counted).
            AuthenticationFailedError: ``old`` is wrong (counts towards back-off, like a
                login: otherwise this would be an unthrottled password oracle).
            PasswordPolicyError: ``new`` breaks a rule.
        """
        self._ctx.check_session(session)
        check_password_policy(session.user_id, new)
        self._check_password(session, old, "user.password_change", "wrong current password")
        keys = self._ctx.store.fetchall(
            "SELECT key_id, sealed_private_key FROM user_keys WHERE user_id = ?"
            " AND retired_at IS NULL",
            (session.user_id,),
        )
        resealed = []
        for key_id, sealed in keys:
            private = unseal_key(session.user_id, key_id, sealed, old)
            resealed.append(
                (
                    encrypt_private_key(
                        session.user_id, private, normalise_password(new), self._ctx.hasher
                    ),
                    key_id,
                )
            )
        now = iso(self._ctx.clock())
        with self._ctx.store.transaction() as conn:
            conn.execute(
                "UPDATE accounts SET password_hash = ?, password_changed_at = ?, updated_at = ?"
                " WHERE user_id = ?",
                (hash_password(new, self._ctx.hasher), now, now, session.user_id),
            )
            conn.executemany(
                "UPDATE user_keys SET sealed_private_key = ? WHERE key_id = ?", resealed
            )
            self._ctx.audit(
                session,
                "user.password_change",
                f"user:{session.user_id}",
                detail={"keys_resealed": len(resealed)},
                conn=conn,
            )
