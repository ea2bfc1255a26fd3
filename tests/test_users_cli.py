"""`samu users|retention|rights` as the local operator: exit codes, output, audit, secrets."""

from __future__ import annotations

import base64
import getpass
import json
import os
import stat
import sys
from datetime import date
from pathlib import Path

import pytest

from console.cli import EXIT_OK, EXIT_USAGE, main

PW = "correct horse battery staple"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SAMU_MASTER_KEY", "SAMU_MASTER_KEY_FILE", "SAMU_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "samu.db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def events(db: Path, action: str) -> list[tuple]:
    from console.records import Store

    with Store.open(db) as store:
        return store.db.execute(
            "SELECT actor, role, object, outcome, detail FROM audit_events WHERE action = ?",
            (action,),
        ).fetchall()


def add(capsys, monkeypatch, db: Path, user: str, *roles: str) -> tuple[int, str, str]:
    monkeypatch.setenv("SAMU_PASSWORD", PW)
    argv = ["--db", str(db), "users", "add", user]
    for role in roles:
        argv += ["--role", role]
    try:
        return run(capsys, *argv)
    finally:
        monkeypatch.delenv("SAMU_PASSWORD")


def test_add_prints_enrolment_and_is_audited_as_local_operator(db, capsys, monkeypatch) -> None:
    code, out, err = add(capsys, monkeypatch, db, "drmartin", "regulateur", "arm")
    assert code == EXIT_OK, err
    assert "otpauth://totp/" in out and "secret=" in out
    assert any(block in out for block in ("█", "▀", "▄"))  # the terminal QR code
    assert PW not in out + err
    assert stat.S_IMODE(os.stat(f"{db}.key").st_mode) == 0o600
    (event,) = events(db, "user.create")
    assert event[0] == f"local:{getpass.getuser()}" and event[2] == "user:drmartin"
    assert json.loads(event[4])["roles"] == ["arm", "regulateur"]


def test_add_refusals(db, capsys, monkeypatch) -> None:
    assert add(capsys, monkeypatch, db, "drmartin", "regulateur")[0] == EXIT_OK
    code, _, err = add(capsys, monkeypatch, db, "drmartin", "arm")
    assert code == EXIT_USAGE and "already exists" in err
    monkeypatch.setenv("SAMU_PASSWORD", "azertyuiop123")
    code, _, err = run(capsys, "--db", str(db), "users", "add", "nurse1", "--role", "ide_ehpad")
    assert code == EXIT_USAGE and "common" in err and "azertyuiop123" not in err
    monkeypatch.setenv("SAMU_PASSWORD", "short")
    code, _, err = run(capsys, "--db", str(db), "users", "add", "nurse1", "--role", "ide_ehpad")
    assert code == EXIT_USAGE and "12 characters" in err
    with pytest.raises(SystemExit) as exc:  # no such role
        main(["--db", str(db), "users", "add", "nurse1", "--role", "nurse"])
    assert exc.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exc:  # a password is never an argument
        main(["--db", str(db), "users", "add", "nurse1", "--role", "arm", "--password", PW])
    assert exc.value.code == EXIT_USAGE


def test_weak_password_creates_no_database(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SAMU_PASSWORD", "password")
    db = tmp_path / "new.db"
    assert run(capsys, "--db", str(db), "users", "add", "a1", "--role", "admin")[0] == EXIT_USAGE
    assert not db.exists() and not Path(f"{db}.key").exists()


def test_password_prompt_asked_twice(db, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter([PW, PW + "!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    code, _, err = run(capsys, "--db", str(db), "users", "add", "a1", "--role", "admin")
    assert code == EXIT_USAGE and "differ" in err
    prompts: list[str] = []

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        return PW

    monkeypatch.setattr(getpass, "getpass", ask)
    assert run(capsys, "--db", str(db), "users", "add", "a1", "--role", "admin")[0] == EXIT_OK
    assert len(prompts) == 2


def test_without_a_terminal_the_password_is_not_read_from_a_pipe(db, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": pytest.fail("read from a pipe"))
    code, _, err = run(capsys, "--db", str(db), "users", "add", "a1", "--role", "admin")
    assert code == EXIT_USAGE and "SAMU_PASSWORD" in err and "Traceback" not in err


def test_list_disable_reset_roles(db, capsys, monkeypatch) -> None:
    add(capsys, monkeypatch, db, "drmartin", "regulateur")
    code, out, _ = run(capsys, "--db", str(db), "users", "list")
    assert code == EXIT_OK and "drmartin" in out and "regulateur" in out and "active" in out
    code, out, _ = run(capsys, "--db", str(db), "users", "disable", "drmartin")
    assert code == EXIT_OK and "disabled" in out
    code, out, _ = run(capsys, "users", "list", "--json", "--db", str(db))
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["user_id"] == "drmartin" and row["disabled"] is True and "secret" not in out
    code, out, _ = run(capsys, "--db", str(db), "users", "reset-totp", "drmartin")
    assert code == EXIT_OK and "otpauth://totp/" in out
    code, out, _ = run(capsys, "--db", str(db), "users", "roles", "drmartin", "--add", "auditeur")
    assert code == EXIT_OK and out.strip() == "drmartin: auditeur, regulateur"
    code, out, _ = run(capsys, "--db", str(db), "users", "roles", "drmartin")
    assert out.strip() == "drmartin: auditeur, regulateur"
    code, _, err = run(
        capsys,
        "--db",
        str(db),
        "users",
        "roles",
        "drmartin",
        "--remove",
        "auditeur",
        "--remove",
        "regulateur",
    )
    assert code == EXIT_USAGE and "at least one role" in err
    code, _, err = run(capsys, "--db", str(db), "users", "disable", "nobody")
    assert code == EXIT_USAGE and "no account" in err
    for action in ("user.list", "user.disable", "user.reset_totp", "user.roles"):
        assert all(e[0].startswith("local:") for e in events(db, action)), action


def test_missing_database_is_a_usage_error(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "--db", str(tmp_path / "none.db"), "users", "list")
    assert code == EXIT_USAGE and "not found" in err


def test_wrong_master_key_is_a_clear_usage_error(db, capsys, monkeypatch) -> None:
    add(capsys, monkeypatch, db, "drmartin", "regulateur")
    monkeypatch.setenv("SAMU_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    code, _, err = run(capsys, "--db", str(db), "users", "list")
    assert code == EXIT_USAGE and "master key" in err


def _patients(db: Path) -> dict[str, str]:
    """Register patients in-process with the database's own master key."""
    from console.auth import AccountService, LocalOperator
    from console.crypto import load_master_key
    from console.identity import IdentityTraits, PatientService
    from console.records import Store

    op = LocalOperator("tester")
    key = load_master_key(db, create=True)
    with Store.open(db) as store:
        patients = PatientService(AccountService(store, key), key)
        t = IdentityTraits(
            birth_name="Ancienne",
            first_names="Rose",
            birth_date=date(1930, 1, 1),
            sex="F",
            birthplace_code="13055",
        )
        return {
            "old": patients.register(op, t, last_contact=date(2001, 1, 1)),
            "new": patients.register(op, t, last_contact=date.today()),
        }


def test_retention_dry_run_then_run(db, capsys, monkeypatch) -> None:
    p = _patients(db)
    code, out, _ = run(capsys, "--db", str(db), "retention", "run", "--dry-run")
    assert code == EXIT_OK and f"would erase {p['old']}" in out and "nothing erased" in out
    code, out, _ = run(capsys, "--db", str(db), "retention", "run", "--json")
    report = json.loads(out)
    assert code == EXIT_OK and report["summary"]["shred"] == 1 and not report["dry_run"]
    code, out, _ = run(capsys, "--db", str(db), "retention", "run")
    assert "0 erased" in out and "1 erased earlier" in out
    assert [e[2] for e in events(db, "retention.shred")] == [f"patient:{p['old']}"]


def test_rights_export_to_file(db, capsys, tmp_path) -> None:
    p = _patients(db)
    out_file = tmp_path / "export.json"
    code, out, err = run(
        capsys, "--db", str(db), "rights", "export", "--patient", p["new"], "-o", str(out_file)
    )
    assert code == EXIT_OK and out == "" and str(out_file) in err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    doc = json.loads(out_file.read_text())
    assert doc["identity"]["birth_name"] == "Ancienne"
    assert any(a["action"] == "identity.create" for a in doc["accesses"])
    code, out, _ = run(capsys, "--db", str(db), "rights", "export", "--patient", p["new"])
    assert code == EXIT_OK and json.loads(out)["patient"]["patient_id"] == p["new"]
    code, _, err = run(capsys, "--db", str(db), "rights", "export", "--patient", "pat_x")
    assert code == EXIT_USAGE and "no patient" in err
    assert len(events(db, "rights.export")) == 2


def test_a_site_is_required_for_a_nurse_and_refused_for_others(db, capsys, monkeypatch) -> None:
    code, _, err = add(capsys, monkeypatch, db, "nurse9", "ide_ehpad")
    assert code == EXIT_USAGE and "needs a site" in err
    monkeypatch.setenv("SAMU_PASSWORD", PW)
    code, _, err = run(
        capsys, "--db", str(db), "users", "add", "doc9", "--role", "regulateur", "--site", "x"
    )
    assert code == EXIT_USAGE and "ide_ehpad accounts only" in err
    code, _, _ = run(
        capsys,
        "--db",
        str(db),
        "users",
        "add",
        "nurse9",
        "--role",
        "ide_ehpad",
        "--site",
        "ehpad-a",
    )
    assert code == EXIT_OK
