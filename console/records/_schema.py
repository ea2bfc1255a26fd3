"""The records store's own migrations: audit trail, checkpoints, signing keys, incidents.

``MIGRATIONS`` is an ordered list of ``(name, sql_script)``; names never change once
shipped (they are recorded in ``schema_migrations``). Every table is STRICT.

Layout for outside auditors (also in ``console/records/README.md``):

* ``audit_events`` — one row per event. ``seq INTEGER PRIMARY KEY`` counts from 1 with
  no gap; the event fields are plain columns for querying; ``canonical`` holds the exact
  bytes hashed (canonical JSON of the event *including* ``seq``: keys sorted, separators
  ``,`` and ``:``, UTF-8, no ASCII escaping); ``leaf_hash = SHA-256(0x00 || canonical)``;
  ``chain_hash = SHA-256(chain_hash(seq-1) || leaf_hash)`` with 32 zero bytes before
  seq 1. Triggers refuse UPDATE and DELETE.
* ``audit_checkpoints`` — Ed25519-signed statements (tree size, RFC 6962 Merkle root,
  chain head, time, key id); ``statement`` holds the exact signed bytes; ``frontier``
  the perfect-subtree roots at that size so the next checkpoint need not reread the
  trail (not signed: verification always recomputes from the leaves).
* ``audit_keys`` — the installation's public keys. The first is the trust anchor; a
  later key counts only with an ``endorsement`` (Ed25519 signature by an earlier key).
* ``audit_log`` — one row: the log's random id, carried by every checkpoint so that
  statements from another database in the same directory are never confused with ours.
* ``incidents`` / ``incident_notes`` — security and technical incidents; notes (the
  follow-up, including every status change) are append-only.

Why no AUTOINCREMENT, no CHECK constraint and no index beyond the primary key on
``audit_events``: the writer assigns ``seq`` itself (it must hash it before inserting);
integrity comes from the hashes, which verification checks whatever a row holds, not
from constraints an editor can switch off (``PRAGMA ignore_check_constraints``); and
every extra index costs on the ≥ 50 k events/s append path (rare queries, such as a
rights export by object, scan).
"""

from __future__ import annotations


def _append_only(table: str) -> dict[str, str]:
    """Two triggers refusing UPDATE and DELETE on ``table``, keyed by trigger name."""
    return {
        f"{table}_no_update": (
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        ),
        f"{table}_no_delete": (
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        ),
    }


#: trigger name -> exact CREATE TRIGGER statement. Start-up and ``samu audit verify``
#: check that each exists with this very text (whitespace aside): sqlite-utils'
#: ``transform()`` or a hand edit would silently drop or weaken them.
AUDIT_TRIGGERS: dict[str, str] = {
    **_append_only("audit_events"),
    **_append_only("audit_checkpoints"),
    **_append_only("audit_keys"),
    **_append_only("audit_log"),
}

INCIDENT_TRIGGERS: dict[str, str] = _append_only("incident_notes")

#: Every protective trigger of this migration set, checked at start-up.
PROTECTIVE_TRIGGERS: dict[str, str] = {**AUDIT_TRIGGERS, **INCIDENT_TRIGGERS}


def _script(*statements: str) -> str:
    return ";\n".join(s.strip() for s in statements) + ";\n"


_AUDIT = _script(
    """
CREATE TABLE audit_log (
    log_id TEXT PRIMARY KEY NOT NULL,
    format TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT
""",
    """
INSERT INTO audit_log (log_id, format, created_at)
VALUES (lower(hex(randomblob(16))), 'samu.audit.v1', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))
""",
    """
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    terminal TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    purpose TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    canonical BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL
) STRICT
""",
    """
CREATE TABLE audit_keys (
    id INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL CHECK (algorithm = 'Ed25519'),
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    added_at TEXT NOT NULL,
    endorsement BLOB
) STRICT
""",
    """
CREATE TABLE audit_checkpoints (
    id INTEGER PRIMARY KEY,
    tree_size INTEGER NOT NULL,
    root BLOB NOT NULL,
    chain_head BLOB NOT NULL,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL,
    statement BLOB NOT NULL,
    signature BLOB NOT NULL,
    frontier BLOB NOT NULL
) STRICT
""",
    "CREATE INDEX audit_checkpoints_tree_size ON audit_checkpoints (tree_size)",
    *AUDIT_TRIGGERS.values(),
)

_INCIDENTS = _script(
    """
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('security', 'technical')),
    category TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    title TEXT NOT NULL CHECK (length(trim(title)) > 0),
    object TEXT,
    status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'closed')),
    opened_at TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT
""",
    "CREATE INDEX incidents_status ON incidents (status, kind)",
    """
CREATE TABLE incident_notes (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    time TEXT NOT NULL,
    author TEXT NOT NULL,
    status_from TEXT,
    status_to TEXT,
    note TEXT NOT NULL
) STRICT
""",
    "CREATE INDEX incident_notes_incident ON incident_notes (incident_id, id)",
    *INCIDENT_TRIGGERS.values(),
)

#: Writers that opened the store, and how each one ended: a clean close records the tree
#: size it left covered. Events beyond that, with every writer closed, were appended by
#: no writer (``samu audit verify`` reports them). Not evidence itself (no trigger): the
#: signed checkpoints are; this only tells a live or crashed writer from a forger.
_WRITERS = """
CREATE TABLE audit_writers (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    ended TEXT CHECK (ended IN ('clean', 'crashed')),
    covered INTEGER
) STRICT
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("records_0001_audit_trail", _AUDIT),
    ("records_0002_incidents", _INCIDENTS),
    ("records_0003_writers", _WRITERS),
]
