"""Tampers found by an adversarial review of ``samu audit verify``, kept as specifications.

Each builds a real trail, damages the file the way a forger with the sqlite3 shell (and
hashlib) would, and checks the verdict: the right kind at the right first seq, or
``intact`` for legitimate content, and never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from console.records import AuditEvent, Store, verify_trail
from console.records import _verify as verify_module
from console.records._audit import MAX_DETAIL_DEPTH, canonical_text
from console.records._schema import AUDIT_TRIGGERS, PROTECTIVE_TRIGGERS
from tests.support.tampering import verdict


def build(directory: Path, events: int = 28) -> Path:
    """``events`` events plus the key event: 29 rows, checkpoints at 1, 10, 20, 29."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "samu.db"
    with Store.open(db, checkpoint_every=10) as store:
        for i in range(events):
            store.append_audit(
                AuditEvent(
                    actor="user:a",
                    role="regulateur",
                    terminal="t",
                    action="a.read",
                    object=f"patient:{i}",
                    detail={"k": i},
                )
            )
    return db


def open_raw(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("DROP TRIGGER audit_events_no_delete")
    return conn


def restore_triggers(conn: sqlite3.Connection) -> None:
    for name in ("audit_events_no_update", "audit_events_no_delete"):
        conn.execute(AUDIT_TRIGGERS[name])


def leaf_of(canonical: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + canonical).digest()


def rechain(conn: sqlite3.Connection, start: int) -> None:
    """Recompute leaf and chain hashes from row ``start`` on, as a forger would."""
    (prev,) = conn.execute(
        "SELECT chain_hash FROM audit_events WHERE seq = ?", (start - 1,)
    ).fetchone()
    rows = conn.execute(
        "SELECT seq, canonical FROM audit_events WHERE seq >= ? ORDER BY seq", (start,)
    ).fetchall()
    for seq, canonical in rows:
        leaf = leaf_of(canonical)
        prev = hashlib.sha256(prev + leaf).digest()
        conn.execute(
            "UPDATE audit_events SET leaf_hash = ?, chain_hash = ? WHERE seq = ?", (leaf, prev, seq)
        )


def append_forged(conn: sqlite3.Connection, detail_column: str, canonical: bytes) -> int:
    """A row after the last one with correct hashes, no checkpoint covering it."""
    seq, chain = conn.execute(
        "SELECT seq, chain_hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    seq += 1
    leaf = leaf_of(canonical)
    conn.execute(
        "INSERT INTO audit_events VALUES (?, 't', 'user:a', 'r', 't', 'a.read', 'o', 'normal',"
        " 'success', ?, ?, ?, ?)",
        (seq, detail_column, canonical, leaf, hashlib.sha256(chain + leaf).digest()),
    )
    return seq


def append_legit(conn: sqlite3.Connection, **override: str) -> None:
    seq, chain = conn.execute(
        "SELECT seq, chain_hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    fields: dict[str, Any] = {
        "time": "2026-01-01T00:00:00+00:00",
        "actor": "user:a",
        "role": "r",
        "terminal": "t",
        "action": "a.read",
        "object": f"tail:{seq + 1}",
        "purpose": "normal",
        "outcome": "success",
        "detail": {"t": seq + 1},
        **override,
    }
    canonical = canonical_text({**fields, "seq": seq + 1}).encode()
    leaf = leaf_of(canonical)
    conn.execute(
        "INSERT INTO audit_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            seq + 1,
            *(fields[k] for k in ("time", "actor", "role", "terminal", "action", "object")),
            fields["purpose"],
            fields["outcome"],
            canonical_text(fields["detail"]),
            canonical,
            leaf,
            hashlib.sha256(chain + leaf).digest(),
        ),
    )


@pytest.mark.usefixtures("small_blocks")
def test_uncovered_tail_rows_renumbered_with_recomputed_hashes_are_a_deletion(
    tmp_path: Path,
) -> None:
    db = build(tmp_path)
    conn = open_raw(db)
    for _ in range(6):  # rows 30..35: no checkpoint signs them yet
        append_legit(conn)
    conn.execute("DELETE FROM audit_events WHERE seq = 32")
    conn.execute("UPDATE audit_events SET seq = seq - 1 WHERE seq > 32")
    rechain(conn, 32)
    restore_triggers(conn)
    conn.close()
    for workers in (1, 2):
        assert verdict(db, workers=workers) == (1, "deleted", 32)


@pytest.mark.parametrize(
    ("detail_column", "canonical_detail"),
    [
        ("[1,2]", "[1,2]"),  # not an object
        ("garbage", "garbage"),  # not JSON
        ('{"a":1,"a":2}', '{"a":1,"a":2}'),  # duplicate keys
        ('{"b":1,"a":2}', '{"b":1,"a":2}'),  # keys out of order
        ('{"a":1},"detail":{"b":2}', '{"a":1},"detail":{"b":2}'),  # a second detail key
    ],
)
@pytest.mark.usefixtures("small_blocks")
def test_an_uncovered_row_that_is_no_canonical_event_is_an_edit(
    tmp_path: Path, detail_column: str, canonical_detail: str
) -> None:
    db = build(tmp_path)
    conn = open_raw(db)
    canonical = verify_module._TEMPLATE % (
        "a.read", "user:a", canonical_detail, "o", "success", "normal", "r", 30, "t", "t"
    )  # fmt: skip
    seq = append_forged(conn, detail_column, canonical.encode())
    restore_triggers(conn)
    conn.close()
    assert seq == 30
    for workers in (1, 2):
        assert verdict(db, workers=workers) == (1, "edited", 30)


def test_a_row_naming_an_event_beyond_the_log_is_an_edit_not_a_deletion(tmp_path: Path) -> None:
    db = build(tmp_path)
    conn = open_raw(db)
    (canonical,) = conn.execute("SELECT canonical FROM audit_events WHERE seq = 5").fetchone()
    forged = canonical.replace(b'"seq":5,', b'"seq":70,')
    conn.execute(
        "UPDATE audit_events SET canonical = ?, leaf_hash = ? WHERE seq = 5",
        (forged, leaf_of(forged)),
    )
    conn.close()
    assert verdict(db) == (1, "edited", 5)


def test_a_changed_trail_id_does_not_make_the_outside_checkpoints_ignored(tmp_path: Path) -> None:
    db = build(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    dropped = ("audit_events_no_delete", "audit_checkpoints_no_delete", "audit_log_no_update")
    for name in dropped:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM audit_events WHERE seq > 15")
    conn.execute("DELETE FROM audit_checkpoints")
    conn.execute("UPDATE audit_log SET log_id = lower(hex(randomblob(16)))")
    for name in dropped:
        conn.execute(PROTECTIVE_TRIGGERS[name])
    conn.close()
    code, kind, seq = verdict(db)
    assert (code, seq) == (1, 16)
    assert kind in {"truncated", "rolled back"}


def test_a_second_trail_id_row_is_an_edit(tmp_path: Path) -> None:
    db = build(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO audit_log VALUES ('0', 'samu.audit.v1', 'x')")  # no trigger stops it
    conn.close()
    assert verdict(db) == (1, "edited", 1)


@pytest.mark.parametrize(
    "statement",
    [b"[" * 100_000, "abc", 10**15],
    ids=["deeply-nested", "text", "huge-integer"],
)
def test_a_forged_inside_checkpoint_is_a_bad_signature_not_a_crash(
    tmp_path: Path, statement: object
) -> None:
    db = build(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    if not isinstance(statement, bytes):  # only a table rebuilt without STRICT takes it
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = replace(sql, ') STRICT', ')') "
            "WHERE name = 'audit_checkpoints'"
        )
        conn.execute("PRAGMA writable_schema = OFF")
        conn.close()
        conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, root, chain_head, time, key_id, statement,"
        " signature, frontier) VALUES (3, zeroblob(32), zeroblob(32), 't', 'k', ?, x'', x'')",
        (statement,),
    )
    conn.close()
    assert verdict(db) == (1, "bad signature", 3)


def test_an_unreadable_outside_file_is_reported_not_waited_on_or_crashed_on(
    tmp_path: Path,
) -> None:
    db = build(tmp_path)
    outside = Path(f"{db}.checkpoints")
    (outside / "checkpoint-nested.json").write_text('{"a":' * 100_000)
    os.mkfifo(outside / "checkpoint-fifo.json")  # reading it would block for ever
    report = verify_trail(db)
    assert report.exit_code == 1
    assert report.first is not None and report.first.kind == "bad signature"


def test_details_nested_past_the_bound_are_refused_at_append(tmp_path: Path) -> None:
    detail: dict[str, Any] = {}
    node = detail
    for _ in range(MAX_DETAIL_DEPTH):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValueError, match="nested deeper"):
        AuditEvent(actor="user:a", role="r", terminal="t", action="x", detail=detail)


@pytest.mark.parametrize(
    "override",
    [
        {"outcome": "whatever"},
        {"time": "not a time"},
        {"time": "2026-01-01T00:00:00"},  # no offset: the writer always writes one
        {"purpose": "because"},
        {"actor": ""},
    ],
    ids=["outcome", "time", "naive-time", "purpose", "empty-actor"],
)
def test_an_uncovered_row_the_writer_could_not_have_written_is_an_edit(
    tmp_path: Path, override: dict[str, str]
) -> None:
    db = build(tmp_path)
    conn = open_raw(db)
    append_legit(conn, **override)  # canonical form, right hashes, but not a valid event
    restore_triggers(conn)
    conn.close()
    assert verdict(db) == (1, "edited", 30)
