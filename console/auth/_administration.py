"""Account administration: create, list, disable, enable, reset, roles.

Every call is authorised (``accounts.manage``) and audited in the transaction of the
change it records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from console.auth._accounts import (
    AccountError,
    AccountExistsError,
    AccountInfo,
    Actor,
    Enrolment,
    UnknownAccountError,
    iso,
    parse_roles,
    validate_user_id,
)
from console.auth._context import AccountsContext
from console.auth._habilitations import Action, Authorization, Target
from console.auth._passwords import check_password_policy, hash_password, normalise_password
from console.auth._sessions import Role, Session
from console.auth._totp import new_secret, provisioning_uri
from console.auth._user_keys import UserKeys
from console.crypto import generate_user_key

Authorize = Callable[[Actor, Action | str, Target | str], Authorization]


class Administration:
    """What administrators (and the local operator) do to accounts."""

    def __init__(self, ctx: AccountsContext, authorize: Authorize, keys: UserKeys) -> None:
        self._ctx = ctx
        self._authorize = authorize
        self._keys = keys

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
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        if self._ctx.store.fetchone("SELECT 1 FROM accounts WHERE user_id = ?", (uid,)):
            raise AccountExistsError(f"user id {uid!r} already exists (one account per person)")
        check_password_policy(uid, password)
        if Role.IDE_EHPAD in role_set and not site:
            raise AccountError(
                "an ide_ehpad account needs a site (--site): the EHPAD whose residents "
                "the nurse cares for"
            )
        if site and Role.IDE_EHPAD not in role_set:
            raise AccountError(
                "a site (--site) applies to ide_ehpad accounts only: the other roles are "
                "not bound to one EHPAD"
            )
        secret = new_secret()
        sealed = self._ctx.ring.seal_secret(f"accounts\x00totp_secret\x00{uid}", secret.encode())
        pw_hash = hash_password(password, self._ctx.hasher)
        key = generate_user_key(uid, normalise_password(password), self._ctx.hasher)
        now = iso(self._ctx.clock())
        with self._ctx.store.transaction() as conn:
            conn.execute(
                "INSERT INTO accounts (user_id, password_hash, totp_secret, site, created_at,"
                " updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (uid, pw_hash, sealed, site, now, now, now),
            )
            conn.executemany(
                "INSERT INTO account_roles (user_id, role) VALUES (?, ?)",
                [(uid, r.value) for r in sorted(role_set)],
            )
            self._keys.store(
                conn,
                uid=uid,
                key_id=key.key_id,
                public=key.public_key,
                sealed=key.sealed_private,
                now=now,
            )
            self._ctx.audit(
                actor,
                "user.create",
                f"user:{uid}",
                detail={"roles": sorted(r.value for r in role_set), "site": site},
                conn=conn,
            )
            self._keys.audit(
                actor,
                conn,
                uid=uid,
                action="key.create",
                key_id=key.key_id,
                public=key.public_key,
            )
        return Enrolment(uid, provisioning_uri(secret, uid))

    def list_users(self, actor: Actor) -> list[AccountInfo]:
        """Every account (no secrets), sorted by id; the listing is audited."""
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target("users"))
        rows = self._ctx.store.fetchall(
            "SELECT a.user_id, a.site, a.disabled, a.totp_secret IS NOT NULL, a.created_at,"
            " (SELECT group_concat(role) FROM account_roles r WHERE r.user_id = a.user_id),"
            " (SELECT key_id FROM user_keys k WHERE k.user_id = a.user_id"
            "  AND k.retired_at IS NULL ORDER BY created_at DESC LIMIT 1)"
            " FROM accounts a ORDER BY a.user_id"
        )
        self._ctx.audit(actor, "user.list", "users", detail={"count": len(rows)})
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
            (iso(self._ctx.clock()), reason, uid),
        )
        return int(cur.rowcount)

    def disable_user(self, actor: Actor, user_id: str) -> bool:
        """Disable an account and end its sessions. Returns False if already disabled.

        Accounts are never deleted: their id stays reserved and their trail attributable.
        """
        uid = validate_user_id(user_id)
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        with self._ctx.store.transaction() as conn:
            _, disabled, _ = self._require_account(conn, uid)
            conn.execute(
                "UPDATE accounts SET disabled = 1, updated_at = ? WHERE user_id = ?",
                (iso(self._ctx.clock()), uid),
            )
            ended = self._end_sessions(conn, uid, "account disabled")
            self._ctx.audit(
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
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        with self._ctx.store.transaction() as conn:
            _, disabled, _ = self._require_account(conn, uid)
            conn.execute(
                "UPDATE accounts SET disabled = 0, updated_at = ? WHERE user_id = ?",
                (iso(self._ctx.clock()), uid),
            )
            self._ctx.audit(actor, "user.enable", f"user:{uid}", conn=conn)
        return bool(disabled)

    def reset_totp(self, actor: Actor, user_id: str) -> Enrolment:
        """Give an account a new TOTP seed (lost phone) and end its sessions."""
        uid = validate_user_id(user_id)
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        secret = new_secret()
        sealed = self._ctx.ring.seal_secret(f"accounts\x00totp_secret\x00{uid}", secret.encode())
        with self._ctx.store.transaction() as conn:
            self._require_account(conn, uid)
            conn.execute(
                "UPDATE accounts SET totp_secret = ?, totp_last_step = NULL, updated_at = ?"
                " WHERE user_id = ?",
                (sealed, iso(self._ctx.clock()), uid),
            )
            ended = self._end_sessions(conn, uid, "totp reset")
            self._ctx.audit(
                actor, "user.reset_totp", f"user:{uid}", detail={"sessions_ended": ended}, conn=conn
            )
        return Enrolment(uid, provisioning_uri(secret, uid))

    def roles(self, user_id: str) -> frozenset[Role]:
        """The roles an account holds (no audit: used by callers already authorised)."""
        uid = validate_user_id(user_id)
        with self._ctx.store.read() as db:
            self._require_account(db, uid)
        rows = self._ctx.store.fetchall("SELECT role FROM account_roles WHERE user_id = ?", (uid,))
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
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        if isinstance(actor, Session) and actor.user_id == uid and (to_add or to_remove):
            self._ctx.audit(
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
        with self._ctx.store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO account_roles (user_id, role) VALUES (?, ?)",
                [(uid, r.value) for r in sorted(to_add)],
            )
            conn.executemany(
                "DELETE FROM account_roles WHERE user_id = ? AND role = ?",
                [(uid, r.value) for r in sorted(to_remove)],
            )
            ended = self._end_sessions(conn, uid, "roles changed") if current - new else 0
            self._ctx.audit(
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

    def reset_password(self, actor: Actor, user_id: str, new_password: str) -> str:
        """An administrator sets a new password for someone who forgot theirs.

        The old signing key cannot be opened without the old password: it is retired
        (kept to verify past signatures) and a new pair is made; both changes go to the
        trail. Sessions end. Returns the new key id.
        """
        uid = validate_user_id(user_id)
        self._authorize(actor, Action.ACCOUNTS_MANAGE, Target(f"user:{uid}"))
        with self._ctx.store.read() as db:
            self._require_account(db, uid)
        check_password_policy(uid, new_password)
        key = generate_user_key(uid, normalise_password(new_password), self._ctx.hasher)
        pw_hash = hash_password(new_password, self._ctx.hasher)
        now = iso(self._ctx.clock())
        with self._ctx.store.transaction() as conn:
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
            self._keys.store(
                conn,
                uid=uid,
                key_id=key.key_id,
                public=key.public_key,
                sealed=key.sealed_private,
                now=now,
            )
            ended = self._end_sessions(conn, uid, "password reset")
            self._ctx.audit(
                actor,
                "user.reset_password",
                f"user:{uid}",
                detail={"sessions_ended": ended},
                conn=conn,
            )
            for key_id in old:
                self._keys.audit(
                    actor,
                    conn,
                    uid=uid,
                    action="key.retire",
                    key_id=key_id,
                    public=None,
                    reason="password reset",
                )
            self._keys.audit(
                actor,
                conn,
                uid=uid,
                action="key.create",
                key_id=key.key_id,
                public=key.public_key,
            )
        return key.key_id
