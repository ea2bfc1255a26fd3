"""``samu triage score``: a file with the wrong delimiter is told so in one line, a
missing column is never listed twice, and every result carries the policy version and
SHA-256 (README: "every result carries its version and SHA-256")."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

import pytest

from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.triage import (
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    CsvInputError,
    default_policy,
    default_policy_bytes,
    load_policy,
    score_csv,
)

HEADER = ",".join(INPUT_COLUMNS)
GOOD = ["p1,20.5,96,1,0,120,80,A,38.05", "p2,,,,,,,,", "p3,30,85,1,1,85,135,U,34"]


def score_text(text: str) -> str:
    out = io.StringIO()
    score_csv(io.StringIO(text), out, default_policy())
    return out.getvalue()


@pytest.mark.parametrize(("delimiter", "shown"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_a_file_separated_by_another_delimiter_is_told_so(delimiter: str, shown: str) -> None:
    text = "\n".join(line.replace(",", delimiter) for line in [HEADER, *GOOD]) + "\n"
    with pytest.raises(CsvInputError) as exc:
        score_text(text)
    message = str(exc.value)
    assert "\n" not in message
    assert f"separated by {shown}" in message and "use ','" in message
    # no column is listed as missing: they are all there, behind the wrong delimiter
    assert "resp_rate" not in message


def test_the_cli_says_it_in_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "semicolons.csv"
    path.write_text("\n".join(x.replace(",", ";") for x in [HEADER, *GOOD]) + "\n")
    assert main(["triage", "score", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "separated by ';': use ','" in err


def mentions(message: str, column: str) -> int:
    """How many times ``column`` appears as a whole name (spo2 is not spo2_scale)."""
    return len(re.findall(rf"(?<![\w]){re.escape(column)}(?![\w])", message))


def test_a_missing_column_is_listed_once() -> None:
    header = "id,resp_rate,spo2,spo2_scale,on_oxygen,heart_rate,temperature"
    with pytest.raises(CsvInputError) as exc:
        score_text(header + "\np1,20,96,1,0,80,37\n")
    message = str(exc.value)
    for column in ("systolic_bp", "consciousness"):
        assert mentions(message, column) == 1, message
    for column in INPUT_COLUMNS:
        assert mentions(message, column) <= 1, message


def test_a_header_of_unknown_names_lists_each_missing_column_once() -> None:
    with pytest.raises(CsvInputError) as exc:
        score_text("a,b,c\n1,2,3\n")
    message = str(exc.value)
    for column in INPUT_COLUMNS:
        assert mentions(message, column) == 1, message


def test_a_row_separated_by_semicolons_says_so() -> None:
    rows = list(csv.DictReader(io.StringIO(score_text(f"{HEADER}\n{GOOD[0].replace(',', ';')}\n"))))
    assert rows[0]["reasons"].startswith("error:")
    assert "separated by ';'" in rows[0]["reasons"]


def test_the_output_columns_are_the_contract_s_and_the_policy_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """triage.md fixes the output columns; the README's promise that every result names
    its policy is kept on stderr (and in every stored triage result)."""
    policy = default_policy()
    assert OUTPUT_COLUMNS == (
        "id", "news2", "news2_complete", "news2_risk", "qsofa", "shock_index", "priority",
        "reasons",
    )  # fmt: skip
    data = tmp_path / "in.csv"
    data.write_text("\n".join([HEADER, *GOOD, "bad,999,96,1,0,120,80,A,37"]) + "\n")
    assert main(["triage", "score", str(data)]) == EXIT_CHECK_FAILED
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == ",".join(OUTPUT_COLUMNS)
    assert f"policy {policy.version} (sha256 {policy.sha256})" in err
    assert policy.sha256 == hashlib.sha256(default_policy_bytes()).hexdigest()


def test_a_policy_given_on_the_command_line_is_the_one_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = tmp_path / "policy.toml"
    custom.write_bytes(default_policy_bytes() + b"\n# a local copy, one more byte\n")
    expected = load_policy(custom)
    data = tmp_path / "in.csv"
    data.write_text("\n".join([HEADER, *GOOD]) + "\n")
    assert main(["triage", "score", str(data), "--policy", str(custom)]) == EXIT_OK
    assert f"sha256 {expected.sha256}" in capsys.readouterr().err
    assert expected.sha256 != default_policy().sha256
    data.write_text("\n".join([HEADER, "x,abc,,,,,,,"]) + "\n")
    assert main(["triage", "score", str(data), "--policy", str(custom)]) == EXIT_CHECK_FAILED


@pytest.mark.parametrize(
    ("policy_text", "message"),
    [
        (None, "policy is a directory"),
        ('[policy]\nname = "x"\nversion = ""\n', "policy.version"),
        ("not = toml = x", "invalid policy"),
    ],
)
def test_a_bad_policy_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy_text: str | None, message: str
) -> None:
    data = tmp_path / "in.csv"
    data.write_text("\n".join([HEADER, *GOOD]) + "\n")
    policy = tmp_path / "policy"
    if policy_text is None:
        policy.mkdir()
    else:
        policy.write_text(policy_text)
    assert main(["triage", "score", str(data), "--policy", str(policy)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_an_output_that_is_a_directory_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "in.csv"
    data.write_text("\n".join([HEADER, *GOOD]) + "\n")
    (tmp_path / "out").mkdir()
    assert main(["triage", "score", str(data), "-o", str(tmp_path / "out")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out"]  # no temp left
