"""People's Ed25519 signing keys: stored sealed under their password, audited, unlocked
at login for the session's signatures."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from console.auth._accounts import Actor
from console.auth._context import AccountsContext
from console.auth._passwords import normalise_password
from console.auth._sessions import Session
from console.crypto import KeyUnlockError, decrypt_private_key


class UserKeys:
    """The ``user_keys`` table and its trail."""

    def __init__(self, ctx: AccountsContext) -> None:
        self._ctx = ctx

    def store(
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

    def audit(
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
        self._ctx.audit(actor, action, f"key:{key_id}", detail=detail, conn=conn)

    def signer_for(self, session: Session, password: str) -> Session:
        """``session`` with its signing key unlocked by ``password`` (unchanged if none)."""
        row = self._ctx.store.fetchone(
            "SELECT key_id, sealed_private_key FROM user_keys WHERE user_id = ?"
            " AND retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
            (session.user_id,),
        )
        if row is None:
            return session
        try:
            private = unseal_key(session.user_id, row[0], row[1], password)
        except KeyUnlockError:
            self._ctx.audit(
                session,
                "key.unlock",
                f"key:{row[0]}",
                outcome="failure",
                detail={"reason": "signing key does not decrypt"},
            )
            return session
        return replace(session, signer=private, signer_key_id=row[0])

    def public_key(self, key_id: str) -> tuple[str, bytes, str | None]:
        """``(user_id, raw public key, retired_at)`` of a signing key id.

        Raises:
            KeyError: no such key.
        """
        row = self._ctx.store.fetchone(
            "SELECT user_id, public_key, retired_at FROM user_keys WHERE key_id = ?", (key_id,)
        )
        if row is None:
            raise KeyError(f"no signing key {key_id}")
        return row[0], bytes(row[1]), row[2]


def unseal_key(user_id: str, key_id: str, sealed: bytes, password: str) -> Any:
    """The private key sealed under ``password``, normalised as the password rules see it.

    Keys sealed before passwords were normalised were sealed under the text as typed:
    that form is tried when the normalised one does not open the key.

    Raises:
        KeyUnlockError: neither form opens it.
    """
    normalised = normalise_password(password)
    try:
        return decrypt_private_key(user_id, key_id, sealed, normalised)
    except KeyUnlockError:
        if normalised == password:
            raise
        return decrypt_private_key(user_id, key_id, sealed, password)
