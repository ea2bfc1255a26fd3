"""Property tests: the numpy engine agrees with the independent plain-Python oracle.

On arbitrary inputs including NaN/None (missing), ties at every rounding boundary and
arbitrary binary floats; through the float path, the CSV text path (with tiny chunks so
rows straddle chunk boundaries) and the full triage (freshness, implant, bilan, trend).
"""

from __future__ import annotations

import io
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from console.triage import (
    CONDITION_BITS,
    PARAMETERS,
    PRIORITY_NAMES,
    RISK_NAMES,
    ImplantCondition,
    News2History,
    TriageInputs,
    VitalRule,
    VitalsArrays,
    bilan_flags,
    default_policy,
    format_centi,
    score_csv,
    score_vitals,
    shock_index_centi,
    triage,
    vital_rules,
)
from console.triage import _oracle as oracle

POLICY = default_policy()

# Chart boundaries of each parameter, and the half-way points around them.
EDGES = {
    "resp_rate": [8, 9, 11, 12, 20, 21, 22, 24, 25],
    "spo2": [83, 84, 85, 86, 87, 88, 91, 92, 93, 94, 95, 96, 97],
    "systolic_bp": [90, 91, 100, 101, 110, 111, 219, 220],
    "heart_rate": [40, 41, 50, 51, 90, 91, 110, 111, 130, 131],
    "temperature": [35.0, 35.1, 36.0, 36.1, 38.0, 38.1, 39.0, 39.1],
}
RANGES = {
    "resp_rate": (0, 80),
    "spo2": (0, 100),
    "systolic_bp": (0, 300),
    "heart_rate": (0, 300),
    "temperature": (25, 45),
}


def measured(name: str) -> st.SearchStrategy[float | None]:
    low, high = RANGES[name]
    step = 0.1 if name == "temperature" else 1.0
    near = [e + d for e in EDGES[name] for d in (-step / 2, 0.0, step / 2)]
    return st.one_of(
        st.none(),
        st.just(math.nan),
        st.sampled_from(near),
        st.integers(low * 100, high * 100).map(lambda k: k / 100),
        st.floats(low, high, allow_nan=False),
    )


vitals_strategy = st.builds(
    oracle.OracleVitals,
    resp_rate=measured("resp_rate"),
    spo2=measured("spo2"),
    spo2_scale=st.sampled_from([1, 2]),
    on_oxygen=st.sampled_from([None, False, True]),
    systolic_bp=measured("systolic_bp"),
    heart_rate=measured("heart_rate"),
    consciousness=st.sampled_from([None, "A", "C", "V", "P", "U"]),
    temperature=measured("temperature"),
)


def to_arrays(rows: list[oracle.OracleVitals]) -> VitalsArrays:
    return VitalsArrays.from_values(
        resp_rate=[r.resp_rate for r in rows],  # type: ignore[misc]
        spo2=[r.spo2 for r in rows],  # type: ignore[misc]
        on_oxygen=[None if r.on_oxygen is None else int(r.on_oxygen) for r in rows],
        systolic_bp=[r.systolic_bp for r in rows],  # type: ignore[misc]
        heart_rate=[r.heart_rate for r in rows],  # type: ignore[misc]
        consciousness=[r.consciousness for r in rows],
        temperature=[r.temperature for r in rows],  # type: ignore[misc]
        spo2_scale=[r.spo2_scale for r in rows],
    )


_RULE_BITS = {
    oracle.RULE_CONSCIOUSNESS_U: VitalRule.CONSCIOUSNESS,
    oracle.RULE_SINGLE_PARAMETER: VitalRule.SINGLE_PARAMETER,
    oracle.RULE_QSOFA: VitalRule.QSOFA,
    oracle.RULE_SHOCK_INDEX: VitalRule.SHOCK_INDEX,
}


@given(rows=st.lists(vitals_strategy, min_size=1, max_size=40), block=st.integers(1, 64))
def test_engine_equals_oracle(rows: list[oracle.OracleVitals], block: int) -> None:
    vitals = to_arrays(rows)
    scores = score_vitals(vitals, POLICY, breakdown=True, block=block)
    assert scores.parameter_scores is not None
    # The hot path (no breakdown) accumulates differently: it must agree field by field.
    direct = score_vitals(vitals, POLICY, block=block)
    for name in ("news2", "complete", "risk", "qsofa", "shock_index_alert", "priority"):
        assert (getattr(direct, name) == getattr(scores, name)).all(), name
    shock = shock_index_centi(vitals).tolist()
    rules = vital_rules(vitals, scores, POLICY).tolist()
    for i, row in enumerate(rows):
        expected = oracle.score(row)
        assert int(scores.news2[i]) == expected.news2, (i, row)
        assert bool(scores.complete[i]) == expected.complete
        assert RISK_NAMES[scores.risk[i]] == expected.risk
        assert int(scores.qsofa[i]) == expected.qsofa
        assert bool(scores.shock_index_alert[i]) == expected.shock_index_alert
        assert format_centi(shock[i]) == expected.shock_index
        assert PRIORITY_NAMES[scores.priority[i]] == expected.priority, (i, row)
        points = {name: 0 for name in PARAMETERS}
        points.update(expected.points)
        assert {
            name: int(scores.parameter_scores[k, i]) for k, name in enumerate(PARAMETERS)
        } == points
        bits = VitalRule(0)
        for rule in expected.rules:
            bits |= _RULE_BITS.get(rule, VitalRule(0))
        assert VitalRule(rules[i]) == bits


# --- CSV text path ----------------------------------------------------------------


def number_text(name: str) -> st.SearchStrategy[str]:
    low, high = RANGES[name]
    near = [e + d for e in EDGES[name] for d in (-0.5, -0.05, 0.0, 0.05, 0.5)]
    good = st.one_of(
        st.sampled_from([f"{v:g}" for v in near]),
        st.integers(low * 100, high * 100).map(lambda k: f"{k / 100:.2f}"),
        st.integers(low, high).map(str),
        st.integers(low, high).map(lambda k: f" {k} "),
        st.integers(low, high).map(lambda k: f"{k}."),
        st.integers(low, high).map(lambda k: f"{k / 10:g}e1"),
    )
    bad = st.sampled_from(
        [
            "abc",
            "nan",
            "NaN",
            "inf",
            "-1",
            "1,5",
            "--1",
            "1e",
            ".",
            "1_0",
            "0x1A",
            str(high + 1),
            str(low - 0.1),
            "٣",
        ]
    )
    return st.one_of(st.just(""), good, good, good, bad)


row_text = st.fixed_dictionaries(
    {
        "id": st.text(alphabet="abcXYZ-_0123456789 ", max_size=6),
        "resp_rate": number_text("resp_rate"),
        "spo2": number_text("spo2"),
        "spo2_scale": st.sampled_from(["", "1", "2", "2", "3", "x", " 2 "]),
        "on_oxygen": st.sampled_from(["", "0", "1", "1", "2", "yes", " 1"]),
        "systolic_bp": number_text("systolic_bp"),
        "heart_rate": number_text("heart_rate"),
        "consciousness": st.sampled_from(["", "A", "C", "V", "P", "U", "X", "?"]),
        "temperature": number_text("temperature"),
    }
)
COLUMNS = [
    "id",
    "resp_rate",
    "spo2",
    "spo2_scale",
    "on_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
]


@given(rows=st.lists(row_text, min_size=1, max_size=30), chunk=st.integers(1, 8))
def test_csv_path_equals_oracle(rows: list[dict[str, str]], chunk: int) -> None:
    import csv

    src = io.StringIO()
    writer = csv.writer(src)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r[c] for c in COLUMNS])
    out = io.StringIO()
    report = score_csv(io.StringIO(src.getvalue()), out, POLICY, chunk_rows=chunk)
    got = list(csv.reader(io.StringIO(out.getvalue())))[1:]
    assert len(got) == len(rows)
    bad = 0
    for r, line in zip(rows, got, strict=True):
        expected, is_bad = oracle.csv_row(r)
        assert line[:7] == expected, (r, line)
        assert line[7].startswith("error:") == is_bad, (r, line)
        bad += is_bad
    assert report.bad_rows == bad
    assert report.rows == len(rows)


# --- full triage ------------------------------------------------------------------

NOW = 1_800_000_000  # an integer: ages and timestamps stay exact in float64
FIELD_OF = {
    "resp_rate": "resp_rate",
    "spo2": "spo2",
    "oxygen": "on_oxygen",
    "systolic_bp": "systolic_bp",
    "heart_rate": "heart_rate",
    "consciousness": "consciousness",
    "temperature": "temperature",
}
BILAN_FLAGS = ["fall", "chest_pain", "fast_positive", "new_confusion", "cardiac_arrest", "pain"]


@st.composite
def cases(draw: st.DrawFn) -> oracle.OracleCase:
    vitals = draw(vitals_strategy)
    ages = {
        field: draw(st.sampled_from([0, 60, 600, 899, 900, 901, 1800]))
        for field in FIELD_OF.values()
        if draw(st.booleans())
    }
    received = draw(st.booleans())
    flags = frozenset(draw(st.sets(st.sampled_from(BILAN_FLAGS)))) if received else frozenset()
    # History ages stay clear of the window's edge: minutes are buckets (see _history).
    history = draw(
        st.lists(
            st.tuples(st.one_of(st.integers(0, 3540), st.integers(3720, 7200)), st.integers(0, 20)),
            max_size=5,
        )
    )
    implant = draw(st.sets(st.sampled_from([c.value for c in ImplantCondition]), max_size=3))
    return oracle.OracleCase(
        vitals=vitals,
        ages_s=ages,
        implant=frozenset(implant),
        bilan=flags,
        bilan_received=received,
        history=tuple(history),
    )


@given(cases=st.lists(cases(), min_size=1, max_size=12))
def test_full_triage_equals_oracle(cases: list[oracle.OracleCase]) -> None:
    n = len(cases)
    vitals = to_arrays([c.vitals for c in cases])
    observed_at = np.full((len(PARAMETERS), n), np.nan)
    for i, case in enumerate(cases):
        for k, name in enumerate(PARAMETERS):
            age = case.ages_s.get(FIELD_OF[name])
            if age is not None:
                observed_at[k, i] = NOW - age
    implant = np.array(
        [sum(CONDITION_BITS[ImplantCondition(c)] for c in case.implant) for case in cases],
        dtype=np.uint16,
    )
    bilan = np.array(
        [
            bilan_flags(
                **{f: True for f in case.bilan if f != "pain"},
                pain=5 if "pain" in case.bilan else None,
            )
            if case.bilan_received
            else 0
            for case in cases
        ],
        dtype=np.uint8,
    )
    history = News2History(n)
    for i, case in enumerate(cases):
        for age, value in case.history:
            history.record(NOW - age, np.array([value]), rows=np.array([i]))
    result = triage(
        TriageInputs(vitals=vitals, observed_at=observed_at, implant=implant, bilan=bilan),
        POLICY,
        now=NOW,
        history=history,
        record=False,
    )
    for i, case in enumerate(cases):
        priority, fired = oracle.triage(case)
        assert result.priority_names()[i] == priority, (i, case, result.reasons(i))
        assert result.fired(i) == fired, (i, case)
        assert result.reasons(i), "every suggestion carries reasons"
