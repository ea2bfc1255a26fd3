"""Defects found by using ``samu audit|backup`` as a new user would (issue 11): each one
failed before its fix."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli import EXIT_OK, EXIT_USAGE, main

PW = "correct horse battery staple"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "samu.db"
    monkeypatch.setenv("SAMU_PASSWORD", PW)
    assert main(["users", "add", "boss", "--role", "admin", "--db", str(path)]) == EXIT_OK
    monkeypatch.delenv("SAMU_PASSWORD")
    yield path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_named_checkpoint_directory_that_is_missing_is_a_failure(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["audit", "verify", "--db", str(db), "--checkpoint-dir", str(tmp_path / "gone")])
    out = capsys.readouterr().out
    assert code == EXIT_USAGE and "no such directory" in out


def test_only_the_last_level_of_a_directory_is_created(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "no" / "such" / "cp"
    assert (
        main(["audit", "checkpoint", "--db", str(db), "--checkpoint-dir", str(deep)]) == EXIT_USAGE
    )
    assert "only the last level is created" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    assert main(["backup", "create", "--db", str(db), "--to", str(deep)]) == EXIT_USAGE
    assert not (tmp_path / "no").exists()
    a_file = tmp_path / "f"
    a_file.write_text("")
    assert main(["backup", "create", "--db", str(db), "--to", str(a_file)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback" not in err


def test_outside_evidence_is_owner_only_whatever_the_umask(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0)
    try:
        assert main(["backup", "create", "--db", str(db), "--to", str(tmp_path / "bk")]) == EXIT_OK
        cp = tmp_path / "cp"
        assert (
            main(["audit", "checkpoint", "--db", str(db), "--checkpoint-dir", str(cp)]) == EXIT_OK
        )
    finally:
        os.umask(old)
    (backup,) = (tmp_path / "bk").iterdir()
    assert mode(tmp_path / "bk") == 0o700 and mode(backup) == 0o700 and mode(cp) == 0o700
    assert {mode(f) for f in backup.iterdir()} == {0o600}
    assert {mode(f) for f in cp.iterdir()} == {0o600}
    capsys.readouterr()
    monkeypatch.setenv("SAMU_MASTER_KEY_FILE", f"{db}.key")
    restored = tmp_path / "restored.db"
    assert main(["backup", "restore", str(backup), "--db", str(restored)]) == EXIT_OK
    assert mode(restored) == 0o600  # as the original


def test_backup_verify_says_which_key_it_needs(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["backup", "create", "--db", str(db), "--to", str(tmp_path / "bk")]) == EXIT_OK
    (backup,) = (tmp_path / "bk").iterdir()
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "bk")  # no ./samu.db.key here
    assert main(["backup", "verify", str(backup)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "this backup was made from samu.db" in err and "SAMU_MASTER_KEY_FILE" in err
    monkeypatch.setenv("SAMU_MASTER_KEY_FILE", f"{db}.key")
    assert main(["backup", "verify", str(backup)]) == EXIT_OK


def test_an_outside_file_pruned_while_verifying_is_not_a_forgery(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live writer keeps the newest outside files and deletes older ones: a file listed
    by verify and gone before it is read must not be judged forged."""
    from console.records import verify_trail
    from console.records._checkpoint import read_outside

    directory = Path(f"{db}.checkpoints")
    real_glob = Path.glob

    def glob_with_a_vanished_file(self: Path, pattern: str):  # type: ignore[no-untyped-def]
        yield from real_glob(self, pattern)
        if self == directory:
            yield directory / "checkpoint-000000000001-20260101000000000000-deadbeef.json"

    monkeypatch.setattr(Path, "glob", glob_with_a_vanished_file)
    assert all(f.checkpoint is not None for f in read_outside(directory))
    report = verify_trail(db)
    assert report.status == "intact", report.details()


def _forge(db: Path) -> None:
    """Append one event with correct (unkeyed) hashes, as anyone who can write the file
    can: no key and no trigger bypass are needed to append."""
    import sqlite3

    from console.records import AuditEvent
    from console.records._audit import append_rows

    conn = sqlite3.connect(db)
    with conn:
        append_rows(
            conn,
            [
                AuditEvent(
                    actor="drmartin",
                    role="regulateur",
                    terminal="t1",
                    action="clinical.read",
                    object="patient:p1",
                    purpose="normal",
                    outcome="success",
                    detail={},
                )
            ],
        )
    conn.close()


def test_events_appended_after_a_clean_close_are_never_signed(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.records import Store, StoreError, verify_trail

    _forge(db)
    report = verify_trail(db)
    assert report.status == "damaged" and report.uncovered == 1
    assert "appended after the last writer closed cleanly" in report.first.detail  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="no writer wrote them"):
        Store.open(db)  # the next writer refuses to sign over the forgery
    assert verify_trail(db).status == "damaged"  # and nothing was signed meanwhile


def test_a_running_writer_s_uncovered_tail_is_reported_not_damaged(db: Path) -> None:
    from console.records import AuditContext, Store, verify_trail

    with Store.open(db, checkpoint_every=1000) as store:
        store.append_audit(AuditContext.local().event("test.event", "x"))
        report = verify_trail(db)
        assert report.status == "intact" and report.uncovered == 1
        assert any("not yet covered by a signed checkpoint" in n for n in report.notes)
    assert verify_trail(db).uncovered == 0  # the clean close covered it


@pytest.mark.parametrize(
    "argv",
    [
        ["triage", "score", "{csv}"],
        ["protocols", "decode", "--format", "sbf1", "{csv}"],
        ["users", "list", "--db", "{db}"],
        ["audit", "verify", "--db", "{db}"],
    ],
)
def test_a_bad_configuration_is_one_line_for_every_command(
    argv: list[str],
    db: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csv = tmp_path / "v.csv"
    csv.write_text(
        "id,resp_rate,spo2,spo2_scale,on_oxygen,systolic_bp,heart_rate,consciousness,temperature\n"
    )
    args = [a.replace("{csv}", str(csv)).replace("{db}", str(db)) for a in argv]
    capsys.readouterr()
    assert main([*args, "--config", str(tmp_path / "absent.toml")]) == EXIT_USAGE
    assert "configuration file not found" in capsys.readouterr().err
    monkeypatch.setenv("SAMU_TRIAGE__FRESHNESS_S", "abc")
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "SAMU_TRIAGE__FRESHNESS_S" in err and len(err.strip().splitlines()) == 1
    # Infinity and a mistyped key are refused the same way, not silently dropped.
    monkeypatch.setenv("SAMU_TRIAGE__FRESHNESS_S", "1e400")
    assert main(args) == EXIT_USAGE
    assert "finite number" in capsys.readouterr().err
    monkeypatch.delenv("SAMU_TRIAGE__FRESHNESS_S")
    monkeypatch.setenv("SAMU_TRIAGE__FRESHNES_S", "600")
    assert main(args) == EXIT_USAGE
    assert "triage.freshnes_s" in capsys.readouterr().err
    monkeypatch.delenv("SAMU_TRIAGE__FRESHNES_S")
    typo = tmp_path / "typo.toml"
    typo.write_text("[triage]\nfreshnes_s = 600\n")
    assert main([*args, "--config", str(typo)]) == EXIT_USAGE
    assert "triage.freshnes_s" in capsys.readouterr().err


def test_verify_with_a_broker_says_what_its_retained_checkpoint_showed(
    db: Path, mosquitto: object, capsys: pytest.CaptureFixture[str]
) -> None:
    url = mosquitto.url  # type: ignore[attr-defined]
    assert main(["audit", "verify", "--db", str(db), "--mqtt", url]) == EXIT_OK
    assert (
        "no retained checkpoint on samu/v1/centre/samu075/audit/checkpoint"
        in capsys.readouterr().out
    )
    assert main(["audit", "checkpoint", "--db", str(db), "--mqtt", url]) == EXIT_OK
    capsys.readouterr()
    assert main(["audit", "verify", "--db", str(db), "--mqtt", url]) == EXIT_OK
    out = capsys.readouterr().out
    assert "retained checkpoint on samu/v1/centre/samu075/audit/checkpoint at" in out
    assert "covers" in out and "judged with the outside checkpoints" in out
