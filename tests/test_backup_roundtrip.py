"""Backups: online copy, encrypted archive, SHA-256 manifest, verify, restore."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main
from console.crypto import load_master_key, master_key_path
from console.records import (
    AuditContext,
    AuditEvent,
    BackupError,
    Store,
    create_backup,
    restore_backup,
    verify_backup,
    verify_trail,
)
from console.settings import load_settings

SAMU = str(Path(sys.executable).parent / "samu")
WHO = AuditContext(actor="local:tester", role="local-operator", terminal="test")


def populated(path: Path, events: int = 25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Store.open(path) as store:
        store.append_audit_many(
            [
                AuditEvent(
                    actor="user:a",
                    role="arm",
                    terminal="t",
                    action="case.create",
                    object=f"case:{i}",
                    detail={"secret-ish": "MARKER-PLAINTEXT"},
                )
                for i in range(events)
            ]
        )
    return path


def test_round_trip(tmp_path: Path) -> None:
    db = populated(tmp_path / "live" / "samu.db")
    key = load_master_key(db)
    assert master_key_path(db).stat().st_mode & 0o777 == 0o600
    with Store.open(db) as store:
        backup = create_backup(store, tmp_path / "backups", key, WHO)
        events = store.conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    files = sorted(p.name for p in backup.iterdir())
    assert files == ["database.sqlite.enc", "installation-key.pem.enc", "manifest.json"]
    for enc in backup.glob("*.enc"):
        assert b"MARKER-PLAINTEXT" not in enc.read_bytes()
        assert b"SQLite format 3" not in enc.read_bytes()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {f["name"] for f in manifest["files"]} == {
        "database.sqlite.enc",
        "installation-key.pem.enc",
    }
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert manifest["source"]["events"] == events  # including its own backup.create event

    check = verify_backup(backup, key)
    assert check.ok, check.problems

    target = tmp_path / "restored" / "samu.db"
    target.parent.mkdir()
    Path(f"{target}.key").write_bytes(key)
    os.chmod(f"{target}.key", 0o600)
    check, moved = restore_backup(backup, target, key, WHO)
    assert check.ok and moved == []
    report = verify_trail(target)
    assert report.exit_code == 0, report.verdict()
    conn = sqlite3.connect(target)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_events ORDER BY seq")]
    conn.close()
    assert actions[-2:] == ["backup.create", "backup.restore"]


def test_restore_refuses_to_overwrite_without_force_and_keeps_the_old_file(tmp_path: Path) -> None:
    db = populated(tmp_path / "samu.db")
    key = load_master_key(db)
    with Store.open(db) as store:
        backup = create_backup(store, tmp_path / "b", key, WHO)
        store.append_audit(AuditEvent(actor="a", role="r", terminal="t", action="after.backup"))
    with pytest.raises(BackupError, match="--force"):
        restore_backup(backup, db, key, WHO)
    _, moved = restore_backup(backup, db, key, WHO, force=True)
    assert any(".pre-restore-" in m for m in moved)
    assert any(".checkpoints.superseded-" in m for m in moved)
    assert verify_trail(db).exit_code == 0
    kept = next(Path(m) for m in moved if m.endswith(tuple("0123456789Z")) and "pre-restore" in m)
    conn = sqlite3.connect(kept)
    assert (
        conn.execute("SELECT count(*) FROM audit_events WHERE action = 'after.backup'").fetchone()[
            0
        ]
        == 1
    )
    conn.close()


def test_tampered_or_wrong_key_backups_fail(tmp_path: Path) -> None:
    db = populated(tmp_path / "samu.db")
    key = load_master_key(db)
    with Store.open(db) as store:
        backup = create_backup(store, tmp_path / "b", key, WHO)
    wrong = verify_backup(backup, os.urandom(32))
    assert not wrong.ok and "this backup needs master key" in wrong.problems[0]
    assert f"(of {db.name})" in wrong.problems[0]  # it says which key to look for

    enc = backup / "database.sqlite.enc"
    data = bytearray(enc.read_bytes())
    data[len(data) // 2] ^= 1
    enc.write_bytes(bytes(data))
    damaged = verify_backup(backup, key)
    assert not damaged.ok and "SHA-256" in damaged.problems[0]
    with pytest.raises(BackupError):
        restore_backup(backup, tmp_path / "new.db", key, WHO)
    assert not (tmp_path / "new.db").exists()

    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["source"]["events"] += 1
    (backup / "manifest.json").write_text(json.dumps(manifest))
    assert "authentication failed" in verify_backup(backup, key).problems[0]
    manifest["source"]["master_key_id"] = "0" * 16  # a forged hint: refused, names no key
    (backup / "manifest.json").write_text(json.dumps(manifest))
    assert not verify_backup(backup, key).ok


def test_master_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SAMU_MASTER_KEY reaches the key loader through the settings, and wins over a file."""
    key = os.urandom(32)
    monkeypatch.setenv("SAMU_MASTER_KEY", base64.b64encode(key).decode())
    settings = load_settings()
    assert load_master_key(tmp_path / "x.db", key=settings.master_key_text()) == key
    assert not Path(f"{tmp_path / 'x.db'}.key").exists()
    assert "SAMU_MASTER_KEY" not in repr(settings) and base64.b64encode(key).decode() not in repr(
        settings
    )
    monkeypatch.setenv("SAMU_MASTER_KEY", "too-short")
    with pytest.raises(Exception, match="32-byte key"):
        load_master_key(tmp_path / "x.db", key=load_settings().master_key_text())


def test_cli_create_verify_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = populated(tmp_path / "samu.db", events=5)

    def samu(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = samu("backup", "create", "--db", str(db), "--to", str(tmp_path / "b"))
    assert code == 0
    backup = Path(out.split("backup written: ")[1].strip())
    code, out, _ = samu("backup", "verify", "--db", str(db), str(backup))
    assert code == 0 and out.startswith("backup ok")
    code, _, err = samu("backup", "restore", "--db", str(db), str(backup))
    assert code == 2 and "--force" in err
    assert samu("backup", "restore", "--db", str(db), "--force", str(backup))[0] == 0
    assert samu("audit", "verify", "--db", str(db))[0] == 0
    (backup / "manifest.json").write_text("{}")
    real = subprocess.run(
        [SAMU, "backup", "verify", "--db", str(db), str(backup)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert real.returncode == 1, real.stderr
