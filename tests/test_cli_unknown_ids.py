"""An id that names nothing gets an error that says where ids come from (a stranger
cannot guess them), in one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from console.services import open_services
from console.settings import Settings


@pytest.mark.parametrize(
    ("args", "code", "hint"),
    [
        (["records", "show", "fr.health.x"], 1, "listed by samu records cases"),
        (["records", "provenance", "--decision", "dec_x"], 1, "samu records show CASE_ID"),
        (["incidents", "show", "99"], 2, "listed by samu incidents list"),
        (["retention", "release", "hold_x"], 2, "printed when samu retention hold places it"),
        (["records", "show", "fr.\x1b[2Jx"], 1, "\\x1b"),  # shown escaped, never obeyed
    ],
)
def test_an_unknown_id_says_where_ids_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, hint: str
) -> None:
    db = tmp_path / "samu.db"
    with open_services(Settings(db=db), create=True):
        pass
    assert main([*args, "--db", str(db)]) == code
    err = capsys.readouterr().err
    assert hint in err and len(err.strip().splitlines()) == 1 and "\x1b" not in err
