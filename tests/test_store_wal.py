"""The WAL is copied back into the database file by a thread, not in the writer's commits.

A real SQLite file, a real thread: waits are on conditions with a deadline, never fixed
sleeps.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from console.records import AuditEvent, Store
from console.records._store import AUTOCHECKPOINT_PAGES
from console.records._wal import WalCheckpointer


def events(count: int, start: int = 0) -> list[AuditEvent]:
    return [
        AuditEvent(
            actor="user:wal",
            role="regulateur",
            terminal="regul-01",
            action="observation.read",
            object=f"patient:{start + i}",
            detail={"padding": "x" * 400},
        )
        for i in range(count)
    ]


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def autocheckpoint(store: Store) -> int:
    return int(store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_the_thread_copies_the_log_back_while_the_writer_never_does(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path, background_checkpoints=False) as store:
        assert autocheckpoint(store) == 0  # the writer's commits never copy the log back
        assert store._wal is not None and store._wal.alive
        before = path.stat().st_size
        store.append_audit_many(events(2000))  # ~1 MB: all of it in the WAL first
        wal = store._wal
        wait_for(lambda: wal.checkpoints >= 1 and path.stat().st_size > before + 500_000)


def test_without_the_thread_the_writer_checkpoints_as_sqlite_does(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db", wal_checkpoint_thread=False) as store:
        assert store._wal is None
        assert autocheckpoint(store) == AUTOCHECKPOINT_PAGES


def test_if_the_thread_stops_the_writer_checkpoints_again(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db", background_checkpoints=False) as store:
        assert store._wal is not None
        store._wal.close()  # as if it had died
        store.append_audit_many(events(10))  # the next commit notices
        assert store._wal is None
        assert autocheckpoint(store) == AUTOCHECKPOINT_PAGES


def test_a_log_past_the_bound_is_restarted_so_it_cannot_grow_without_limit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with Store.open(path, background_checkpoints=False, wal_checkpoint_thread=False) as store:
        store.conn.execute("PRAGMA wal_autocheckpoint = 0")
        store.append_audit_many(events(2000))
        checkpointer = WalCheckpointer(path, restart_frames=16)
        try:
            _, frames, copied = checkpointer.run_once()
            assert frames >= 16 and copied == frames  # all copied back, log restarted
            store.append_audit_many(events(10, start=2000))  # the next write starts afresh
            _, frames_after, _ = checkpointer.run_once()
            assert 0 < frames_after < frames
        finally:
            checkpointer.close()


def test_closing_the_store_leaves_no_log_behind(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path, background_checkpoints=False) as store:
        store.append_audit_many(events(500))
    assert not Path(f"{path}-wal").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 501
    conn.close()
