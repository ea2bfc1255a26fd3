"""Text from outside never drives the terminal: control characters are shown as visible
escapes in every service reply, Rich markup in data is shown as written, and a roster
with a control character is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scenarios
from console.services import RegulationService, open_services
from console.settings import Settings
from console.tui import load_roster
from protocols import has_control, printable

ATTACK = "stable \x1b]0;PWNED\x07\x1b[2J [link=https://x]clic[/link] [/]"


@given(st.text())
def test_printable_leaves_no_control_character(text: str) -> None:
    out = printable(text)
    assert not has_control(out)
    assert all(c in "\t\n" or c.isprintable() or ord(c) > 0x9F for c in out)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf"))))
def test_printable_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


def test_an_escape_sequence_in_a_case_reaches_the_board_escaped(tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("stroke-video-fast"), services).run()
        (case_id,) = services.store.fetchone("SELECT case_id FROM cases LIMIT 1")
        with services.store.transaction() as conn:
            conn.execute(
                "UPDATE cases SET reasons = ? WHERE case_id = ?", (json.dumps([ATTACK]), case_id)
            )
        (row,) = [r for r in RegulationService(services).replay_board() if r.case_id == case_id]
        assert row.reasons == ("stable \\x1b]0;PWNED\\x07\\x1b[2J [link=https://x]clic[/link] [/]",)
        stored = services.store.fetchone("SELECT reasons FROM cases WHERE case_id = ?", (case_id,))
        assert json.loads(stored[0]) == [ATTACK]  # the store keeps what was received


def test_a_roster_with_a_control_character_is_refused_and_names_are_lists(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[residents]]\nid = "res-1"\nbirth_name = "EVIL\\u001b]0;T\\u0007"\n')
    with pytest.raises(ValueError, match=r"residents\[0\].birth_name: a control character"):
        load_roster(bad)
    good = tmp_path / "good.toml"
    good.write_text(
        '[[residents]]\nid = "res-1"\nbirth_name = "MARTIN"\nfirst_names = "Jeanne Marie"\n'
        'dlu = { allergies = ["<img src=x onerror=alert(1)>", "[b]pénicilline[/b]"] }\n'
    )
    entry = load_roster(good)["res-1"]
    assert entry.identity["first_names"] == ["Jeanne", "Marie"]
    # Markup-like text is the EHPAD's own words: kept exactly (the station escapes it).
    assert entry.dlu == {"allergies": ["<img src=x onerror=alert(1)>", "[b]pénicilline[/b]"]}


def test_a_decision_reason_with_a_control_character_is_refused() -> None:
    from pydantic import ValidationError

    from console.cases import DecisionRequest

    fields = {"case_id": "c", "priority": "P1", "care_level": "R1", "decision_type": "INTER"}
    assert DecisionRequest(**fields, reason="amélioration\nsous O2").reason
    with pytest.raises(ValidationError, match="control character"):
        DecisionRequest(**fields, reason=ATTACK)


def test_the_decide_command_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cli._main import main

    base = ["records", "decide", "fr.health.samu075.X", "--db", str(tmp_path / "none.db"),
            "--as", "dr", "--priority", "P1", "--care-level", "R1",
            "--decision", "INTER"]  # fmt: skip
    assert main([*base, "--reason", "x" * 3000]) == 2
    assert main([*base, "--reason", ATTACK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "samu records: error: --reason: String should have at most 2000 characters",
        "samu records: error: --reason: Value error, the reason holds a control character "
        "(only text is signed)",
    ]


def test_records_show_prints_stored_escape_sequences_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cli._main import main

    db = tmp_path / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("stroke-video-fast"), services).run()
        (case_id,) = services.store.fetchone("SELECT case_id FROM cases LIMIT 1")
        with services.store.transaction() as conn:
            conn.execute(
                "UPDATE cases SET reasons = ? WHERE case_id = ?", (json.dumps([ATTACK]), case_id)
            )
    capsys.readouterr()
    assert main(["records", "show", case_id, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "stable \\x1b]0;PWNED\\x07" in out
