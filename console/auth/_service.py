"""The account service: the one door every caller (TUI, CLI, hub) goes through.

A facade: the work is done by its parts, one concern each -- :class:`~._logins.Logins`
(secrets typed by people, sessions), :class:`~._administration.Administration`,
:class:`~._user_keys.UserKeys`, :class:`~._throttle.Throttle` (back-off), over one
shared :class:`~._context.AccountsContext`. Callers see only this class.

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

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher

from console.auth._accounts import (
    OPERATOR_ROLE,
    AccountInfo,
    Actor,
    Enrolment,
    LocalOperator,
    Outcome,
)
from console.auth._administration import Administration
from console.auth._authenticator import Authenticator, PasswordTotpAuthenticator
from console.auth._backoff import BackoffPolicy
from console.auth._breakglass import BreakGlass
from console.auth._context import AccountsContext
from console.auth._habilitations import Action, Authorization, Target, allowed_role, require
from console.auth._logins import Logins
from console.auth._passwords import default_hasher
from console.auth._sessions import REAUTH_AFTER, Clock, Role, Session, system_clock
from console.auth._throttle import Throttle
from console.auth._user_keys import UserKeys
from console.crypto import MasterKeyRing, ensure_master_key
from console.records import Store


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
        ring = MasterKeyRing(master_key)
        ensure_master_key(store, ring, clock)
        hasher = hasher or default_hasher()
        self._ctx = AccountsContext(
            store=store,
            ring=ring,
            clock=clock,
            hasher=hasher,
            backoff=backoff or BackoffPolicy(),
            reauth_after=reauth_after,
            authenticator=authenticator or PasswordTotpAuthenticator(ring.open_secret, hasher),
        )
        self.breakglass = BreakGlass(store, clock, self.check_session)
        self._keys = UserKeys(self._ctx)
        self._logins = Logins(self._ctx, Throttle(self._ctx), self._keys)
        self._admin = Administration(self._ctx, self.authorize, self._keys)

    @property
    def store(self) -> Store:
        """The records store every change is written to."""
        return self._ctx.store

    @property
    def clock(self) -> Clock:
        """The service's time source (shared with the services built on it)."""
        return self._ctx.clock

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
        return self._ctx.audit(
            actor,
            action,
            obj,
            outcome=outcome,
            detail=detail,
            role=role,
            purpose=purpose,
            conn=conn,
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
            actor,
            action,
            target,
            audit=self._ctx.store,
            grants=self.breakglass,
            clock=self._ctx.clock,
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
        """Raise :class:`SessionExpiredError` unless the session is live (not ended, not
        expired, account enabled)."""
        self._ctx.check_session(session)

    # ----------------------------------------------------------------- sessions

    def login(self, user_id: str, password: str, totp: str, terminal: str) -> Session:
        """Password + TOTP login (see :meth:`authenticate`)."""
        return self._logins.login(user_id, password, totp, terminal)

    def authenticate(self, user_id: str, credentials: Mapping[str, str], terminal: str) -> Session:
        """Authenticate and open a session, with back-off and audit.

        Raises:
            BackoffError: an attempt during the back-off wait (not checked, not counted).
            AuthenticationFailedError: wrong id, password or code, replayed code, disabled
                account — one message for all; the trail records which.
        """
        return self._logins.authenticate(user_id, credentials, terminal)

    def logout(self, session: Session) -> None:
        """End the session (its token stops working at once)."""
        self._logins.logout(session)

    def unlock(self, session: Session, password: str) -> None:
        """Lift the console's privacy lock with the password (throttled, audited)."""
        self._logins.unlock(session, password)

    def change_password(self, session: Session, old: str, new: str) -> None:
        """The user changes their own password (throttled like a login)."""
        self._logins.change_password(session, old, new)

    # ----------------------------------------------------------------- administration

    def create_user(
        self,
        actor: Actor,
        user_id: str,
        roles: Iterable[str],
        password: str,
        *,
        site: str | None = None,
    ) -> Enrolment:
        """Create an account (roles, password, TOTP seed, signing key); see
        :meth:`Administration.create_user`."""
        return self._admin.create_user(actor, user_id, roles, password, site=site)

    def list_users(self, actor: Actor) -> list[AccountInfo]:
        """Every account (no secrets), sorted by id; the listing is audited."""
        return self._admin.list_users(actor)

    def disable_user(self, actor: Actor, user_id: str) -> bool:
        """Disable an account and end its sessions. Returns False if already disabled."""
        return self._admin.disable_user(actor, user_id)

    def enable_user(self, actor: Actor, user_id: str) -> bool:
        """Re-enable a disabled account. Returns False if it was already enabled."""
        return self._admin.enable_user(actor, user_id)

    def reset_totp(self, actor: Actor, user_id: str) -> Enrolment:
        """Give an account a new TOTP seed (lost phone) and end its sessions."""
        return self._admin.reset_totp(actor, user_id)

    def roles(self, user_id: str) -> frozenset[Role]:
        """The roles an account holds (no audit: used by callers already authorised)."""
        return self._admin.roles(user_id)

    def set_roles(
        self,
        actor: Actor,
        user_id: str,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> frozenset[Role]:
        """Add and remove roles; returns the roles now held (never one's own)."""
        return self._admin.set_roles(actor, user_id, add, remove)

    def reset_password(self, actor: Actor, user_id: str, new_password: str) -> str:
        """An administrator sets a new password; the old signing key is retired and a
        new one made. Returns the new key id."""
        return self._admin.reset_password(actor, user_id, new_password)

    def public_key(self, key_id: str) -> tuple[str, bytes, str | None]:
        """``(user_id, raw public key, retired_at)`` of a signing key id (KeyError if none)."""
        return self._keys.public_key(key_id)


__all__ = ["OPERATOR_ROLE", "AccountService", "LocalOperator"]
