"""Worked NEWS2 examples, scored by hand from the published charts.

Sources:
- Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
  assessment of acute-illness severity in the NHS. London: RCP, 2017. Chart 1 (the
  scoring system), Chart 2 (thresholds and triggers: 0; 1–4 low; a single red score of
  3, low–medium; 5–6 medium; 7 or more high) and the statement that the aggregate score
  runs from 0 to 20.
- Singer M, et al. Sepsis-3. JAMA 2016;315(8):801-810 (qSOFA: RR ≥ 22/min, SBP ≤ 100
  mmHg, altered mentation).

I could not verify the exact figures of a published patient case (RCP report or NHS
e-learning) from memory, so these examples are *constructed from the charts*, each
sub-score written out by hand in the comments; they are not copies of published cases.
"""

from __future__ import annotations

import numpy as np
import pytest

from console.triage import (
    PRIORITY_NAMES,
    RISK_NAMES,
    TriageInputs,
    VitalsArrays,
    bilan_flags,
    default_policy,
    format_centi,
    score_vitals,
    shock_index_centi,
    triage,
)

POLICY = default_policy()

# name, vitals (rr, spo2, scale, o2, sbp, hr, acvpu, temp), news2, risk, qsofa, SI, priority
EXAMPLES = [
    (
        # 0 + 0 + 0 + 0 + 0 + 0 + 0
        "well resident",
        (14, 97, 1, 0, 124, 72, "A", 36.8),
        0,
        "low",
        0,
        "0.58",
        "P3",
    ),
    (
        # RR 24 → 2, SpO2 94 → 1, air 0, SBP 98 → 2, HR 112 → 2, A 0, 38.6 → 1 = 8
        "sepsis in an EHPAD resident",
        (24, 94, 1, 0, 98, 112, "A", 38.6),
        8,
        "high",
        2,
        "1.14",
        "P0",
    ),
    (
        # Scale 2: SpO2 90 on O2 → 0 (88–92), oxygen 2, rest 0 = 2
        "hypercapnic COPD patient on oxygen, scale 2",
        (20, 90, 2, 1, 130, 88, "A", 37.2),
        2,
        "low",
        0,
        "0.68",
        "P2",
    ),
    (
        # Same patient on scale 1 (wrongly): SpO2 90 → 3, oxygen 2 = 5 — why scale 2 exists
        "the same patient wrongly scored on scale 1",
        (20, 90, 1, 1, 130, 88, "A", 37.2),
        5,
        "medium",
        0,
        "0.68",
        "P1",
    ),
    (
        # RR 22 → 2, SpO2 89 → 3, air, SBP 142 → 0, HR 96 → 1, C → 3, 36.4 → 0 = 9
        "night-time slow hypoxaemia with new confusion",
        (22, 89, 1, 0, 142, 96, "C", 36.4),
        9,
        "high",
        2,
        "0.68",
        "P0",
    ),
    (
        # A single red parameter: RR 26 → 3, everything else 0 = 3, low–medium
        "single red score",
        (26, 97, 1, 0, 128, 80, "A", 37.0),
        3,
        "low-medium",
        1,
        "0.63",
        "P1",
    ),
    (
        # Temperature 38.05 rounds half up to 38.1 → 1; RR 20.5 → 21 → 2 = 3
        "values on a rounding tie",
        (20.5, 96, 1, 0, 120, 80, "A", 38.05),
        3,
        "low",
        0,
        "0.67",
        "P2",
    ),
    (
        # The chart's maximum: 3 + 3 + 2 + 3 + 3 + 3 + 3 = 20 (temperature ≤ 35.0 → 3)
        "every parameter at its worst",
        (40, 80, 1, 1, 70, 150, "U", 34.0),
        20,
        "high",
        3,
        "2.14",
        "P0",
    ),
]


@pytest.mark.parametrize(
    ("name", "values", "news2", "risk", "qsofa", "shock", "priority"),
    EXAMPLES,
    ids=[e[0] for e in EXAMPLES],
)
def test_worked_example(name, values, news2, risk, qsofa, shock, priority) -> None:
    rr, spo2, scale, o2, sbp, hr, acvpu, temp = values
    vitals = VitalsArrays.from_values(
        resp_rate=[rr],
        spo2=[spo2],
        on_oxygen=[o2],
        systolic_bp=[sbp],
        heart_rate=[hr],
        consciousness=[acvpu],
        temperature=[temp],
        spo2_scale=[scale],
    )
    scores = score_vitals(vitals, POLICY)
    assert int(scores.news2[0]) == news2
    assert RISK_NAMES[scores.risk[0]] == risk
    assert int(scores.qsofa[0]) == qsofa
    assert format_centi(int(shock_index_centi(vitals)[0])) == shock
    assert PRIORITY_NAMES[scores.priority[0]] == priority


def test_stroke_with_fast_positive_bilan_is_p1_despite_normal_vitals() -> None:
    """Scenario library: stroke with video consent and a FAST-positive bilan."""
    vitals = VitalsArrays.from_values(
        resp_rate=[16],
        spo2=[97],
        on_oxygen=[0],
        systolic_bp=[165],
        heart_rate=[84],
        consciousness=["A"],
        temperature=[36.9],
    )
    inputs = TriageInputs(
        vitals=vitals, bilan=np.array([bilan_flags(fast_positive=True)], np.uint8)
    )
    result = triage(inputs, POLICY, now=0.0)
    assert result.priority_names() == ["P1"]
    assert "bilan: FAST positive (stroke signs)" in result.reasons(0)
