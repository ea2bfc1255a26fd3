"""``samu audit verify`` against tampering done the way the outside checker does it.

Each test edits the database file with the sqlite3 module (dropping the protective
triggers first, as a tamperer must), then checks the verdict: exit code, damage kind and
first bad sequence number.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given
from hypothesis import strategies as st

from console.cli import main
from console.records import AuditEvent, Store, verify_trail
from console.records import _verify as verify_module
from console.records._checkpoint import canonical_bytes
from console.records._schema import AUDIT_TRIGGERS
from tests.support.tampering import DROP, tamper, verdict

SAMU = str(Path(sys.executable).parent / "samu")
N_EVENTS = 40  # plus the key event at seq 1
COLUMNS = (
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
)


def make_trail(directory: Path, events: int = N_EVENTS, every: int = 10) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "samu.db"
    with Store.open(path, checkpoint_every=every) as store:
        for i in range(events):
            purpose = 'break-glass: "arrêt" cardiaque' if i == 7 else "normal"
            store.append_audit(
                AuditEvent(
                    actor=f"user:u{i % 3}",
                    role="regulateur",
                    terminal="regul-01",
                    action="observation.read",
                    object=f"patient:{i}",
                    purpose=purpose,
                    detail={"case": f"c-{i}", "n": i, "note": "é\\t" if i == 9 else "x"},
                )
            )
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_trail(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def trail(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the pristine trail with its outside checkpoints and key."""
    target = tmp_path / "t"
    shutil.copytree(pristine.parent, target)
    return target / "samu.db"


def test_an_intact_trail_verifies(trail: Path) -> None:
    report = verify_trail(trail)
    assert report.exit_code == 0, report.verdict()
    assert report.verdict().startswith(f"intact: {N_EVENTS + 1} events")
    assert report.checkpoints == report.outside_checkpoints == 6  # 1, 10, 20, 30, 40, 41
    assert not Path(f"{trail}-wal").exists() and not Path(f"{trail}-shm").exists()


def test_edit_a_field(trail: Path) -> None:
    tamper(trail, *DROP, "UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 17")
    report = verify_trail(trail)
    assert (report.exit_code, report.first.kind, report.first.seq) == (1, "edited", 17)  # type: ignore[union-attr]
    assert report.verdict() == "damaged: edited at seq 17"
    assert report.missing_triggers == ["audit_events_no_update", "audit_events_no_delete"]


def test_delete_a_middle_row(trail: Path) -> None:
    tamper(trail, *DROP, "DELETE FROM audit_events WHERE seq = 23")
    assert verdict(trail) == (1, "deleted", 23)


def test_delete_the_tail(trail: Path) -> None:
    tamper(trail, *DROP, "DELETE FROM audit_events WHERE seq > 35")
    assert verdict(trail) == (1, "truncated", 36)


def test_delete_the_tail_without_outside_checkpoints(trail: Path) -> None:
    tamper(trail, *DROP, "DELETE FROM audit_events WHERE seq > 35")
    shutil.rmtree(f"{trail}.checkpoints")
    assert verdict(trail) == (1, "truncated", 36)  # the database's own checkpoints


def test_swap_two_rows(trail: Path) -> None:
    tamper(
        trail,
        *DROP,
        "UPDATE audit_events SET seq = -1 WHERE seq = 12",
        "UPDATE audit_events SET seq = 12 WHERE seq = 30",
        "UPDATE audit_events SET seq = 30 WHERE seq = -1",
    )
    assert verdict(trail) == (1, "reordered", 12)


def test_swap_two_adjacent_rows_by_content(trail: Path) -> None:
    cols = ", ".join(COLUMNS[1:])
    tamper(
        trail,
        *DROP,
        "CREATE TEMP TABLE t AS SELECT * FROM audit_events WHERE seq IN (5, 6)",
        f"UPDATE audit_events SET ({cols}) = (SELECT {cols} FROM t WHERE t.seq = 6) WHERE seq = 5",
        f"UPDATE audit_events SET ({cols}) = (SELECT {cols} FROM t WHERE t.seq = 5) WHERE seq = 6",
    )
    assert verdict(trail) == (1, "reordered", 5)


def test_renumbering_after_a_deletion_is_still_a_deletion(trail: Path) -> None:
    tamper(
        trail,
        *DROP,
        "DELETE FROM audit_events WHERE seq = 20",
        "UPDATE audit_events SET seq = seq - 1 WHERE seq > 20",
    )
    assert verdict(trail) == (1, "deleted", 20)


def test_drop_a_trigger_and_edit(trail: Path) -> None:
    tamper(
        trail,
        "DROP TRIGGER audit_events_no_update",
        "UPDATE audit_events SET detail = '{}' WHERE seq = 8",
    )
    report = verify_trail(trail)
    assert (report.first.kind, report.first.seq) == ("edited", 8)  # type: ignore[union-attr]
    assert report.missing_triggers == ["audit_events_no_update"]


def test_a_dropped_trigger_alone_is_reported(trail: Path) -> None:
    tamper(trail, "DROP TRIGGER audit_events_no_delete")
    report = verify_trail(trail)
    assert report.exit_code == 1 and report.first is None
    assert report.verdict().startswith(
        "damaged: protective triggers missing (audit_events_no_delete)"
    )


def test_an_older_copy_restored(tmp_path: Path) -> None:
    path = make_trail(tmp_path / "live", events=15, every=5)
    shutil.copy(path, tmp_path / "old.db")
    with Store.open(path) as store:
        for i in range(6):
            store.append_audit(AuditEvent(actor="a", role="r", terminal="t", action=f"x{i}"))
    shutil.copy(tmp_path / "old.db", path)
    assert verdict(path) == (1, "rolled back", 17)
    # the same copy judged without the outside directory cannot be caught: it is consistent
    assert verdict(path, checkpoint_dir=tmp_path / "empty")[0] == 0


def test_an_older_copy_that_went_on_diverging(tmp_path: Path) -> None:
    path = make_trail(tmp_path / "live", events=15, every=5)
    shutil.copy(path, tmp_path / "old.db")
    for actor in ("honest", "forger"):
        with Store.open(path, checkpoint_every=5) as store:
            for i in range(8):
                store.append_audit(AuditEvent(actor=actor, role="r", terminal="t", action=f"x{i}"))
        if actor == "honest":
            shutil.copy(tmp_path / "old.db", path)
    code, kind, seq = verdict(path)
    assert (code, kind) == (1, "rolled back")
    assert seq == 17  # first event no outside checkpoint vouches for


def test_a_checkpoint_signed_with_another_key(trail: Path) -> None:
    conn = sqlite3.connect(trail)
    row = conn.execute(
        "SELECT tree_size, root, chain_head, time, key_id, statement, frontier "
        "FROM audit_checkpoints WHERE tree_size = 30"
    ).fetchone()
    forged = Ed25519PrivateKey.generate().sign(row[5])
    conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, root, chain_head, time, key_id, "
        "statement, signature, frontier) VALUES (?,?,?,?,?,?,?,?)",
        (*row[:6], forged, row[6]),
    )
    conn.commit()
    conn.close()
    assert verdict(trail) == (1, "bad signature", 30)


def test_an_outside_checkpoint_signed_with_another_key(trail: Path) -> None:
    directory = Path(f"{trail}.checkpoints")
    source = sorted(directory.glob("*.json"))[2]
    doc = json.loads(source.read_text())
    other = Ed25519PrivateKey.generate()
    doc["signature"] = other.sign(canonical_bytes(doc["statement"])).hex()
    (directory / "checkpoint-forged.json").write_text(json.dumps(doc))
    assert verdict(trail) == (1, "bad signature", doc["statement"]["tree_size"])


def test_a_rewritten_trail_with_recomputed_hashes_is_caught_by_its_checkpoints(trail: Path) -> None:
    """The strongest row edit (every hash recomputed) cannot re-sign the checkpoints."""
    import hashlib

    conn = sqlite3.connect(trail)
    for sql in DROP:
        conn.execute(sql)
    rows = conn.execute("SELECT seq, canonical FROM audit_events ORDER BY seq").fetchall()
    chain = bytes(32)
    for seq, raw in rows:
        canonical = bytes(raw)
        if seq == 25:  # event i=23: actor user:u2
            canonical = canonical.replace(b'"actor":"user:u2"', b'"actor":"user:zz"')
            conn.execute("UPDATE audit_events SET actor = 'user:zz' WHERE seq = 25")
        leaf = hashlib.sha256(b"\x00" + canonical).digest()
        chain = hashlib.sha256(chain + leaf).digest()
        conn.execute(
            "UPDATE audit_events SET canonical = ?, leaf_hash = ?, chain_hash = ? WHERE seq = ?",
            (canonical, leaf, chain, seq),
        )
    conn.commit()
    conn.close()
    assert verdict(trail) == (1, "edited", 21)  # first event after the last good checkpoint (20)


# --- any byte of any row ----------------------------------------------------------------------


@given(
    row=st.integers(1, N_EVENTS + 1),
    column=st.sampled_from(COLUMNS),
    position=st.integers(0, 10_000),
    mask=st.integers(1, 255),
)
def test_flip_any_byte_of_any_row(
    pristine: Path, row: int, column: str, position: int, mask: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samu.db"
        shutil.copy(pristine, path)
        conn = sqlite3.connect(path)
        for sql in DROP:
            conn.execute(sql)
        if column == "seq":
            raw = bytearray(row.to_bytes(8, "big", signed=True))
            raw[position % 8] ^= mask
            new = int.from_bytes(raw, "big", signed=True)
            assume(not 1 <= new <= N_EVENTS + 1)  # a collision is refused by the primary key
            conn.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (new, row))
        else:
            value = bytearray(
                conn.execute(
                    f"SELECT CAST({column} AS BLOB) FROM audit_events WHERE seq = ?", (row,)
                ).fetchone()[0]
            )
            assume(value)
            value[position % len(value)] ^= mask
            cast = "BLOB" if column in ("canonical", "leaf_hash", "chain_hash") else "TEXT"
            conn.execute(
                f"UPDATE audit_events SET {column} = CAST(? AS {cast}) WHERE seq = ?",
                (bytes(value), row),
            )
        conn.commit()
        conn.close()
        assert verdict(path) == (1, "edited", row)


@given(
    kind=st.sampled_from(["swap", "delete", "truncate"]),
    a=st.integers(1, N_EVENTS + 1),
    b=st.integers(1, N_EVENTS + 1),
)
def test_swap_delete_or_truncate_anywhere(pristine: Path, kind: str, a: int, b: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(pristine.parent, Path(tmp) / "t")
        path = Path(tmp) / "t" / "samu.db"
        if kind == "swap":
            assume(a != b)
            lo, hi = sorted((a, b))
            tamper(
                path,
                *DROP,
                f"UPDATE audit_events SET seq = -5 WHERE seq = {lo}",
                f"UPDATE audit_events SET seq = {lo} WHERE seq = {hi}",
                f"UPDATE audit_events SET seq = {hi} WHERE seq = -5",
            )
            expected = (1, "reordered", lo)
        elif kind == "delete":
            assume(a <= N_EVENTS)  # deleting the last row is a truncation
            tamper(path, *DROP, f"DELETE FROM audit_events WHERE seq = {a}")
            expected = (1, "deleted", a)
        else:
            tamper(path, *DROP, f"DELETE FROM audit_events WHERE seq >= {a}")
            expected = (1, "truncated", a)
        assert verdict(path) == expected


# --- the parallel path ------------------------------------------------------------------------


def test_parallel_blocks_verify_checkpoint_roots_and_find_damage(
    trail: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "BLOCK_BITS", 3)
    monkeypatch.setattr(verify_module, "BLOCK", 8)
    for workers in (1, 2):
        report = verify_trail(trail, workers=workers)
        assert report.exit_code == 0, report.verdict()
        assert report.checkpoints == 6
    tamper(trail, *DROP, "UPDATE audit_events SET role = 'admin' WHERE seq = 33")
    assert verdict(trail, workers=2) == (1, "edited", 33)


# --- through the real command line --------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAMU, "audit", "verify", *args], capture_output=True, text=True, timeout=120, check=False
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["audit", "verify", *args])
    return code, capsys.readouterr().out


def test_cli_exit_codes(trail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = run_cli("--db", str(trail))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("intact: ")

    tamper(trail, *DROP, "DELETE FROM audit_events WHERE seq = 9")
    bad = run_cli("--db", str(trail))
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == "damaged: deleted at seq 9"
    code, out = in_process(capsys, "--db", str(trail), "--json")
    as_json = json.loads(out)
    assert (code, as_json["status"], as_json["kind"], as_json["seq"]) == (
        1,
        "damaged",
        "deleted",
        9,
    )

    missing = run_cli("--db", str(tmp_path / "missing.db"))
    assert missing.returncode == 2 and missing.stdout.startswith("unusable: ")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00not a database" * 512)
    assert in_process(capsys, "--db", str(junk))[0] == 2
    empty = tmp_path / "other.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    code, out = in_process(capsys, "--db", str(empty))
    assert code == 2 and "no audit_events table" in out


def test_cli_checkpoint_dir_option(
    trail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = tmp_path / "elsewhere"
    shutil.move(f"{trail}.checkpoints", moved)
    tamper(
        trail,
        *DROP,
        "DROP TRIGGER audit_checkpoints_no_delete",
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_events WHERE seq > 30",
        *(
            AUDIT_TRIGGERS[name]
            for name in (
                "audit_events_no_update",
                "audit_events_no_delete",
                "audit_checkpoints_no_delete",
            )
        ),
    )
    assert in_process(capsys, "--db", str(trail))[0] == 0  # nothing left to compare with
    code, out = in_process(capsys, "--db", str(trail), "--checkpoint-dir", str(moved))
    assert code == 1
    assert out.splitlines()[0] == "damaged: rolled back at seq 31"


def test_an_unreadable_outside_checkpoint_is_reported(trail: Path) -> None:
    (Path(f"{trail}.checkpoints") / "checkpoint-garbage.json").write_text("{not json")
    report = verify_trail(trail)
    assert report.exit_code == 1
    assert report.verdict() == "damaged: bad signature"
    assert "checkpoint-garbage.json" in report.first.detail  # type: ignore[union-attr]


def test_a_replaced_installation_key_file_is_reported(trail: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key_file = Path(f"{trail}.installation-key")
    key_file.unlink()
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    assert verdict(trail)[:2] == (1, "bad signature")


# --- review regressions -----------------------------------------------------------------------


def test_tail_and_its_inside_checkpoints_deleted_in_place_is_a_truncation(trail: Path) -> None:
    """Only the outside directory still covers the deleted tail; the dropped triggers
    show the file was edited in place, not an older copy put back."""
    tamper(
        trail,
        *DROP,
        "DROP TRIGGER audit_checkpoints_no_delete",
        "DELETE FROM audit_events WHERE seq > 25",
        "DELETE FROM audit_checkpoints WHERE tree_size > 25",
    )
    assert verdict(trail) == (1, "truncated", 26)


def test_rewrite_with_inside_checkpoints_deleted_is_an_edit(trail: Path) -> None:
    import hashlib

    conn = sqlite3.connect(trail)
    for sql in (*DROP, "DROP TRIGGER audit_checkpoints_no_delete"):
        conn.execute(sql)
    conn.execute("DELETE FROM audit_checkpoints")
    rows = conn.execute("SELECT seq, canonical FROM audit_events ORDER BY seq").fetchall()
    chain = bytes(32)
    for seq, raw in rows:
        canonical = bytes(raw)
        if seq == 25:
            canonical = canonical.replace(b'"actor":"user:u2"', b'"actor":"user:zz"')
            conn.execute("UPDATE audit_events SET actor = 'user:zz' WHERE seq = 25")
        leaf = hashlib.sha256(b"\x00" + canonical).digest()
        chain = hashlib.sha256(chain + leaf).digest()
        conn.execute(
            "UPDATE audit_events SET canonical = ?, leaf_hash = ?, chain_hash = ? WHERE seq = ?",
            (canonical, leaf, chain, seq),
        )
    conn.commit()
    conn.close()
    assert verdict(trail) == (1, "edited", 21)  # vouched for by the outside checkpoint at 20


@pytest.mark.parametrize("column_size", [2, 25, 999])
def test_an_edited_checkpoint_size_is_reported_at_the_lower_size(
    trail: Path, column_size: int
) -> None:
    tamper(
        trail,
        "DROP TRIGGER audit_checkpoints_no_update",
        f"UPDATE audit_checkpoints SET tree_size = {column_size} WHERE tree_size = 20",
    )
    assert verdict(trail) == (1, "bad signature", min(column_size, 20))


def test_an_unreadable_outside_checkpoint_is_reported_at_the_size_in_its_name(
    trail: Path,
) -> None:
    directory = Path(f"{trail}.checkpoints")
    victim = next(p for p in sorted(directory.glob("*.json")) if "-000000000030-" in p.name)
    victim.write_text("{not json")
    assert verdict(trail) == (1, "bad signature", 30)
