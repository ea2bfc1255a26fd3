"""SQLite migrations for accounts and authentication, applied by the records store.

``MIGRATIONS`` is an ordered list of ``(name, sql_script)``; names never change once shipped.

Tables (all STRICT; times are ISO 8601 with offset, UTC, as TEXT, except back-off
times which are unix seconds because they are only ever compared arithmetically):

* ``accounts`` — one row per person (the user id is the primary key: no shared
  accounts). ``password_hash`` is the Argon2id encoded string; ``totp_secret`` is the
  TOTP seed sealed under a master-key-derived key (a stolen database file alone does
  not yield second factors); ``totp_last_step`` is the last accepted RFC 6238 step,
  the replay guard. ``site`` is the EHPAD an ``ide_ehpad`` belongs to.
* ``account_roles`` — the roles a person holds (several allowed), checked against the
  five role names.
* ``auth_backoff`` — consecutive failures per account id and per terminal.
* ``auth_sessions`` — the SHA-256 of each session token (never the token), when it was
  authenticated, when it must re-authenticate, and when/why it ended.
* ``breakglass_grants`` — emergency overrides, their reason, expiry and auditor review.
* ``user_keys`` — each user's Ed25519 public keys and sealed private keys; retired
  keys are kept so old signatures still verify.
"""

from __future__ import annotations

#: Checked at start-up by the store. A user's public key is the anchor of every signature
#: they made: once stored, its id, owner and bytes never change and the row is never
#: deleted (retiring a key is an UPDATE of ``retired_at``; re-sealing the private half
#: after a password change updates ``sealed_private_key`` only).
PROTECTIVE_TRIGGERS: dict[str, str] = {
    "user_keys_public_immutable": (
        "CREATE TRIGGER user_keys_public_immutable BEFORE UPDATE OF key_id, user_id,"
        " algorithm, public_key, created_at ON user_keys"
        " BEGIN SELECT RAISE(ABORT, 'user_keys public part is immutable'); END"
    ),
    "user_keys_no_delete": (
        "CREATE TRIGGER user_keys_no_delete BEFORE DELETE ON user_keys"
        " BEGIN SELECT RAISE(ABORT, 'user_keys rows are never deleted'); END"
    ),
}

MIGRATIONS: list[tuple[str, str]] = [
    (
        "auth_0001_accounts",
        """
CREATE TABLE accounts (
    user_id TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret BLOB,
    totp_last_step INTEGER,
    site TEXT,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
) STRICT;

CREATE TABLE account_roles (
    user_id TEXT NOT NULL REFERENCES accounts(user_id),
    role TEXT NOT NULL
        CHECK (role IN ('regulateur', 'arm', 'ide_ehpad', 'auditeur', 'admin')),
    PRIMARY KEY (user_id, role)
) STRICT;

CREATE TABLE auth_backoff (
    scope TEXT NOT NULL CHECK (scope IN ('account', 'terminal')),
    key TEXT NOT NULL,
    failures INTEGER NOT NULL CHECK (failures >= 0),
    last_failure_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

CREATE TABLE auth_sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES accounts(user_id),
    terminal TEXT NOT NULL,
    method TEXT NOT NULL,
    authenticated_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT,
    end_reason TEXT
) STRICT;
CREATE INDEX auth_sessions_user ON auth_sessions(user_id);

CREATE TABLE breakglass_grants (
    grant_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES accounts(user_id),
    object TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    granted_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    terminal TEXT NOT NULL,
    audit_seq INTEGER,
    reviewed_by TEXT,
    reviewed_at TEXT,
    review_note TEXT
) STRICT;
CREATE INDEX breakglass_user_object ON breakglass_grants(user_id, object);

CREATE TABLE user_keys (
    key_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES accounts(user_id),
    algorithm TEXT NOT NULL DEFAULT 'Ed25519',
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    sealed_private_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    retired_reason TEXT
) STRICT;
CREATE INDEX user_keys_user ON user_keys(user_id);
"""
        + ";\n".join(PROTECTIVE_TRIGGERS.values())
        + ";\n",
    ),
]
