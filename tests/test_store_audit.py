"""Appending to the trail: atomicity with the caller's change, checkpoints, batching writer."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from console.records import AuditEvent, AuditWriter, Store, StoreError, verify_trail
from console.records._checkpoint import read_outside, verify_signature
from console.records._merkle import merkle_root


def ev(i: int = 0, **kw: object) -> AuditEvent:
    fields: dict[str, object] = {
        "actor": "user:jdupont",
        "role": "regulateur",
        "terminal": "regul-01",
        "action": "observation.read",
        "object": f"patient:{i}",
        "detail": {"i": i},
    }
    fields.update(kw)
    return AuditEvent(**fields)  # type: ignore[arg-type]


def count(store: Store) -> int:
    return int(store.conn.execute("SELECT count(*) FROM audit_events").fetchone()[0])


def test_seq_counts_from_one_and_the_key_is_the_first_event(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        first = store.conn.execute("SELECT seq, action FROM audit_events").fetchone()
        assert tuple(first) == (1, "audit.key.add")
        assert store.append_audit(ev()) == 2
        assert store.append_audit_many([ev(1), ev(2), ev(3)]) == [3, 4, 5]
        assert store.append_audit_many([]) == []


def test_an_audit_record_commits_or_rolls_back_with_the_change(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        before = count(store)
        with pytest.raises(RuntimeError), store.transaction() as conn:
            conn.execute(
                "INSERT INTO incidents (kind, category, severity, title, status, opened_at, "
                "opened_by, updated_at) VALUES ('technical','other','low','t','open','x','y','z')"
            )
            store.append_audit(ev(), conn=conn)
            raise RuntimeError("the change failed")
        assert count(store) == before
        assert store.conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0
        with store.transaction() as conn:
            with pytest.raises(ValueError), store.transaction() as inner:  # a savepoint
                store.append_audit(ev(1), conn=inner)
                raise ValueError
            seq = store.append_audit(ev(2), conn=conn)
        assert count(store) == before + 1
        row = store.conn.execute("SELECT object FROM audit_events WHERE seq = ?", (seq,)).fetchone()
        assert row[0] == "patient:2"
        with pytest.raises(StoreError, match="no open transaction"):
            store.append_audit(ev(), conn=store.conn)
    assert verify_trail(tmp_path / "s.db").status == "intact"


def test_checkpoints_every_n_events_and_on_close(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path, checkpoint_every=5) as store:
        for i in range(12):
            store.append_audit(ev(i))
        sizes = [r[0] for r in store.conn.execute("SELECT tree_size FROM audit_checkpoints")]
        assert sizes == [1, 5, 10]  # 1: the key event, covered at start-up
    conn = sqlite3.connect(path)
    sizes = [r[0] for r in conn.execute("SELECT tree_size FROM audit_checkpoints")]
    leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf_hash FROM audit_events ORDER BY seq")]
    roots = {
        r[0]: bytes(r[1]) for r in conn.execute("SELECT tree_size, root FROM audit_checkpoints")
    }
    key = bytes(conn.execute("SELECT public_key FROM audit_keys").fetchone()[0])
    conn.close()
    assert sizes == [1, 5, 10, 13]  # closing covered the last three
    for size, root in roots.items():
        assert merkle_root(leaves[:size]) == root
    outside = read_outside(Path(f"{path}.checkpoints"))
    assert sorted(f.checkpoint.tree_size for f in outside if f.checkpoint) == sizes
    for f in outside:
        assert f.checkpoint is not None
        assert verify_signature(key, f.checkpoint.statement_bytes(), f.checkpoint.signature)
        doc = json.loads(f.path.read_text())
        assert doc["public_key"] == key.hex()
    assert not list(Path(f"{path}.checkpoints").glob(".*"))  # no temporary file left


def test_forced_checkpoint_and_custom_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    with Store.open(tmp_path / "s.db", checkpoint_dir=elsewhere) as store:
        heard: list[int] = []
        store.add_checkpoint_listener(lambda c: heard.append(c.tree_size))
        store.add_checkpoint_listener(lambda c: 1 / 0)  # a broken listener changes nothing
        store.append_audit(ev())
        cp = store.checkpoint()
        assert heard == [2]
        assert cp is not None and cp.tree_size == 2
        assert store.checkpoint(force=False) is None  # nothing new
        assert (elsewhere / cp.file_name()).is_file()
    assert not Path(f"{tmp_path / 's.db'}.checkpoints").exists()
    report = verify_trail(tmp_path / "s.db", elsewhere)
    assert report.status == "intact" and report.outside_checkpoints == 2


def test_tick_takes_the_checkpoint_only_when_due(tmp_path: Path) -> None:
    """The owner's loop calls ``tick()``; it signs once the interval has passed."""
    with Store.open(tmp_path / "s.db", checkpoint_interval_s=3600) as store:
        store.append_audit(ev())
        assert store.tick() is None  # not due yet: the open checkpoint is fresh
        store._last_checkpoint_mono -= 3601  # an hour later
        taken = store.tick()
        assert taken is not None and taken.tree_size == 2
        assert store.fetchone("SELECT max(tree_size) FROM audit_checkpoints")[0] == 2
        store._last_checkpoint_mono -= 3601
        assert store.tick() is None  # nothing new to cover
    with Store.open(tmp_path / "s.db", readonly=True) as ro:
        assert ro.tick() is None  # a reader never signs


def test_batching_writer_resolves_every_future_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store, AuditWriter(store) as writer:
        futures = []
        lock = threading.Lock()

        def produce(k: int) -> None:
            for i in range(200):
                f = writer.submit(ev(k * 1000 + i))
                with lock:
                    futures.append(f)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seqs = sorted(f.result(timeout=60) for f in futures)
        assert seqs == list(range(2, 802))
    assert verify_trail(path).status == "intact"


def test_no_checkpoint_is_signed_over_a_gap(tmp_path: Path) -> None:
    """Events not yet covered by a checkpoint are re-read; a gap there refuses to sign."""
    from console.records._schema import AUDIT_TRIGGERS

    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.append_audit_many([ev(i) for i in range(5)])
    conn = sqlite3.connect(path)
    for name in ("audit_events_no_delete", "audit_checkpoints_no_delete"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM audit_checkpoints WHERE tree_size > 1")
    conn.execute("DELETE FROM audit_events WHERE seq = 3")
    for name in ("audit_events_no_delete", "audit_checkpoints_no_delete"):
        conn.execute(AUDIT_TRIGGERS[name])  # hide the tamper
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="gap after seq 2"):
        Store.open(path)
    report = verify_trail(path)
    assert (report.first.kind, report.first.seq) == ("deleted", 3)  # type: ignore[union-attr]
