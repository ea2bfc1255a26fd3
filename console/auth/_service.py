"""The account service: the one door every caller (TUI, CLI, hub) goes through.

It owns accounts, logins, sessions and the authorisation check, and appends an audit
event for each of them in the same transaction as the change it records (a change
without its trace, or a trace without its change, cannot be committed).

Two kinds of actor:

* a :class:`~console.auth.Session` — a person logged in with password + TOTP; what they
  may do is the habilitation matrix;
* a :class:`LocalOperator` — the command line (``samu users …``, ``retention``,
  ``rights``), i.e. whoever holds the database file *and* its master key. They could
  read everything with those anyway, so the matrix does not bind them; their actions
  are audited with actor ``local:<os-user>`` and role ``local-operator`` so the trail shows
  them apart from any account. The first admin account is created this way.

Secrets (passwords, TOTP seeds, private keys, session tokens) never go into the trail,
an exception message or a log line. A login failure for an *unknown* user id records a
hash of the typed id rather than the text: people do type their password into the id
field.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher

from console.auth._authenticator import Authenticator, AuthOutcome, PasswordTotpAuthenticator
from console.auth._backoff import BackoffPolicy, BackoffState
from console.auth._breakglass import BreakGlass
from console.auth._habilitations import Action, Authorization, Target, allowed_role, require
from console.auth._passwords import (
    check_password_policy,
    default_hasher,
    hash_password,
    verify_password,
)
from console.auth._sessions import (
    REAUTH_AFTER,
    AuthError,
    Clock,
    Role,
    Session,
    SessionExpiredError,
    system_clock,
)
from console.auth._totp import new_secret, provisioning_uri
from console.crypto import (
    KeyUnlockError,
    MasterKeyRing,
    decrypt_private_key,
    encrypt_private_key,
    ensure_master_key,
    generate_user_key,
)
from console.records import (
    LOCAL_ROLE,
    AuditContext,
    AuditEvent,
    Store,
    local_actor,
    local_terminal,
    open_incident,
)

Outcome = Literal["success", "failure", "denied"]
#: Consecutive failures (per account or terminal) that open a security incident.
BURST_FAILURES = 5
USER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
OPERATOR_ROLE = LOCAL_ROLE


class AccountError(ValueError):
    """Bad account request (unknown role, bad id, duplicate …): message is user-facing."""


class AccountExistsError(AccountError):
    """A user id is unique per person: this one is taken."""


class UnknownAccountError(AccountError):
    """No account has this user id."""


class AuthenticationFailedError(AuthError):
    """Login refused. The message is the same whichever factor failed."""

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackoffError(AuthenticationFailedError):
    """Too many recent failures for this account or terminal: wait ``retry_after_s``."""


@dataclass(frozen=True)
class LocalOperator:
    """The command-line operator (see the module docstring)."""

    os_user: str
    terminal: str = "cli"

    @classmethod
    def current(cls) -> LocalOperator:
        """The OS user running this process, on this host's controlling terminal.

        Same actor and terminal spelling as the records store's own local events
        (``local:<os-user>``, ``<host>/<tty>``), so the trail reads consistently.
        """
        return cls(local_actor().removeprefix("local:"), local_terminal())

    @property
    def user_id(self) -> str:
        return f"local:{self.os_user}"

    @property
    def role_label(self) -> str:
        return OPERATOR_ROLE


Actor = Session | LocalOperator


@dataclass(frozen=True)
class Enrolment:
    """What a new (or reset) TOTP enrolment shows once: the otpauth URI for the QR code."""

    user_id: str
    otpauth_uri: str = field(repr=False)


@dataclass(frozen=True)
class AccountInfo:
    """An account as listed to administrators (no secrets)."""

    user_id: str
    roles: frozenset[Role]
    site: str | None
    disabled: bool
    totp_enrolled: bool
    created_at: str
    key_id: str | None


def _iso(t: datetime) -> str:
    return t.isoformat()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def validate_user_id(user_id: str) -> str:
    """Normalise (strip, lower-case) and check a user id.

    Raises:
        AccountError: not 2–64 characters of ``a-z 0-9 . _ -`` starting with a letter or digit.
    """
    uid = user_id.strip().lower()
    if not USER_ID.fullmatch(uid):
        raise AccountError(
            f"invalid user id {user_id!r}: 2 to 64 characters among a-z, 0-9, '.', '_', '-', "
            "starting with a letter or a digit"
        )
    return uid


def parse_roles(roles: Iterable[str]) -> frozenset[Role]:
    """Check role names against the five of the contract.

    Raises:
        AccountError: an unknown role (the message lists the valid ones).
    """
    out: set[Role] = set()
    for name in roles:
        try:
            out.add(Role(name.strip()))
        except ValueError:
            raise AccountError(
                f"unknown role {name!r}: one of {', '.join(r.value for r in Role)}"
            ) from None
    return frozenset(out)


class AccountService:
    """Accounts, authentication, sessions and authorisation over the records store.

    Args:
        store: the records store (``console.records.Store``).
        master_key: the installation master key (TOTP seeds are sealed under it).
        clock: time source; tests inject one instead of sleeping.
        backoff: failed-login back-off parameters.
        reauth_after: session lifetime before re-authentication (12 h).
        authenticator: the means of authentication (password + TOTP by default).
        hasher: Argon2 parameters for new password hashes and signing-key sealing;
            argon2-cffi's defaults (the contract) unless a test passes cheaper ones.
    """

    def __init__(
        self,
        store: Store,
        master_key: bytes,
        *,
        clock: Clock = system_clock,
        backoff: BackoffPolicy | None = None,
        reauth_after: timedelta = REAUTH_AFTER,
        authenticator: Authenticator | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self._ring = MasterKeyRing(master_key)
        ensure_master_key(store, self._ring, clock)
        self._clock = clock
        self._backoff = backoff or BackoffPolicy()
        self._reauth_after = reauth_after
        self._hasher = hasher or default_hasher()
        self._authenticator: Authenticator = authenticator or PasswordTotpAuthenticator(
            self._ring.open_secret, self._hasher
        )
        self.breakglass = BreakGlass(store, clock, self.check_session)

    @property
    def store(self) -> Store:
        """The records store every change is written to."""
        return self._store

    @property
    def clock(self) -> Clock:
        """The service's time source (shared with the services built on it)."""
        return self._clock

    # ----------------------------------------------------------------- audit helpers

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
            self._store.append_audit(
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

    # ----------------------------------------------------------------- authorisation

    def authorize(self, actor: Actor, action: Action | str, target: Target | str) -> Authorization:
        """Allow ``action`` on ``target`` or raise ``Denied`` (audited).

        Sessions are first checked against the database (not ended, not expired, account
        still enabled), then against the matrix and break-glass grants. Call this
        *before* opening a write transaction: a refusal's audit event must commit even
        though the action does not happen.
        """
        if isinstance(actor, LocalOperator):
            return Authorization(role=OPERATOR_ROLE)
        self.check_session(actor)
        return require(
            actor, action, target, audit=self._store, grants=self.breakglass, clock=self._clock
        )

    def permits(self, actor: Actor, action: Action | str, target: Target | str) -> bool:
        """Whether the matrix lets ``actor`` do this, without auditing or break-glass.

        For filtering lists (search results) after :meth:`authorize` has allowed and
        audited the request itself; never a substitute for it.
        """
        if isinstance(actor, LocalOperator):
            return True
        obj = Target(target) if isinstance(target, str) else target
        return allowed_role(actor, Action(action), obj) is not None

    def check_session(self, session: Session) -> None:
        """Raise :class:`SessionExpiredError` unless the session is live.

        Live = created by :meth:`login`, not logged out, less than 12 h old, and its
        account is not disabled (disabling someone ends their sessions at once).
        """
        now = self._clock()
        session.check_fresh(now)
        row = self._store.fetchone(
            "SELECT s.ended_at, s.end_reason, s.expires_at, a.disabled FROM auth_sessions s"
            " JOIN accounts a ON a.user_id = s.user_id WHERE s.token_hash = ? AND s.user_id = ?",
            (_token_hash(session.token), session.user_id),
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

    # ----------------------------------------------------------------- login

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
        now = self._clock()
        t = now.timestamp()
        wait = self._retry_after(uid, terminal, t)
        if wait > 0:
            self._audit_login_failure(uid, terminal, "backoff", wait, counted=False)
            raise BackoffError(
                f"too many failed attempts: next attempt allowed in {int(wait + 0.999)} s",
                wait,
            )
        with self._store.read() as db:
            outcome = self._authenticator.authenticate(db, uid, credentials, now)
        session: Session | None = None
        with self._store.transaction() as conn:
            if outcome.ok and not self._authenticator.consume(conn, outcome):
                outcome = AuthOutcome(False, uid, "totp-replay")
            if not outcome.ok:
                wait = self._record_failure(conn, uid, terminal, t)
                self._audit_login_failure(uid, terminal, outcome.reason, wait, conn=conn)
            else:
                session = self._open_session(conn, uid, terminal, now)
        if session is None:
            suffix = f" (next attempt allowed in {int(wait + 0.999)} s)" if wait > 0 else ""
            raise AuthenticationFailedError(
                f"login refused: wrong user id, password or code{suffix}", wait
            )
        if outcome.unlock_secret is not None:
            session = self._attach_signer(session, outcome.unlock_secret)
        return session

    def _retry_after(self, uid: str, terminal: str, t: float) -> float:
        return max(
            self._state("account", uid).retry_after_s(t, self._backoff),
            self._state("terminal", terminal).retry_after_s(t, self._backoff),
        )

    def _state(self, scope: str, key: str, conn: Any = None) -> BackoffState:
        row = self._store.fetchone(
            "SELECT failures, last_failure_at FROM auth_backoff WHERE scope = ? AND key = ?",
            (scope, key),
            conn=conn,
        )
        return BackoffState(int(row[0]), float(row[1])) if row else BackoffState()

    def _record_failure(self, conn: sqlite3.Connection, uid: str, terminal: str, t: float) -> float:
        wait = 0.0
        for scope, key in (("account", uid), ("terminal", terminal)):
            state = self._state(scope, key, conn).after_failure(t, self._backoff)
            conn.execute(
                "INSERT INTO auth_backoff (scope, key, failures, last_failure_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET"
                " failures = excluded.failures, last_failure_at = excluded.last_failure_at",
                (scope, key, state.failures, state.last_failure_at),
            )
            wait = max(wait, state.retry_after_s(t, self._backoff))
            if state.failures == BURST_FAILURES:
                self._burst_incident(scope, key, terminal)
        return wait

    def _burst_incident(self, scope: str, key: str, terminal: str) -> None:
        """Open one security incident when a burst of failures reaches the threshold.

        Once per burst (exactly at the threshold; the counter restarts after a success
        or a quiet day). Unknown account ids are not named — the terminal's burst covers
        them, and a typed id may be a misplaced password.
        """
        if scope == "account":
            known = self._store.fetchone("SELECT 1 FROM accounts WHERE user_id = ?", (key,))
            if not known:
                return
            obj = f"user:{key}"
        else:
            obj = f"terminal:{key}"
        open_incident(
            self._store,
            AuditContext(actor="system:auth", role="system", terminal=terminal),
            kind="security",
            category="failed-login-burst",
            severity="medium",
            object=obj,
            title=f"{BURST_FAILURES} consecutive failed logins for {obj}",
        )

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
        known = self._store.fetchone("SELECT 1 FROM accounts WHERE user_id = ?", (uid,))
        detail: dict[str, Any] = {
            "reason": reason,
            "method": self._authenticator.method,
            "retry_after_s": round(wait, 3),
            "counted": counted,
        }
        if known:
            actor, obj = uid, f"user:{uid}"
        else:
            actor, obj = "unknown-user", "user:?"
            detail["attempted_id_sha256"] = hashlib.sha256(uid.encode()).hexdigest()[:16]
        self._store.append_audit(
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
        for scope, key in (("account", uid), ("terminal", terminal)):
            conn.execute("DELETE FROM auth_backoff WHERE scope = ? AND key = ?", (scope, key))
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
            method=self._authenticator.method,
            site=site_row[0] if site_row else None,
            reauth_after=self._reauth_after,
            token=token,
        )
        conn.execute(
            "INSERT INTO auth_sessions (token_hash, user_id, terminal, method, authenticated_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                _token_hash(token),
                uid,
                terminal,
                session.method,
                _iso(now),
                _iso(session.expires_at),
            ),
        )
        self.audit(
            session,
            "auth.login",
            f"user:{uid}",
            detail={"method": session.method, "expires_at": _iso(session.expires_at)},
            conn=conn,
        )
        return session

    def _attach_signer(self, session: Session, password: str) -> Session:
        row = self._store.fetchone(
            "SELECT key_id, sealed_private_key FROM user_keys WHERE user_id = ?"
            " AND retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
            (session.user_id,),
        )
        if row is None:
            return session
        try:
            private = decrypt_private_key(session.user_id, row[0], row[1], password)
        except KeyUnlockError:
            self.audit(
                session,
                "key.unlock",
                f"key:{row[0]}",
                outcome="failure",
                detail={"reason": "signing key does not decrypt"},
            )
            return session
        return replace(session, signer=private, signer_key_id=row[0])

    def logout(self, session: Session) -> None:
        """End the session (its token stops working at once)."""
        now = self._clock()
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE auth_sessions SET ended_at = ?, end_reason = 'logout'"
                " WHERE token_hash = ? AND ended_at IS NULL",
                (_iso(now), _token_hash(session.token)),
            )
            self.audit(session, "auth.logout", f"user:{session.user_id}", conn=conn)

    def unlock(self, session: Session, password: str) -> None:
        """Lift the console's privacy lock with the password (console.md).

        Counts towards back-off like a login, and is audited either way.

        Raises:
            SessionExpiredError: the session itself is no longer valid.
            BackoffError / AuthenticationFailedError: wait, or wrong password.
        """
        self.check_session(session)
        now = self._clock()
        t = now.timestamp()
        wait = self._retry_after(session.user_id, session.terminal, t)
        if wait > 0:
            self.audit(
                session,
                "session.unlock",
                f"user:{session.user_id}",
                outcome="failure",
                detail={"reason": "backoff", "retry_after_s": round(wait, 3)},
            )
            raise BackoffError(
                f"too many failed attempts: next attempt allowed in {int(wait + 0.999)} s", wait
            )
        row = self._store.fetchone(
            "SELECT password_hash FROM accounts WHERE user_id = ?", (session.user_id,)
        )
        ok = row is not None and verify_password(row[0], password)
        with self._store.transaction() as conn:
            if ok:
                conn.execute(
                    "DELETE FROM auth_backoff WHERE (scope = 'account' AND key = ?)"
                    " OR (scope = 'terminal' AND key = ?)",
                    (session.user_id, session.terminal),
                )
                self.audit(session, "session.unlock", f"user:{session.user_id}", conn=conn)
            else:
                wait = self._record_failure(conn, session.user_id, session.terminal, t)
                self.audit(
                    session,
                    "session.unlock",
                    f"user:{session.user_id}",
                    outcome="failure",
                    detail={"reason": "bad-password", "retry_after_s": round(wait, 3)},
                    conn=conn,
                )
        if not ok:
            raise AuthenticationFailedError("wrong password", wait)

    # ----------------------------------------------------------------- administration

    def _require_account(self, conn: Any, uid: str) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT user_id, disabled, site FROM accounts WHERE user_id = ?", (uid,)
        ).fetchone()
        if row is None:
            raise UnknownAccountError(f"no account with user id {uid!r}")
        return tuple(row)

    def create_user(
        self,
        actor: Actor,
        user_id: str,
        roles: Iterable[str],
        password: str,
        *,
        site: str | None = None,
    ) -> Enrolment:
        """Create an account with its roles, password, TOTP seed and signing key pair.

        Returns the TOTP enrolment to show once (URI + QR code). The public key and the
        account creation are appended to the trail, atomically with the rows.

        Raises:
            AccountError: bad id, unknown or no role, id taken.
            PasswordPolicyError: the password breaks a rule (message says which).
            Denied: the actor may not manage accounts (audited).
        """
        uid = validate_user_id(user_id)
        role_set = parse_roles(roles)
        if not role_set:
            raise AccountError("an account needs at least one role (--role)")
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        if self._store.fetchone("SELECT 1 FROM accounts WHERE user_id = ?", (uid,)):
            raise AccountExistsError(f"user id {uid!r} already exists (one account per person)")
        check_password_policy(uid, password)
        secret = new_secret()
        sealed = self._ring.seal_secret(f"accounts\x00totp_secret\x00{uid}", secret.encode())
        pw_hash = hash_password(password, self._hasher)
        key = generate_user_key(uid, password, self._hasher)
        now = _iso(self._clock())
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO accounts (user_id, password_hash, totp_secret, site, created_at,"
                " updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (uid, pw_hash, sealed, site, now, now, now),
            )
            conn.executemany(
                "INSERT INTO account_roles (user_id, role) VALUES (?, ?)",
                [(uid, r.value) for r in sorted(role_set)],
            )
            self._store_key(
                conn,
                uid=uid,
                key_id=key.key_id,
                public=key.public_key,
                sealed=key.sealed_private,
                now=now,
            )
            self.audit(
                actor,
                "user.create",
                f"user:{uid}",
                detail={"roles": sorted(r.value for r in role_set), "site": site},
                conn=conn,
            )
            self._audit_key(
                actor,
                conn,
                uid=uid,
                action="key.create",
                key_id=key.key_id,
                public=key.public_key,
            )
        return Enrolment(uid, provisioning_uri(secret, uid))

    def _store_key(
        self,
        conn: sqlite3.Connection,
        *,
        uid: str,
        key_id: str,
        public: bytes,
        sealed: bytes,
        now: str,
    ) -> None:
        conn.execute(
            "INSERT INTO user_keys (key_id, user_id, public_key, sealed_private_key, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key_id, uid, public, sealed, now),
        )

    def _audit_key(
        self,
        actor: Actor,
        conn: sqlite3.Connection,
        *,
        uid: str,
        action: str,
        key_id: str,
        public: bytes | None,
        reason: str | None = None,
    ) -> None:
        detail: dict[str, Any] = {"user": uid, "key_id": key_id, "algorithm": "Ed25519"}
        if public is not None:
            detail["public_key"] = public.hex()
        if reason:
            detail["reason"] = reason
        self.audit(actor, action, f"key:{key_id}", detail=detail, conn=conn)

    def list_users(self, actor: Actor) -> list[AccountInfo]:
        """Every account (no secrets), sorted by id; the listing is audited."""
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target("users"))
        rows = self._store.fetchall(
            "SELECT a.user_id, a.site, a.disabled, a.totp_secret IS NOT NULL, a.created_at,"
            " (SELECT group_concat(role) FROM account_roles r WHERE r.user_id = a.user_id),"
            " (SELECT key_id FROM user_keys k WHERE k.user_id = a.user_id"
            "  AND k.retired_at IS NULL ORDER BY created_at DESC LIMIT 1)"
            " FROM accounts a ORDER BY a.user_id"
        )
        self.audit(actor, "user.list", "users", detail={"count": len(rows)})
        return [
            AccountInfo(
                user_id=r[0],
                site=r[1],
                disabled=bool(r[2]),
                totp_enrolled=bool(r[3]),
                created_at=r[4],
                roles=frozenset(Role(x) for x in (r[5] or "").split(",") if x),
                key_id=r[6],
            )
            for r in rows
        ]

    def _end_sessions(self, conn: sqlite3.Connection, uid: str, reason: str) -> int:
        cur = conn.execute(
            "UPDATE auth_sessions SET ended_at = ?, end_reason = ? WHERE user_id = ?"
            " AND ended_at IS NULL",
            (_iso(self._clock()), reason, uid),
        )
        return int(cur.rowcount)

    def disable_user(self, actor: Actor, user_id: str) -> bool:
        """Disable an account and end its sessions. Returns False if already disabled.

        Accounts are never deleted: their id stays reserved and their trail attributable.
        """
        uid = validate_user_id(user_id)
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        with self._store.transaction() as conn:
            _, disabled, _ = self._require_account(conn, uid)
            conn.execute(
                "UPDATE accounts SET disabled = 1, updated_at = ? WHERE user_id = ?",
                (_iso(self._clock()), uid),
            )
            ended = self._end_sessions(conn, uid, "account disabled")
            self.audit(
                actor,
                "user.disable",
                f"user:{uid}",
                detail={"sessions_ended": ended, "was_disabled": bool(disabled)},
                conn=conn,
            )
        return not disabled

    def enable_user(self, actor: Actor, user_id: str) -> bool:
        """Re-enable a disabled account. Returns False if it was already enabled."""
        uid = validate_user_id(user_id)
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        with self._store.transaction() as conn:
            _, disabled, _ = self._require_account(conn, uid)
            conn.execute(
                "UPDATE accounts SET disabled = 0, updated_at = ? WHERE user_id = ?",
                (_iso(self._clock()), uid),
            )
            self.audit(actor, "user.enable", f"user:{uid}", conn=conn)
        return bool(disabled)

    def reset_totp(self, actor: Actor, user_id: str) -> Enrolment:
        """Give an account a new TOTP seed (lost phone) and end its sessions."""
        uid = validate_user_id(user_id)
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        secret = new_secret()
        sealed = self._ring.seal_secret(f"accounts\x00totp_secret\x00{uid}", secret.encode())
        with self._store.transaction() as conn:
            self._require_account(conn, uid)
            conn.execute(
                "UPDATE accounts SET totp_secret = ?, totp_last_step = NULL, updated_at = ?"
                " WHERE user_id = ?",
                (sealed, _iso(self._clock()), uid),
            )
            ended = self._end_sessions(conn, uid, "totp reset")
            self.audit(
                actor, "user.reset_totp", f"user:{uid}", detail={"sessions_ended": ended}, conn=conn
            )
        return Enrolment(uid, provisioning_uri(secret, uid))

    def roles(self, user_id: str) -> frozenset[Role]:
        """The roles an account holds (no audit: used by callers already authorised)."""
        uid = validate_user_id(user_id)
        with self._store.read() as db:
            self._require_account(db, uid)
        rows = self._store.fetchall("SELECT role FROM account_roles WHERE user_id = ?", (uid,))
        return frozenset(Role(r[0]) for r in rows)

    def set_roles(
        self,
        actor: Actor,
        user_id: str,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> frozenset[Role]:
        """Add and remove roles; returns the roles now held.

        A person cannot change their own habilitations (an admin granting themself
        ``regulateur`` would escape least privilege), and an account keeps at least one
        role (to take all of them away, disable it). Sessions are ended when roles
        shrink, so the next login sees the new column.
        """
        uid = validate_user_id(user_id)
        to_add, to_remove = parse_roles(add), parse_roles(remove)
        if to_add & to_remove:
            raise AccountError(
                f"role(s) both added and removed: {', '.join(sorted(to_add & to_remove))}"
            )
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        if isinstance(actor, Session) and actor.user_id == uid and (to_add or to_remove):
            self.audit(
                actor,
                "user.roles",
                f"user:{uid}",
                outcome="denied",
                detail={"reason": "own habilitations"},
            )
            raise AccountError("a person cannot change their own roles")
        current = self.roles(uid)
        new = (current | to_add) - to_remove
        if not new:
            raise AccountError(
                "an account keeps at least one role (to remove all access, disable it)"
            )
        if new == current:
            return current
        with self._store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO account_roles (user_id, role) VALUES (?, ?)",
                [(uid, r.value) for r in sorted(to_add)],
            )
            conn.executemany(
                "DELETE FROM account_roles WHERE user_id = ? AND role = ?",
                [(uid, r.value) for r in sorted(to_remove)],
            )
            ended = self._end_sessions(conn, uid, "roles changed") if current - new else 0
            self.audit(
                actor,
                "user.roles",
                f"user:{uid}",
                detail={
                    "added": sorted(r.value for r in new - current),
                    "removed": sorted(r.value for r in current - new),
                    "roles": sorted(r.value for r in new),
                    "sessions_ended": ended,
                },
                conn=conn,
            )
        return new

    def change_password(self, session: Session, old: str, new: str) -> None:
        """The user changes their own password; their signing key is re-sealed under it.

        Raises:
            AuthenticationFailedError: ``old`` is wrong (counts towards back-off).
            PasswordPolicyError: ``new`` breaks a rule.
        """
        self.check_session(session)
        check_password_policy(session.user_id, new)
        row = self._store.fetchone(
            "SELECT password_hash FROM accounts WHERE user_id = ?", (session.user_id,)
        )
        if row is None or not verify_password(row[0], old):
            self.audit(
                session,
                "user.password_change",
                f"user:{session.user_id}",
                outcome="failure",
                detail={"reason": "bad-password"},
            )
            raise AuthenticationFailedError("wrong current password")
        keys = self._store.fetchall(
            "SELECT key_id, sealed_private_key FROM user_keys WHERE user_id = ?"
            " AND retired_at IS NULL",
            (session.user_id,),
        )
        resealed = []
        for key_id, sealed in keys:
            private = decrypt_private_key(session.user_id, key_id, sealed, old)
            resealed.append(
                (encrypt_private_key(session.user_id, private, new, self._hasher), key_id)
            )
        now = _iso(self._clock())
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE accounts SET password_hash = ?, password_changed_at = ?, updated_at = ?"
                " WHERE user_id = ?",
                (hash_password(new, self._hasher), now, now, session.user_id),
            )
            conn.executemany(
                "UPDATE user_keys SET sealed_private_key = ? WHERE key_id = ?", resealed
            )
            self.audit(
                session,
                "user.password_change",
                f"user:{session.user_id}",
                detail={"keys_resealed": len(resealed)},
                conn=conn,
            )

    def reset_password(self, actor: Actor, user_id: str, new_password: str) -> str:
        """An administrator sets a new password for someone who forgot theirs.

        The old signing key cannot be opened without the old password: it is retired
        (kept to verify past signatures) and a new pair is made; both changes go to the
        trail. Sessions end. Returns the new key id.
        """
        uid = validate_user_id(user_id)
        self.authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        with self._store.read() as db:
            self._require_account(db, uid)
        check_password_policy(uid, new_password)
        key = generate_user_key(uid, new_password, self._hasher)
        pw_hash = hash_password(new_password, self._hasher)
        now = _iso(self._clock())
        with self._store.transaction() as conn:
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT key_id FROM user_keys WHERE user_id = ? AND retired_at IS NULL", (uid,)
                )
            ]
            conn.execute(
                "UPDATE user_keys SET retired_at = ?, retired_reason = 'password reset'"
                " WHERE user_id = ? AND retired_at IS NULL",
                (now, uid),
            )
            conn.execute(
                "UPDATE accounts SET password_hash = ?, password_changed_at = ?, updated_at = ?"
                " WHERE user_id = ?",
                (pw_hash, now, now, uid),
            )
            self._store_key(
                conn,
                uid=uid,
                key_id=key.key_id,
                public=key.public_key,
                sealed=key.sealed_private,
                now=now,
            )
            ended = self._end_sessions(conn, uid, "password reset")
            self.audit(
                actor,
                "user.reset_password",
                f"user:{uid}",
                detail={"sessions_ended": ended},
                conn=conn,
            )
            for key_id in old:
                self._audit_key(
                    actor,
                    conn,
                    uid=uid,
                    action="key.retire",
                    key_id=key_id,
                    public=None,
                    reason="password reset",
                )
            self._audit_key(
                actor,
                conn,
                uid=uid,
                action="key.create",
                key_id=key.key_id,
                public=key.public_key,
            )
        return key.key_id

    def public_key(self, key_id: str) -> tuple[str, bytes, str | None]:
        """``(user_id, raw public key, retired_at)`` of a signing key id.

        Raises:
            KeyError: no such key.
        """
        row = self._store.fetchone(
            "SELECT user_id, public_key, retired_at FROM user_keys WHERE key_id = ?", (key_id,)
        )
        if row is None:
            raise KeyError(f"no signing key {key_id}")
        return row[0], bytes(row[1]), row[2]
