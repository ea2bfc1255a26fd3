"""Store start-up: pragmas, STRICT tables, migrations, trigger and schema-version checks, keys."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.records import AuditEvent, KeyFileError, SchemaError, Store, StoreError
from console.records._migrate import applied_migrations
from console.records._schema import AUDIT_TRIGGERS, MIGRATIONS, PROTECTIVE_TRIGGERS


def open_store(path: Path, **kw: object) -> Store:
    return Store.open(path, **kw)  # type: ignore[arg-type]


def test_pragmas_and_strict_tables(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        conn = store.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        strict = {r[0] for r in conn.execute("SELECT name FROM pragma_table_list WHERE strict = 1")}
        for table in (
            "audit_events",
            "audit_checkpoints",
            "audit_keys",
            "audit_log",
            "incidents",
            "incident_notes",
            "schema_migrations",
        ):
            assert table in strict
        columns = [r[1] for r in conn.execute("PRAGMA table_info(audit_events)")]
        assert columns == [
            "seq",
            "time",
            "actor",
            "role",
            "terminal",
            "action",
            "object",
            "purpose",
            "outcome",
            "detail",
            "canonical",
            "leaf_hash",
            "chain_hash",
        ]
        assert store.db["audit_events"].count >= 1  # sqlite-utils view of the same file


def test_triggers_refuse_update_and_delete(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        for sql in (
            "UPDATE audit_events SET actor = 'x' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 1",
            "DELETE FROM audit_events",
            "UPDATE audit_checkpoints SET tree_size = 0",
            "DELETE FROM audit_keys",
        ):
            with (
                pytest.raises(sqlite3.IntegrityError, match="append-only"),
                store.transaction() as conn,
            ):
                conn.execute(sql)


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        first = applied_migrations(store.conn)
    with open_store(path) as store:
        assert applied_migrations(store.conn) == first
    assert [name for name, _ in MIGRATIONS] == first[: len(MIGRATIONS)]


@pytest.fixture
def fake_sets() -> Iterator[types.ModuleType]:
    module = types.ModuleType("tests_fake_migrations")
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


def test_a_failing_migration_leaves_nothing_behind(
    tmp_path: Path, fake_sets: types.ModuleType
) -> None:
    path = tmp_path / "s.db"
    sets = ("console.records._schema", fake_sets.__name__)
    fake_sets.MIGRATIONS = [  # type: ignore[attr-defined]
        ("fake_0001", "CREATE TABLE half (x INTEGER) STRICT; INSERT INTO nowhere VALUES (1);")
    ]
    with pytest.raises(StoreError, match="fake_0001 failed and was rolled back"):
        open_store(path, migration_sets=sets)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    assert "fake_0001" not in applied_migrations(conn)
    assert "records_0001_audit_trail" in applied_migrations(conn)  # earlier ones stayed
    conn.close()
    fake_sets.MIGRATIONS = [("fake_0001", "CREATE TABLE half (x INTEGER) STRICT;")]  # type: ignore[attr-defined]
    with open_store(path, migration_sets=sets) as store:
        assert "fake_0001" in applied_migrations(store.conn)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES ('records_9999_from_the_future', 'x', 'y')")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="newer than this program"):
        open_store(path)
    with pytest.raises(SchemaError):
        open_store(path, readonly=True)


@pytest.mark.parametrize("trigger", sorted(PROTECTIVE_TRIGGERS))
def test_start_up_refuses_a_missing_trigger(tmp_path: Path, trigger: str) -> None:
    path = tmp_path / "s.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"DROP TRIGGER {trigger}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match=trigger):
        open_store(path)


def test_start_up_refuses_a_weakened_trigger(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute(
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "WHEN 0 BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="audit_events_no_update"):
        open_store(path)
    assert "audit_events_no_update" in AUDIT_TRIGGERS


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        open_store(path)
    with pytest.raises(StoreError, match="not found"):
        open_store(tmp_path / "missing.db", readonly=True)
    with pytest.raises(StoreError, match="directory does not exist"):
        open_store(tmp_path / "no" / "such" / "dir.db")


def test_installation_key_file_is_private_and_bound_to_the_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        key_file = Path(f"{path}.installation-key")
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert store.public_key is not None
        assert key_file.read_bytes() not in path.read_bytes()
    other = tmp_path / "other.key"
    open_store(tmp_path / "o.db", installation_key_file=other).close()
    with pytest.raises(KeyFileError, match="does not belong to this database"):
        open_store(path, installation_key_file=other)
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        open_store(path)


def test_readonly_store_reads_but_never_writes(tmp_path: Path) -> None:
    from console.records import AuditEvent

    path = tmp_path / "s.db"
    open_store(path).close()
    with Store.open(path, readonly=True) as store:
        assert store.conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 1
        with pytest.raises(StoreError, match="read-only"):
            store.append_audit(AuditEvent(actor="a", role="r", terminal="t", action="x"))


def test_a_new_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    """Health data: no other local account may read the file, whatever the umask."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "records.db"
        store = Store.open(path)
        try:
            store.append_audit(
                AuditEvent(
                    actor="local:test",
                    role="admin",
                    terminal="t",
                    action="test.write",
                    object="x:1",
                    purpose="normal",
                    outcome="success",
                )
            )
            for f in (path, path.with_name(path.name + "-wal")):
                if f.exists():
                    assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        finally:
            store.close()
    finally:
        os.umask(old)


def test_a_new_database_uses_16k_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    from console.records._store import PAGE_SIZE

    new = tmp_path / "new.db"
    Store.open(new).close()
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("CREATE TABLE unrelated (x INTEGER)")  # the file now has its page size
    conn.close()
    Store.open(old).close()
    for path, expected in ((new, PAGE_SIZE), (old, 4096)):
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA page_size").fetchone()[0] == expected, path
        conn.close()


def test_a_store_that_fails_to_start_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_sign(self: Store) -> None:
        raise StoreError("cannot sign the recovery checkpoint")

    monkeypatch.setattr(Store, "_recover_checkpoints", cannot_sign)
    path = tmp_path / "s.db"
    with pytest.raises(StoreError, match="recovery checkpoint"):
        Store.open(path)
    # The writer connection was closed (the last one to close removes the WAL), and the
    # file opens again normally.
    assert not Path(f"{path}-wal").exists()
    monkeypatch.undo()
    Store.open(path).close()
