"""``samu replay`` as scenarios.md fixes it: the JSON report, exit codes, JUnit, file
errors with their field path, and the same seed giving the same digest."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

import scenarios
from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main

ICD = scenarios.LIBRARY_DIR / "icd-shock-storm.toml"


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = main(["replay", *argv, "--json", "--headless"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    return code, lines


def test_the_json_report_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.xml"
    code, lines = report(capsys, "icd-shock-storm", "--junit", str(out))
    assert code == EXIT_OK
    *verdicts, summary = lines
    assert [v["what"] for v in verdicts] == ["implant_alert", "priority"]
    for i, v in enumerate(verdicts):
        assert set(v) == {"scenario", "index", "id", "what", "met", "at", "margin_s", "detail"}
        assert v["scenario"] == "icd-shock-storm" and v["index"] == i and v["met"]
        assert v["at"] is not None and v["margin_s"] >= 0
    assert set(summary) == {"scenario", "expectations", "met", "missed", "seed", "store_sha256"}
    assert summary["expectations"] == 2 and summary["missed"] == 0 and summary["seed"] == 77
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "0"


def test_a_wrong_expectation_is_missed_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(ICD.read_text().replace('code = "shock_delivered"', 'code = "battery_eos"'))
    code, lines = report(capsys, str(wrong))
    assert code == EXIT_CHECK_FAILED
    missed = [v for v in lines[:-1] if not v["met"]]
    assert len(missed) == 1 and "no battery_eos alert from icd-0007" in missed[0]["detail"]
    assert missed[0]["at"] is None and missed[0]["margin_s"] is None
    assert lines[-1]["missed"] == 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('code = "shock_delivered"', 'reason = "shock delivered"'), "expect[0].code: required"),
        (('what = "implant_alert"', 'what = "implant_alarm"'), "expect[0].what: unknown kind"),
        (('value = "P0"', 'value = "P9"'), "expect[1].value: one of P0"),
        (('value = "P0"', 'value = "P0"\ncolour = "red"'), "expect[1].colour: not a key"),
    ],
)
def test_file_errors_name_the_field(
    edit: tuple[str, str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(ICD.read_text().replace(*edit))
    assert main(["replay", str(bad), "--headless"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and str(bad) in err


def test_the_same_seed_gives_the_same_report_and_digest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = report(capsys, "stroke-video-fast")[1]
    second = report(capsys, "stroke-video-fast")[1]
    assert first == second
    assert (
        first[-1]["store_sha256"]
        != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "icd-shock-storm", "--speed", "fast"]) == EXIT_USAGE
    assert "--speed" in capsys.readouterr().err
    assert main(["replay", "no-such-scenario"]) == EXIT_USAGE
    assert "no such file, nor a library scenario" in capsys.readouterr().err


def test_bad_reports_and_loads_are_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "quiet-night", "--headless", "--junit", "/nonexistent/r.xml"]) == 2
    assert "cannot write in /nonexistent" in capsys.readouterr().err
    assert main(["replay", "quiet-night", "--headless", "--junit", str(tmp_path)]) == 2
    assert "a directory" in capsys.readouterr().err
    out = tmp_path / "g.toml"
    for rate in ("nan", "inf", "1e9", "0"):
        assert main(["replay", "--generate", "2x2", "--rate", rate, "--write", str(out)]) == 2
        assert f"--rate {float(rate):g}" in capsys.readouterr().err
    assert main(["replay", "--generate", "2x2", "--duration", "9999h", "--write", str(out)]) == 2
    assert "at most 7 days" in capsys.readouterr().err
    assert not out.exists()
