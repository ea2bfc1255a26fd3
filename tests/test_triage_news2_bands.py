"""Every band boundary of every NEWS2 parameter, the rounding rule, missing values, risk.

Expected points are transcribed by hand from the RCP NEWS2 chart (design note triage.md,
"NEWS2" table), independently of both implementations, and checked three ways: the
numpy engine fed floats, the CSV path fed text, and the plain-Python oracle.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from console.triage import (
    PARAMETERS,
    RISK_NAMES,
    VitalsArrays,
    default_policy,
    score_csv,
    score_vitals,
)
from console.triage._oracle import OracleVitals
from console.triage._oracle import score as oracle_score

POLICY = default_policy()

#: A set scoring 0 on every parameter, into which one value at a time is substituted.
NORMAL = {
    "resp_rate": 16.0,
    "spo2": 98.0,
    "on_oxygen": 0,
    "systolic_bp": 120.0,
    "heart_rate": 70.0,
    "consciousness": "A",
    "temperature": 37.0,
    "spo2_scale": 1,
}
HEADER = "id,resp_rate,spo2,spo2_scale,on_oxygen,systolic_bp,heart_rate,consciousness,temperature\n"


def _engine(rows: list[dict[str, object]]):
    def col(name: str) -> list[object]:
        return [r[name] for r in rows]

    vitals = VitalsArrays.from_values(
        resp_rate=col("resp_rate"),
        spo2=col("spo2"),
        on_oxygen=col("on_oxygen"),
        systolic_bp=col("systolic_bp"),
        heart_rate=col("heart_rate"),
        consciousness=col("consciousness"),  # type: ignore[arg-type]
        temperature=col("temperature"),
        spo2_scale=col("spo2_scale"),
    )
    return vitals, score_vitals(vitals, POLICY, breakdown=True)


def _csv(rows: list[dict[str, str]]) -> list[list[str]]:
    lines = [HEADER]
    for i, r in enumerate(rows):
        lines.append(
            f"{i},{r['resp_rate']},{r['spo2']},{r['spo2_scale']},{r['on_oxygen']},"
            f"{r['systolic_bp']},{r['heart_rate']},{r['consciousness']},{r['temperature']}\n"
        )
    out = io.StringIO()
    score_csv(io.StringIO("".join(lines)), out, POLICY)
    return [line.split(",", 7) for line in out.getvalue().splitlines()[1:]]


def _oracle(row: dict[str, object]):
    return oracle_score(
        OracleVitals(
            resp_rate=row["resp_rate"],  # type: ignore[arg-type]
            spo2=row["spo2"],  # type: ignore[arg-type]
            spo2_scale=int(row["spo2_scale"]),  # type: ignore[call-overload]
            on_oxygen=None if row["on_oxygen"] is None else bool(row["on_oxygen"]),
            systolic_bp=row["systolic_bp"],  # type: ignore[arg-type]
            heart_rate=row["heart_rate"],  # type: ignore[arg-type]
            consciousness=row["consciousness"],  # type: ignore[arg-type]
            temperature=row["temperature"],  # type: ignore[arg-type]
        )
    )


# (parameter, value as written, extra settings, expected points of that parameter)
BOUNDARIES: list[tuple[str, str, dict[str, object], int]] = [
    # respiration rate: ≤8 → 3, 9–11 → 1, 12–20 → 0, 21–24 → 2, ≥25 → 3
    *[
        ("resp_rate", v, {}, p)
        for v, p in [
            ("0", 3),
            ("8", 3),
            ("9", 1),
            ("11", 1),
            ("12", 0),
            ("20", 0),
            ("21", 2),
            ("24", 2),
            ("25", 3),
            ("80", 3),
            ("8.4", 3),
            ("8.5", 1),
            ("11.5", 0),
            ("20.49", 0),
            ("20.5", 2),
            ("24.5", 3),
        ]
    ],
    # SpO2 scale 1: ≤91 → 3, 92–93 → 2, 94–95 → 1, ≥96 → 0
    *[
        ("spo2", v, {}, p)
        for v, p in [
            ("0", 3),
            ("91", 3),
            ("92", 2),
            ("93", 2),
            ("94", 1),
            ("95", 1),
            ("96", 0),
            ("100", 0),
            ("91.5", 2),
            ("93.5", 1),
            ("95.5", 0),
            ("91.49", 3),
        ]
    ],
    # SpO2 scale 1 on oxygen: same SpO2 points (the oxygen row is scored separately)
    *[("spo2", v, {"on_oxygen": 1}, p) for v, p in [("91", 3), ("96", 0), ("100", 0)]],
    # SpO2 scale 2 on air: ≤83 → 3, 84–85 → 2, 86–87 → 1, ≥88 → 0
    *[
        ("spo2", v, {"spo2_scale": 2}, p)
        for v, p in [
            ("83", 3),
            ("84", 2),
            ("85", 2),
            ("86", 1),
            ("87", 1),
            ("88", 0),
            ("92", 0),
            ("93", 0),
            ("96", 0),
            ("97", 0),
            ("100", 0),
            ("83.5", 2),
            ("87.5", 0),
        ]
    ],
    # SpO2 scale 2 on oxygen: 88–92 → 0, 93–94 → 1, 95–96 → 2, ≥97 → 3
    *[
        ("spo2", v, {"spo2_scale": 2, "on_oxygen": 1}, p)
        for v, p in [
            ("83", 3),
            ("84", 2),
            ("86", 1),
            ("87", 1),
            ("88", 0),
            ("92", 0),
            ("93", 1),
            ("94", 1),
            ("95", 2),
            ("96", 2),
            ("97", 3),
            ("100", 3),
            ("92.5", 1),
            ("94.5", 2),
            ("96.5", 3),
            ("92.49", 0),
        ]
    ],
    # systolic BP: ≤90 → 3, 91–100 → 2, 101–110 → 1, 111–219 → 0, ≥220 → 3
    *[
        ("systolic_bp", v, {}, p)
        for v, p in [
            ("0", 3),
            ("90", 3),
            ("91", 2),
            ("100", 2),
            ("101", 1),
            ("110", 1),
            ("111", 0),
            ("219", 0),
            ("220", 3),
            ("300", 3),
            ("90.5", 2),
            ("100.5", 1),
            ("110.5", 0),
            ("219.5", 3),
            ("219.49", 0),
        ]
    ],
    # pulse: ≤40 → 3, 41–50 → 1, 51–90 → 0, 91–110 → 1, 111–130 → 2, ≥131 → 3
    *[
        ("heart_rate", v, {}, p)
        for v, p in [
            ("0", 3),
            ("40", 3),
            ("41", 1),
            ("50", 1),
            ("51", 0),
            ("90", 0),
            ("91", 1),
            ("110", 1),
            ("111", 2),
            ("130", 2),
            ("131", 3),
            ("300", 3),
            ("40.5", 1),
            ("50.5", 0),
            ("90.5", 1),
            ("110.5", 2),
            ("130.5", 3),
        ]
    ],
    # temperature: ≤35.0 → 3, 35.1–36.0 → 1, 36.1–38.0 → 0, 38.1–39.0 → 1, ≥39.1 → 2
    *[
        ("temperature", v, {}, p)
        for v, p in [
            ("25", 3),
            ("35", 3),
            ("35.0", 3),
            ("35.1", 1),
            ("36.0", 1),
            ("36.1", 0),
            ("38.0", 0),
            ("38.1", 1),
            ("39.0", 1),
            ("39.1", 2),
            ("45", 2),
            ("34.95", 3),
            ("35.05", 1),
            ("36.05", 0),
            ("38.05", 1),
            ("39.05", 2),
            ("38.04", 0),
            ("38.049", 0),
            ("35.049", 3),
            ("40.5", 2),
        ]
    ],
    # consciousness: Alert 0; new Confusion, Voice, Pain, Unresponsive 3
    *[("consciousness", v, {}, p) for v, p in [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)]],
]


def _row_text(param: str, value: str, extra: dict[str, object]) -> dict[str, str]:
    row = {k: str(v) for k, v in NORMAL.items()}
    row.update({k: str(v) for k, v in extra.items()})
    row[param] = value
    return row


def _row_values(param: str, value: str, extra: dict[str, object]) -> dict[str, object]:
    row: dict[str, object] = dict(NORMAL)
    row.update(extra)
    row[param] = value if param == "consciousness" else float(value)
    return row


def _oxygen_points(extra: dict[str, object]) -> int:
    return 2 if extra.get("on_oxygen") == 1 else 0


@pytest.mark.parametrize(("param", "value", "extra", "points"), BOUNDARIES)
def test_band_boundary_engine_csv_and_oracle(param, value, extra, points) -> None:
    expected_total = points + _oxygen_points(extra)
    row = PARAMETERS.index(param if param != "on_oxygen" else "oxygen")

    _vitals, scores = _engine([_row_values(param, value, extra)])
    assert scores.parameter_scores is not None
    assert int(scores.parameter_scores[row, 0]) == points, "numpy engine (float input)"
    assert int(scores.news2[0]) == expected_total
    assert bool(scores.complete[0])

    csv_row = _csv([_row_text(param, value, extra)])[0]
    assert csv_row[1] == str(expected_total), f"CSV path: {csv_row}"
    assert csv_row[2] == "true"

    result = _oracle(_row_values(param, value, extra))
    assert result.points[param if param != "on_oxygen" else "oxygen"] == points, "oracle"
    assert result.news2 == expected_total


def test_oxygen_row_scores_two_on_both_scales() -> None:
    rows = [
        _row_values("on_oxygen", "0", {}),
        _row_values("on_oxygen", "1", {}),
        _row_values("on_oxygen", "1", {"spo2_scale": 2, "spo2": 90.0}),
        _row_values("on_oxygen", "0", {"spo2_scale": 2, "spo2": 90.0}),
    ]
    for r in rows:
        r["on_oxygen"] = int(float(r["on_oxygen"]))  # type: ignore[arg-type]
    _, scores = _engine(rows)
    assert scores.parameter_scores is not None
    assert scores.parameter_scores[PARAMETERS.index("oxygen")].tolist() == [0, 2, 2, 0]
    assert scores.news2.tolist() == [0, 2, 2, 0]


@pytest.mark.parametrize(
    ("text", "tenths"),
    [("38.05", 381), ("35.05", 351), ("36.05", 361), ("39.05", 391), ("38.15", 382)],
)
def test_temperature_rounds_half_up_despite_binary_floats(text: str, tenths: int) -> None:
    """38.05 is 38.04999… in binary: Python's ``round`` (and ``np.round``) give 38.0."""
    assert round(round(float(text), 1) * 10) != tenths
    vitals = VitalsArrays.from_values(
        resp_rate=[16],
        spo2=[98],
        on_oxygen=[0],
        systolic_bp=[120],
        heart_rate=[70],
        consciousness=["A"],
        temperature=[float(text)],
    )
    assert int(vitals.temperature[0]) == tenths


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20.5, 21),
        (8.5, 9),
        (90.5, 91),
        (100.5, 101),
        (219.5, 220),
        (130.5, 131),
        (91.5, 92),
        (95.5, 96),
        (93.5, 94),
        (20.49999, 20),
        (0.5, 1),
    ],
)
def test_whole_number_parameters_round_half_up(value: float, expected: int) -> None:
    vitals = VitalsArrays.from_values(
        resp_rate=[min(value, 80)],
        spo2=[min(value, 100)],
        on_oxygen=[0],
        systolic_bp=[value],
        heart_rate=[value],
        consciousness=["A"],
        temperature=[37],
    )
    assert int(vitals.systolic_bp[0]) == expected
    assert int(vitals.heart_rate[0]) == expected
    if value <= 80:
        assert int(vitals.resp_rate[0]) == expected


def test_missing_values_score_nothing_and_flag_incomplete() -> None:
    """A missing value must never land in the top band (the searchsorted/NaN trap)."""
    rows = []
    for param in NORMAL:
        if param == "spo2_scale":
            continue
        row: dict[str, object] = dict(NORMAL)
        row[param] = None
        rows.append(row)
    vitals, scores = _engine(rows)
    assert scores.news2.tolist() == [0] * len(rows)
    assert not scores.complete.any()
    assert (vitals.missing_mask() != 0).all()
    assert [RISK_NAMES[r] for r in scores.risk] == ["low"] * len(rows)


def test_nan_is_missing_too() -> None:
    vitals = VitalsArrays.from_values(
        resp_rate=[float("nan")],
        spo2=[float("nan")],
        on_oxygen=[float("nan")],
        systolic_bp=[float("nan")],
        heart_rate=[float("nan")],
        consciousness=[None],
        temperature=[float("nan")],
    )
    scores = score_vitals(vitals, POLICY)
    assert int(scores.news2[0]) == 0
    assert not scores.complete[0]
    assert int(vitals.missing_mask()[0]) == 0b1111111


def test_partial_sum_keeps_scoring_what_is_present() -> None:
    row: dict[str, object] = dict(NORMAL, resp_rate=30.0, temperature=None, spo2=None)
    _, scores = _engine([row])
    assert int(scores.news2[0]) == 3
    assert not scores.complete[0]
    assert RISK_NAMES[scores.risk[0]] == "low-medium"


@pytest.mark.parametrize(
    ("changes", "total", "risk"),
    [
        ({}, 0, "low"),
        ({"temperature": 38.5}, 1, "low"),
        ({"temperature": 38.5, "heart_rate": 115.0, "resp_rate": 10.0}, 4, "low"),
        ({"resp_rate": 25.0}, 3, "low-medium"),
        ({"resp_rate": 25.0, "temperature": 38.5}, 4, "low-medium"),
        (
            {"resp_rate": 22.0, "systolic_bp": 105.0, "heart_rate": 45.0, "temperature": 38.2},
            5,
            "medium",
        ),
        ({"resp_rate": 25.0, "heart_rate": 115.0, "temperature": 38.2}, 6, "medium"),
        ({"resp_rate": 25.0, "heart_rate": 115.0, "temperature": 39.5}, 7, "high"),
        (
            {
                "resp_rate": 5.0,
                "spo2": 80.0,
                "on_oxygen": 1,
                "systolic_bp": 80.0,
                "heart_rate": 150.0,
                "consciousness": "U",
                "temperature": 34.0,
            },
            20,
            "high",
        ),
    ],
)
def test_risk_bands(changes: dict[str, object], total: int, risk: str) -> None:
    _, scores = _engine([dict(NORMAL, **changes)])
    assert int(scores.news2[0]) == total
    assert RISK_NAMES[scores.risk[0]] == risk
    assert _oracle(dict(NORMAL, **changes)).risk == risk


def test_scale_two_is_never_inferred_from_oxygen() -> None:
    """SpO2 90 % on oxygen without the clinician's scale-2 flag is scored on scale 1."""
    _, scores = _engine([dict(NORMAL, spo2=90.0, on_oxygen=1)])
    assert scores.parameter_scores is not None
    assert int(scores.parameter_scores[PARAMETERS.index("spo2"), 0]) == 3
    assert int(scores.news2[0]) == 5


def test_scale_two_rows_mixed_with_scale_one_rows_across_blocks() -> None:
    """Scale-2 rows are rescored sparsely per block: check it across block boundaries."""
    n = 1000
    rng = np.random.default_rng(7)
    spo2 = rng.integers(80, 101, n).astype(float)
    scale = np.where(rng.random(n) < 0.3, 2, 1)
    oxygen = rng.integers(0, 2, n)
    vitals = VitalsArrays.from_values(
        resp_rate=[16.0] * n,
        spo2=spo2,
        on_oxygen=oxygen,
        systolic_bp=[120.0] * n,
        heart_rate=[70.0] * n,
        consciousness=["A"] * n,
        temperature=[37.0] * n,
        spo2_scale=scale,
    )
    small_blocks = score_vitals(vitals, POLICY, breakdown=True, block=37)
    one_block = score_vitals(vitals, POLICY, breakdown=True)
    assert small_blocks.parameter_scores is not None and one_block.parameter_scores is not None
    assert (small_blocks.parameter_scores == one_block.parameter_scores).all()
    assert (small_blocks.priority == one_block.priority).all()
    for i in range(n):
        expected = _oracle(
            dict(NORMAL, spo2=float(spo2[i]), spo2_scale=int(scale[i]), on_oxygen=int(oxygen[i]))
        )
        assert int(one_block.news2[i]) == expected.news2, i
