"""Every vital-sign priority rule, its reason text, qSOFA and the shock index display.

Checked through the ``samu triage score`` CSV path (the contract's output columns) so
that what a physician reads is what is tested.
"""

from __future__ import annotations

import csv
import io

import pytest

from console.triage import (
    OUTPUT_COLUMNS,
    VitalsArrays,
    default_policy,
    format_centi,
    score_csv,
    shock_index_centi,
)

POLICY = default_policy()
HEADER = "id,resp_rate,spo2,spo2_scale,on_oxygen,systolic_bp,heart_rate,consciousness,temperature"
NORMAL = {
    "resp_rate": "16",
    "spo2": "98",
    "spo2_scale": "1",
    "on_oxygen": "0",
    "systolic_bp": "120",
    "heart_rate": "70",
    "consciousness": "A",
    "temperature": "37.0",
}


def score_rows(*rows: dict[str, str]) -> list[dict[str, str]]:
    lines = [HEADER]
    for i, changes in enumerate(rows):
        r = {**NORMAL, **changes}
        lines.append(",".join([str(i)] + [r[c] for c in HEADER.split(",")[1:]]))
    out = io.StringIO()
    score_csv(io.StringIO("\n".join(lines) + "\n"), out, POLICY)
    reader = csv.DictReader(io.StringIO(out.getvalue()))
    assert tuple(reader.fieldnames or ()) == OUTPUT_COLUMNS
    return list(reader)


def one(**changes: str) -> dict[str, str]:
    return score_rows(changes)[0]


def reasons(row: dict[str, str]) -> list[str]:
    return row["reasons"].split("; ")


def test_p0_news2_seven_or_more() -> None:
    row = one(resp_rate="25", heart_rate="115", temperature="39.5")
    assert (row["news2"], row["news2_risk"], row["priority"]) == ("7", "high", "P0")
    assert reasons(row)[0] == "NEWS2 7 (high)"


def test_p0_consciousness_unresponsive_alone() -> None:
    row = one(consciousness="U")
    assert (row["news2"], row["priority"]) == ("3", "P0")
    assert "consciousness U" in reasons(row)
    # U also scores 3 and counts for qSOFA; it is named once, as the P0 rule.
    assert not any(r.startswith("consciousness U scores") for r in reasons(row))


def test_p1_news2_five_or_six() -> None:
    row = one(resp_rate="22", systolic_bp="105", heart_rate="45", temperature="38.2")
    assert (row["news2"], row["news2_risk"], row["priority"]) == ("5", "medium", "P1")
    assert reasons(row)[0] == "NEWS2 5 (medium)"


@pytest.mark.parametrize(
    ("changes", "label"),
    [
        ({"resp_rate": "25"}, "respiration rate scores 3"),
        ({"resp_rate": "8"}, "respiration rate scores 3"),
        ({"spo2": "91"}, "SpO2 scale 1 scores 3"),
        ({"spo2": "83", "spo2_scale": "2"}, "SpO2 scale 2 scores 3"),
        ({"systolic_bp": "90"}, "systolic BP scores 3"),
        ({"systolic_bp": "220"}, "systolic BP scores 3"),
        ({"heart_rate": "131"}, "pulse scores 3"),
        ({"heart_rate": "40"}, "pulse scores 3"),
        ({"temperature": "35.0"}, "temperature scores 3"),
        ({"consciousness": "C"}, "consciousness C (new confusion) scores 3"),
        ({"consciousness": "V"}, "consciousness V scores 3"),
        ({"consciousness": "P"}, "consciousness P scores 3"),
    ],
)
def test_p1_any_single_parameter_scoring_three(changes: dict[str, str], label: str) -> None:
    row = one(**changes)
    assert row["priority"] in ("P1", "P0")
    assert row["news2_risk"] in ("low-medium", "medium", "high")
    assert label in reasons(row)


def test_p1_qsofa_two() -> None:
    row = one(resp_rate="22", systolic_bp="100")
    assert (row["news2"], row["qsofa"], row["priority"]) == ("4", "2", "P1")
    assert "qSOFA 2" in reasons(row)


@pytest.mark.parametrize(
    ("changes", "qsofa"),
    [
        ({}, "0"),
        ({"resp_rate": "21"}, "0"),
        ({"resp_rate": "21.5"}, "1"),  # rounded to 22 before the criterion
        ({"resp_rate": "22"}, "1"),
        ({"systolic_bp": "101"}, "0"),
        ({"systolic_bp": "100.4"}, "1"),
        ({"systolic_bp": "100"}, "1"),
        ({"consciousness": "C"}, "1"),
        ({"consciousness": "V", "resp_rate": "30", "systolic_bp": "80"}, "3"),
        ({"resp_rate": "", "systolic_bp": "", "consciousness": ""}, "0"),
    ],
)
def test_qsofa_criteria(changes: dict[str, str], qsofa: str) -> None:
    assert one(**changes)["qsofa"] == qsofa


def test_p1_shock_index_one_or_more() -> None:
    row = one(heart_rate="110", systolic_bp="110")
    assert (row["news2"], row["shock_index"], row["priority"]) == ("2", "1.00", "P1")
    assert "shock index 1.00" in reasons(row)


def test_p2_news2_one_to_four() -> None:
    row = one(temperature="38.1")
    assert (row["news2"], row["news2_risk"], row["priority"]) == ("1", "low", "P2")
    assert reasons(row) == ["NEWS2 1 (low)"]


def test_p3_news2_zero_and_nothing_else() -> None:
    row = one()
    assert (row["news2"], row["news2_complete"], row["priority"]) == ("0", "true", "P3")
    assert reasons(row) == ["NEWS2 0 (low)"]


def test_every_fired_rule_is_a_reason_the_most_urgent_wins() -> None:
    row = one(resp_rate="30", systolic_bp="85", heart_rate="120", consciousness="U")
    assert row["priority"] == "P0"
    got = reasons(row)
    assert got[0].startswith("NEWS2 ")
    for expected in (
        "consciousness U",
        "respiration rate scores 3",
        "systolic BP scores 3",
        "qSOFA 3",
        "shock index 1.41",
    ):
        assert expected in got


def test_incomplete_set_is_flagged_and_never_plain_low() -> None:
    row = one(spo2="", temperature="")
    assert (row["news2"], row["news2_complete"], row["news2_risk"]) == ("0", "false", "low")
    assert row["priority"] == "P3"
    assert "NEWS2 incomplete (missing SpO2 scale 1/temperature): may be higher" in reasons(row)


def test_row_with_every_value_missing_is_p3_with_a_clear_reason() -> None:
    """Contract output allows P0–P3 only: no data is P3 here (NR in the full engine)."""
    row = one(**{k: "" for k in NORMAL})
    assert row == {
        "id": "0",
        "news2": "0",
        "news2_complete": "false",
        "news2_risk": "low",
        "qsofa": "0",
        "shock_index": "",
        "priority": "P3",
        "reasons": "no vital sign recorded (NEWS2 incomplete)",
    }


@pytest.mark.parametrize(
    ("hr", "sbp", "shown"),
    [
        ("1", "8", "0.13"),  # 0.125: half up (binary f"{0.125:.2f}" gives 0.12)
        ("5", "8", "0.63"),  # 0.625 likewise
        ("3", "8", "0.38"),
        ("70", "90", "0.78"),
        ("100", "80", "1.25"),
        ("120", "120", "1.00"),
        ("0", "120", "0.00"),
        ("300", "1", "300.00"),
        ("60", "0", ""),  # systolic 0: no index
        ("", "120", ""),
        ("60", "", ""),
        ("70.5", "90.4", "0.79"),  # on the rounded values: 71 / 90
    ],
)
def test_shock_index_two_decimals_half_up(hr: str, sbp: str, shown: str) -> None:
    assert one(heart_rate=hr, systolic_bp=sbp)["shock_index"] == shown


def test_shock_index_display_and_rule_are_exact() -> None:
    """199/200 = 0.995 shows as 1.00 (half up) yet is below 1.0: the rule does not fire."""
    row = one(heart_rate="199", systolic_bp="200")
    assert row["shock_index"] == "1.00"
    assert not any(r.startswith("shock index") for r in reasons(row))
    vitals = VitalsArrays.from_values(
        resp_rate=[16, 16],
        spo2=[98, 98],
        on_oxygen=[0, 0],
        systolic_bp=[200, 8],
        heart_rate=[199, 1],
        consciousness=["A", "A"],
        temperature=[37, 37],
    )
    assert [format_centi(c) for c in shock_index_centi(vitals).tolist()] == ["1.00", "0.13"]


def test_output_keeps_input_order_and_ids_verbatim() -> None:
    rows = score_rows({"resp_rate": "30"}, {}, {"consciousness": "U"})
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert [r["priority"] for r in rows] == ["P1", "P3", "P0"]
