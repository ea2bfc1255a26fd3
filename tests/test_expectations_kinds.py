"""Every expectation kind of scenarios.md met at least once and missed at least once,
with a message that says why; judged on real replays (small scenarios written here, or
library scenarios with their expectations replaced)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

import scenarios
from console.cli import EXIT_CHECK_FAILED, main
from console.records import Store
from console.services import open_services
from console.settings import Settings
from tests.support.tampering import DROP, tamper

#: A resident whose nurse measured a septic picture at t = 60 s: a bilan-only scenario.
BILAN = """schema_version = 1
[scenario]
name = "expect-bilan"
seed = 4
duration = "5m"
site = "ehpad-k"

[[patients]]
id = "res-k1"

[[patients]]
id = "res-k2"

[[bilans]]
at = 60
patient = "res-k1"
nurse = { rpps = "10001234567", name = "IDE Test" }
complaint = "fièvre, confusion"
with_vitals = false

[bilans.observations]
resp_rate = 26
systolic = 92
heart_rate = 118
temperature = 39.2
spo2 = 91
consciousness = "C"
"""


def replay(text: str, tmp_path: Path, *, edit: object = None) -> dict[str, scenarios.Verdict]:
    """Replay ``text`` in process; verdicts by expectation id. ``edit(result, db)`` may
    change the outcome before it is judged (the two kinds judged on the store)."""
    db = tmp_path / "samu.db"
    scenario = scenarios.loads_scenario(text, "test")
    with open_services(Settings(db=db), create=True) as services:
        result = scenarios.InprocReplay(scenario, services).run()
    if callable(edit):
        edit(result, db)
    with Store.open(db, readonly=True) as store:
        report = scenarios.evaluate(result, store, db)
    return {str(v.expect.id): v for v in report.verdicts}


def library_with(name: str, expectations: str) -> str:
    text = (scenarios.LIBRARY_DIR / f"{name}.toml").read_text()
    return text[: text.index("[[expect]]")] + expectations


def check(verdicts: dict[str, scenarios.Verdict], met: set[str], missed: dict[str, str]) -> None:
    for key in met:
        v = verdicts[key]
        assert v.met, f"{key}: {v.detail}"
        assert v.detail
    for key, message in missed.items():
        v = verdicts[key]
        assert not v.met, f"{key} should be missed: {v.detail}"
        assert re.search(message, v.detail), f"{key}: {v.detail!r} !~ {message!r}"
        if v.expect.what not in ("max_priority", "no_case"):
            assert v.at is None and v.margin_s is None


@pytest.mark.slow  # ~2 s
def test_bilan_kinds_met_and_missed(tmp_path: Path) -> None:
    text = (
        BILAN
        + """
[[expect]]
id = "prio-met"
what = "priority"
patient = "res-k1"
value = "P1"
after = 60
within = 30

[[expect]]
id = "prio-missed"
what = "priority"
patient = "res-k1"
value = "P0"
within = 50

[[expect]]
id = "news2-met"
what = "news2_at_least"
patient = "res-k1"
value = 7

[[expect]]
id = "news2-missed"
what = "news2_at_least"
patient = "res-k1"
value = 19

[[expect]]
id = "qsofa-met"
what = "qsofa"
patient = "res-k1"
value = 2

[[expect]]
id = "qsofa-missed"
what = "qsofa"
patient = "res-k2"
value = 1

[[expect]]
id = "opened-met"
what = "case_opened"
patient = "res-k1"
source = "bilan"
within = "2m"

[[expect]]
id = "opened-missed"
what = "case_opened"
patient = "res-k1"
source = "implant"

[[expect]]
id = "nocase-met"
what = "no_case"
window = [0, 59]

[[expect]]
id = "nocase-missed"
what = "no_case"
patient = "res-k1"
window = [0, "5m"]

[[expect]]
id = "maxprio-met"
what = "max_priority"
patient = "res-k2"
value = "NR"
window = [0, "5m"]

[[expect]]
id = "maxprio-missed"
what = "max_priority"
value = "P2"
window = [0, "5m"]

[[expect]]
id = "noloss-met"
what = "no_loss"

[[expect]]
id = "audit-met"
what = "audit_verifies"
"""
    )
    verdicts = replay(text, tmp_path)
    check(
        verdicts,
        {"prio-met", "news2-met", "qsofa-met", "opened-met", "nocase-met", "maxprio-met",
         "noloss-met", "audit-met"},
        {
            "prio-missed": r"res-k1: not reached by 50 s \(last: priority NR",
            "news2-missed": r"res-k1: not reached by 300 s \(last: .*NEWS2 \d+",
            "qsofa-missed": r"res-k2: not reached",
            "opened-missed": r"no case opened for res-k1 by 300 s",
            "nocase-missed": r"opened at 60 s",
            "maxprio-missed": r"res-k1 suggested P[01] at 60 s \(at most P2\)",
        },
    )  # fmt: skip
    assert verdicts["opened-met"].at == 60 and verdicts["opened-met"].margin_s == 60


@pytest.mark.slow  # ~2 s
def test_no_loss_and_audit_missed_when_the_store_disagrees(tmp_path: Path) -> None:
    """The two kinds judged on the store at the end: a message the transport delivered
    but the store lacks, and an audit trail edited behind the core's back."""
    text = (
        BILAN
        + """
[[expect]]
id = "noloss"
what = "no_loss"

[[expect]]
id = "audit"
what = "audit_verifies"
"""
    )

    def damage(result: scenarios.ReplayResult, db: Path) -> None:
        result.delivered.add("0190a6f0-0000-7000-8000-00000000dead")  # acknowledged, absent
        with sqlite3.connect(db) as conn:  # put the triggers back: only the row changed
            triggers = [sql for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                " AND name LIKE 'audit_events_%'"
            )]  # fmt: skip
        tamper(db, *DROP, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1", *triggers)

    verdicts = replay(text, tmp_path, edit=damage)
    check(verdicts, set(), {"noloss": r"1 message\(s\) lost, 0 duplicated", "audit": r"\S"})


@pytest.mark.slow  # ~3 s
def test_implant_kinds(tmp_path: Path) -> None:
    text = library_with("icd-shock-storm", """
[[expect]]
id = "alert-met"
what = "implant_alert"
device = "icd-0007"
code = "shock_delivered"

[[expect]]
id = "alert-missed"
what = "implant_alert"
device = "icd-0007"
code = "battery_eos"
""")  # fmt: skip
    check(replay(text, tmp_path), {"alert-met"}, {"alert-missed": "no battery_eos alert"})


@pytest.mark.slow  # ~2 s
def test_video_kinds(tmp_path: Path) -> None:
    text = library_with("bronchiolitis-video-withdrawn", """
[[expect]]
id = "consent-met"
what = "consent"
session = "vs-0412"
value = "withdrawn"

[[expect]]
id = "consent-missed"
what = "consent"
session = "vs-0412"
value = "refused"

[[expect]]
id = "ended-met"
what = "stream_ended"
session = "vs-0412"
after = 400
within = 5

[[expect]]
id = "ended-missed"
what = "stream_ended"
session = "vs-0412"
within = 300
""")  # fmt: skip
    check(
        replay(text, tmp_path),
        {"consent-met", "ended-met"},
        {
            "consent-missed": r"session vs-0412: no consent_refused by 900 s",
            "ended-missed": r"no stream_ended by 300 s",
        },
    )


@pytest.mark.slow  # ~4 s
def test_device_kinds(tmp_path: Path) -> None:
    text = library_with("device-chaos", """
[[expect]]
id = "crc-met"
what = "quarantined"
reason = "crc"
device = "spo2-c1"
count = 2

[[expect]]
id = "crc-missed"
what = "quarantined"
reason = "crc"
count = 100000

[[expect]]
id = "security-met"
what = "incident"
kind = "security"
device = "temp-c2"

[[expect]]
id = "technical-missed"
what = "incident"
kind = "technical"
device = "bp-c1"
""")  # fmt: skip
    check(
        replay(text, tmp_path),
        {"crc-met", "security-met"},
        {
            "crc-missed": r"\d+ quarantined as crc by 1200 s, 100000 expected",
            "technical-missed": r"no technical incident by 1200 s",
        },
    )


@pytest.mark.slow  # ~2 s
def test_a_wrong_expectation_exits_1_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(BILAN + """
[[expect]]
id = "should-not-escalate"
what = "max_priority"
patient = "res-k1"
value = "P3"
window = [0, "5m"]
""")  # fmt: skip
    assert main(["replay", str(wrong), "--json", "--headless"]) == EXIT_CHECK_FAILED
    verdict, summary = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert verdict["id"] == "should-not-escalate" and verdict["met"] is False
    assert "res-k1 suggested" in verdict["detail"] and "(at most P3)" in verdict["detail"]
    assert summary["missed"] == 1 and summary["met"] == 0
