"""Named, transactional, idempotent migrations and the start-up schema checks.

The store applies ordered migration *sets*, each a module exposing
``MIGRATIONS: list[tuple[str, str]]`` and optionally ``PROTECTIVE_TRIGGERS`` (trigger
name -> CREATE TRIGGER text, or just the table name when only existence is checked).
A migration runs in one transaction together with its row in ``schema_migrations``:
either both land or neither does, so a crash mid-migration leaves the previous schema.
The row is inserted *first* inside the transaction; its primary key makes two processes
racing to migrate the same file harmless (the loser's transaction fails and rolls back,
then it sees the migration applied).
"""

from __future__ import annotations

import hashlib
import importlib
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from console.records._errors import SchemaError, StoreError

#: Migration sets in the order they are applied (records first: others reference it).
#: Named by string so the store applies the whole schema of one database whoever opens
#: it (a reader refuses a file with pending migrations), without importing the layers
#: above it.
MIGRATION_SETS: tuple[str, ...] = (
    "console.records._schema",
    "console.auth._schema",
    "console.identity._schema",
    "console.ingest._schema",
    "console.cases._schema",
)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY NOT NULL,
    applied_at TEXT NOT NULL,
    sha256 TEXT NOT NULL
) STRICT
"""

Migration = tuple[str, str]


def load_migrations(modules: Sequence[str] = MIGRATION_SETS) -> list[Migration]:
    """All migrations of ``modules`` in order; names must be unique across sets."""
    out: list[Migration] = []
    seen: set[str] = set()
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name, sql in getattr(module, "MIGRATIONS", []):
            if name in seen:
                raise StoreError(f"migration name {name!r} is defined twice ({module_name})")
            seen.add(name)
            out.append((name, sql))
    return out


def load_protective_triggers(modules: Sequence[str] = MIGRATION_SETS) -> dict[str, str]:
    """Trigger name -> expected CREATE TRIGGER text (or table name) across the sets."""
    out: dict[str, str] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        out.update(getattr(module, "PROTECTIVE_TRIGGERS", {}))
    return out


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names recorded in ``schema_migrations`` (empty for a fresh file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]


def check_schema_version(conn: sqlite3.Connection, migrations: Iterable[Migration]) -> None:
    """Refuse a database carrying migrations this code does not know (a newer schema)."""
    known = {name for name, _ in migrations}
    unknown = [name for name in applied_migrations(conn) if name not in known]
    if unknown:
        raise SchemaError(
            "database schema is newer than this program (unknown migrations: "
            + ", ".join(unknown)
            + "); upgrade samu before opening it"
        )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[str]:
    """Apply the pending migrations, each in its own transaction; return their names.

    ``conn`` must be in autocommit mode (``isolation_level=None``): Python's
    ``executescript`` would otherwise commit behind our back.
    """
    conn.execute(_BOOKKEEPING)
    check_schema_version(conn, migrations)
    done = set(applied_migrations(conn))
    applied: list[str] = []
    for name, sql in migrations:
        if name in done:
            continue
        digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        script = (
            "BEGIN IMMEDIATE;\n"
            "INSERT INTO schema_migrations (name, applied_at, sha256) VALUES ("
            f"{_literal(name)}, {_literal(now)}, {_literal(digest)});\n"
            f"{sql}\n;\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if name in applied_migrations(conn):  # another process won the race
                continue
            raise StoreError(f"migration {name} failed and was rolled back: {exc}") from exc
        applied.append(name)
    return applied


def _normalise(sql: str | None) -> str:
    return " ".join((sql or "").replace(";", " ").split()).lower()


def missing_triggers(conn: sqlite3.Connection, expected: dict[str, str]) -> list[str]:
    """Names of protective triggers that are absent or whose text was changed.

    ``expected`` maps a trigger name to its CREATE TRIGGER text; a value without
    whitespace is taken as the table name and only existence on that table is checked.
    """
    rows = conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
    present = {name: (table, sql) for name, table, sql in rows}
    bad: list[str] = []
    for name, spec in expected.items():
        found = present.get(name)
        if found is None:
            bad.append(name)
        elif " " in spec.strip():
            if _normalise(found[1]) != _normalise(spec):
                bad.append(name)
        elif found[0] != spec:
            bad.append(name)
    return bad


def check_protective_triggers(conn: sqlite3.Connection, expected: dict[str, str]) -> None:
    """Refuse to start when a protective trigger is missing or altered."""
    bad = missing_triggers(conn, expected)
    if bad:
        raise SchemaError(
            "protective trigger(s) missing or altered: "
            + ", ".join(bad)
            + "; the audit trail may have been tampered with - run `samu audit verify` "
            "and restore from a verified backup"
        )
