"""`samu rights export --patient ID` takes ids a stranger can find: `samu rights list`
shows them (no identity in clear, audited), finds one by birth name, and the error for an
unknown id says where ids come from and how to list them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import EXIT_OK, EXIT_USAGE, main
from console.records import Store
from console.services import open_services
from console.settings import Settings
from tests.support.accounts import OP
from tests.support.patients import TRAITS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def events(db: Path, action: str) -> list[tuple[str, str, str]]:
    with Store.open(db, readonly=True) as store:
        return store.fetchall(
            "SELECT actor, object, detail FROM audit_events WHERE action = ? ORDER BY seq",
            (action,),
        )


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SAMU_MASTER_KEY", "SAMU_MASTER_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "samu.db"


def register(db: Path) -> dict[str, str]:
    with open_services(Settings(db=db), create=True) as s:
        return {
            "lilas": s.patients.register(OP, TRAITS, site="ehpad-lilas"),
            "martin": s.patients.register(
                OP, TRAITS.model_copy(update={"birth_name": "Martin"}), site="ehpad-tilleuls"
            ),
        }


def test_the_list_shows_ids_not_identities_and_is_audited(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = register(db)
    code, out, _ = run(capsys, "rights", "list", "--db", str(db))
    assert code == EXIT_OK and ids["lilas"] in out and ids["martin"] in out
    assert "ehpad-lilas" in out and "unqualified" in out
    assert TRAITS.birth_name not in out and "Martin" not in out  # a list reads no identity
    code, out, _ = run(capsys, "rights", "list", "--db", str(db), "--json", "--site", "ehpad-lilas")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["patient_id"] == ids["lilas"] and row["status"] == "unqualified"
    (actor, obj, detail), _ = events(db, "rights.list")
    assert actor.startswith("local:") and obj == "patients"
    assert json.loads(detail)["count"] == 2
    # the id found is the one the export takes
    code, out, _ = run(capsys, "rights", "export", "--db", str(db), "--patient", ids["lilas"])
    assert code == EXIT_OK and json.loads(out)["patient"]["patient_id"] == ids["lilas"]


def test_a_patient_is_found_by_birth_name_without_the_name_in_the_trail(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = register(db)
    code, out, _ = run(capsys, "rights", "list", "--db", str(db), "--name", "MARTIN")
    assert code == EXIT_OK and ids["martin"] in out and ids["lilas"] not in out
    code, out, err = run(capsys, "rights", "list", "--db", str(db), "--name", "Nobody")
    assert code == EXIT_OK and out == "" and "no matching registered patient" in err
    with Store.open(db, readonly=True) as store:
        trail = b"".join(bytes(r[0]) for r in store.fetchall("SELECT canonical FROM audit_events"))
    assert b"martin" not in trail.lower() and b"nobody" not in trail.lower()
    assert len(events(db, "identity.search")) == 2
    code, _, err = run(capsys, "rights", "list", "--db", str(db), "--first-name", "Jean")
    assert code == EXIT_USAGE and "--first-name goes with --name" in err


def test_an_unknown_id_says_where_ids_come_from(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register(db)
    for argv in (
        ["rights", "export", "--db", str(db), "--patient", "pat_nosuch"],
        ["retention", "hold", "--db", str(db), "--patient", "pat_nosuch", "--reason", "x"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == EXIT_USAGE and out == ""
        (line,) = err.strip().splitlines()
        assert "no patient with id 'pat_nosuch'" in line
        assert "samu rights list" in line and "--name" in line and "holds 2" in line


def test_a_resident_reference_is_told_apart_from_a_patient_id(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_services(Settings(db=db), create=True) as s, s.store.transaction() as conn:
        conn.execute(
            "INSERT INTO residents (resident_id, site, ref, first_seen)"
            " VALUES ('ehpad-lilas/res-0142', 'ehpad-lilas', 'res-0142', '2026-01-01')"
        )
    code, _, err = run(capsys, "rights", "export", "--db", str(db), "--patient", "res-0142")
    assert code == EXIT_USAGE
    assert "resident reference" in err and "ehpad-lilas/res-0142" in err
    assert "holds none yet" in err and "samu rights list" in err


def test_the_help_says_where_ids_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rights", "export", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "samu rights list" in out and "--name" in out
    with pytest.raises(SystemExit):
        main(["rights", "--help"])
    assert "list" in capsys.readouterr().out
