"""Plain-Python triage scorer, written apart from the numpy engine: the test oracle.

Same specification (design note triage.md), deliberately different code: one patient at
a time, an ``if``/``elif`` ladder per chart row transcribed from the RCP NEWS2 chart,
rounding in :mod:`decimal`, the shock index in :mod:`fractions`, thresholds hard-coded
from the contract rather than read from the policy file. If the engine, the policy file
or the compiled chains drift from the chart, the two disagree and the property tests say
where. It is also the benchmark's baseline (what a straightforward implementation costs).

Values are taken as given: ``Decimal``, ``int``, ``str`` (exact decimal text) or ``float``
(read as the shortest decimal its ``repr`` shows, ``38.05`` for 38.05); ``None`` or NaN is
missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

Number = Decimal | int | float | str | None

# Rule identifiers, spelled out here independently of the engine's (tests compare them).
RULE_NEWS2_P0 = "news2:P0"
RULE_CONSCIOUSNESS_U = "consciousness"
RULE_NEWS2_P1 = "news2:P1"
RULE_SINGLE_PARAMETER = "single_parameter"
RULE_QSOFA = "qsofa"
RULE_SHOCK_INDEX = "shock_index"
RULE_NEWS2_P2 = "news2:P2"


@dataclass(frozen=True)
class OracleVitals:
    """One patient's latest vital signs (see the module docstring for value types)."""

    resp_rate: Number = None
    spo2: Number = None
    spo2_scale: int = 1
    on_oxygen: bool | None = None
    systolic_bp: Number = None
    heart_rate: Number = None
    consciousness: str | None = None
    temperature: Number = None


@dataclass(frozen=True)
class OracleResult:
    news2: int
    complete: bool
    risk: str
    qsofa: int
    shock_index: str
    shock_index_alert: bool
    priority: Literal["P0", "P1", "P2", "P3"]
    points: dict[str, int] = field(default_factory=dict)
    rules: frozenset[str] = frozenset()


def _decimal(value: Number) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return None if value.is_nan() else value
    return Decimal(value)


def round_half_up(value: Number, places: int) -> Decimal | None:
    """Half up (ties away from zero, the chart's convention) to ``places`` decimals."""
    d = _decimal(value)
    if d is None:
        return None
    return d.quantize(Decimal(10) ** -places, rounding=ROUND_HALF_UP)


def resp_rate_points(rr: Decimal) -> int:
    if rr <= 8:
        return 3
    elif rr <= 11:
        return 1
    elif rr <= 20:
        return 0
    elif rr <= 24:
        return 2
    else:
        return 3


def spo2_points(spo2: Decimal, scale: int, on_oxygen: bool) -> int:
    if scale == 1:
        if spo2 <= 91:
            return 3
        elif spo2 <= 93:
            return 2
        elif spo2 <= 95:
            return 1
        else:
            return 0
    if spo2 <= 83:
        return 3
    elif spo2 <= 85:
        return 2
    elif spo2 <= 87:
        return 1
    elif spo2 <= 92 or not on_oxygen:
        return 0
    elif spo2 <= 94:
        return 1
    elif spo2 <= 96:
        return 2
    else:
        return 3


def oxygen_points(on_oxygen: bool) -> int:
    return 2 if on_oxygen else 0


def systolic_points(sbp: Decimal) -> int:
    if sbp <= 90:
        return 3
    elif sbp <= 100:
        return 2
    elif sbp <= 110:
        return 1
    elif sbp <= 219:
        return 0
    else:
        return 3


def pulse_points(hr: Decimal) -> int:
    if hr <= 40:
        return 3
    elif hr <= 50:
        return 1
    elif hr <= 90:
        return 0
    elif hr <= 110:
        return 1
    elif hr <= 130:
        return 2
    else:
        return 3


def consciousness_points(level: str) -> int:
    if level == "A":
        return 0
    elif level in ("C", "V", "P", "U"):
        return 3
    raise ValueError(f"unknown consciousness level {level!r}")


def temperature_points(temp: Decimal) -> int:
    if temp <= Decimal("35.0"):
        return 3
    elif temp <= Decimal("36.0"):
        return 1
    elif temp <= Decimal("38.0"):
        return 0
    elif temp <= Decimal("39.0"):
        return 1
    else:
        return 2


def score(v: OracleVitals) -> OracleResult:
    """Score one patient per the contract, vital-sign rules only (``samu triage score``)."""
    rr = round_half_up(v.resp_rate, 0)
    spo2 = round_half_up(v.spo2, 0)
    sbp = round_half_up(v.systolic_bp, 0)
    hr = round_half_up(v.heart_rate, 0)
    temp = round_half_up(v.temperature, 1)
    for value in (rr, spo2, sbp, hr, temp):
        if value is not None and value < 0:
            raise ValueError("negative vital sign")

    points: dict[str, int] = {}
    if rr is not None:
        points["resp_rate"] = resp_rate_points(rr)
    if spo2 is not None:
        points["spo2"] = spo2_points(spo2, v.spo2_scale, v.on_oxygen is True)
    if v.on_oxygen is not None:
        points["oxygen"] = oxygen_points(v.on_oxygen)
    if sbp is not None:
        points["systolic_bp"] = systolic_points(sbp)
    if hr is not None:
        points["heart_rate"] = pulse_points(hr)
    if v.consciousness is not None:
        points["consciousness"] = consciousness_points(v.consciousness)
    if temp is not None:
        points["temperature"] = temperature_points(temp)

    news2 = sum(points.values())
    complete = len(points) == 7
    some_three = any(p == 3 for p in points.values())
    if news2 >= 7:
        risk = "high"
    elif news2 >= 5:
        risk = "medium"
    elif some_three:
        risk = "low-medium"
    else:
        risk = "low"

    qsofa = 0
    if rr is not None and rr >= 22:
        qsofa += 1
    if sbp is not None and sbp <= 100:
        qsofa += 1
    if v.consciousness is not None and v.consciousness != "A":
        qsofa += 1

    shock_index = ""
    alert = False
    if hr is not None and sbp is not None and sbp != 0:
        ratio = Fraction(int(hr)) / Fraction(int(sbp))
        hundredths = math.floor(ratio * 100 + Fraction(1, 2))
        shock_index = f"{hundredths // 100}.{hundredths % 100:02d}"
        alert = ratio >= 1

    rules: set[str] = set()
    if news2 >= 7:
        rules.add(RULE_NEWS2_P0)
    if v.consciousness == "U":
        rules.add(RULE_CONSCIOUSNESS_U)
    if 5 <= news2 <= 6:
        rules.add(RULE_NEWS2_P1)
    if some_three:
        rules.add(RULE_SINGLE_PARAMETER)
    if qsofa >= 2:
        rules.add(RULE_QSOFA)
    if alert:
        rules.add(RULE_SHOCK_INDEX)
    if 1 <= news2 <= 4:
        rules.add(RULE_NEWS2_P2)

    priority: Literal["P0", "P1", "P2", "P3"]
    if RULE_NEWS2_P0 in rules or RULE_CONSCIOUSNESS_U in rules:
        priority = "P0"
    elif rules & {RULE_NEWS2_P1, RULE_SINGLE_PARAMETER, RULE_QSOFA, RULE_SHOCK_INDEX}:
        priority = "P1"
    elif RULE_NEWS2_P2 in rules:
        priority = "P2"
    else:
        priority = "P3"
    return OracleResult(
        news2=news2,
        complete=complete,
        risk=risk,
        qsofa=qsofa,
        shock_index=shock_index,
        shock_index_alert=alert,
        priority=priority,
        points=points,
        rules=frozenset(rules),
    )


# --- the CSV contract, one row at a time -------------------------------------------

_LIMITS = {
    "resp_rate": (Decimal(0), Decimal(80)),
    "spo2": (Decimal(0), Decimal(100)),
    "systolic_bp": (Decimal(0), Decimal(300)),
    "heart_rate": (Decimal(0), Decimal(300)),
    "temperature": (Decimal(25), Decimal(45)),
}


def _is_plain_number(text: str) -> bool:
    """Sign, digits with at most one point (at least one digit), optional exponent."""
    i, n = 0, len(text)
    if i < n and text[i] in "+-":
        i += 1
    digits = 0
    while i < n and text[i].isascii() and text[i].isdigit():
        i += 1
        digits += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i].isascii() and text[i].isdigit():
            i += 1
            digits += 1
    if digits == 0:
        return False
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        exp_digits = 0
        while i < n and text[i].isascii() and text[i].isdigit():
            i += 1
            exp_digits += 1
        if exp_digits == 0:
            return False
    return i == n


def csv_row(cells: dict[str, str]) -> tuple[list[str], bool]:
    """The contract's output columns for one input row, and whether the row is bad.

    Returns ``([id, news2, news2_complete, news2_risk, qsofa, shock_index, priority], bad)``;
    the reasons column is free text and is checked separately.
    """
    bad = False
    values: dict[str, Decimal | None] = {}
    for name, (low, high) in _LIMITS.items():
        text = cells[name].strip()
        if text == "":
            values[name] = None
            continue
        if not _is_plain_number(text):
            bad = True
            continue
        try:
            number = Decimal(text)
        except InvalidOperation:
            bad = True
            continue
        if not low <= number <= high:
            bad = True
            continue
        values[name] = number
    scale_text = cells["spo2_scale"].strip()
    scale = 1
    if scale_text == "2":
        scale = 2
    elif scale_text not in ("", "1"):
        bad = True
    oxygen_text = cells["on_oxygen"].strip()
    on_oxygen: bool | None = None
    if oxygen_text == "1":
        on_oxygen = True
    elif oxygen_text == "0":
        on_oxygen = False
    elif oxygen_text != "":
        bad = True
    level = cells["consciousness"].strip()
    if level not in ("", "A", "C", "V", "P", "U"):
        bad = True
    if bad:
        return [cells["id"], "", "", "", "", "", ""], True
    result = score(
        OracleVitals(
            resp_rate=values["resp_rate"],
            spo2=values["spo2"],
            spo2_scale=scale,
            on_oxygen=on_oxygen,
            systolic_bp=values["systolic_bp"],
            heart_rate=values["heart_rate"],
            consciousness=level or None,
            temperature=values["temperature"],
        )
    )
    return [
        cells["id"],
        str(result.news2),
        "true" if result.complete else "false",
        result.risk,
        str(result.qsofa),
        result.shock_index,
        result.priority,
    ], False


# --- the full policy, one case at a time ---------------------------------------

IMPLANT_LEVELS: dict[str, int] = {
    "shock_unsuccessful": 0,
    "therapies_exhausted": 0,
    "electrical_storm": 0,
    "shock_delivered": 1,
    "vt_vf_recent": 1,
    "battery_eos": 1,
    "lead_impedance_out_of_range": 1,
    "battery_rrt": 2,
    "atp_delivered": 2,
    "af_burden_over_threshold": 2,
    "transmitter_disconnected": 2,
    "other_implant_alert": 2,
}
BILAN_LEVELS: dict[str, int] = {"cardiac_arrest": 0, "fast_positive": 1, "chest_pain": 1}
_VITAL_FIELDS = (
    "resp_rate",
    "spo2",
    "on_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
)


@dataclass(frozen=True)
class OracleCase:
    """One open case as the policy sees it.

    Attributes:
        vitals: latest values.
        ages_s: age of each value by ``OracleVitals`` field name (absent: fresh).
        implant: implant conditions present (``ImplantCondition`` values).
        bilan: bilan flags (cardiac_arrest, fast_positive, chest_pain, fall, pain,
            new_confusion); ``bilan_received`` says whether a bilan came at all.
        history: earlier NEWS2 as ``(age_s, news2)``.
    """

    vitals: OracleVitals
    ages_s: dict[str, float] = field(default_factory=dict)
    implant: frozenset[str] = frozenset()
    bilan: frozenset[str] = frozenset()
    bilan_received: bool = False
    history: tuple[tuple[float, int], ...] = ()


def triage(
    case: OracleCase,
    *,
    freshness_s: float = 900.0,
    window_s: float = 3600.0,
    rise: int = 3,
) -> tuple[str, frozenset[str]]:
    """Priority (P0-P3 or NR) and the identifiers of the rules that fired."""
    kept: dict[str, Any] = {}
    for name in _VITAL_FIELDS:
        value = getattr(case.vitals, name)
        age = case.ages_s.get(name)
        kept[name] = None if age is not None and age > freshness_s else value
    if "new_confusion" in case.bilan and kept["consciousness"] in (None, "A"):
        kept["consciousness"] = "C"
    vitals = OracleVitals(spo2_scale=case.vitals.spo2_scale, **kept)
    result = score(vitals)

    rule_levels = {
        RULE_NEWS2_P0: 0,
        RULE_CONSCIOUSNESS_U: 0,
        RULE_NEWS2_P1: 1,
        RULE_SINGLE_PARAMETER: 1,
        RULE_QSOFA: 1,
        RULE_SHOCK_INDEX: 1,
        RULE_NEWS2_P2: 2,
    }
    fired: dict[str, int] = {r: rule_levels[r] for r in result.rules}
    for condition in case.implant:
        fired[f"implant:{condition}"] = IMPLANT_LEVELS[condition]
    for flag in case.bilan:
        if flag in BILAN_LEVELS:
            fired[f"bilan:{flag}"] = BILAN_LEVELS[flag]
    if case.bilan_received:
        fired["bilan:any_bilan"] = 2
    earlier = [s for age, s in case.history if age <= window_s]
    if earlier and result.news2 - min(earlier) >= rise:
        fired["deterioration"] = 1

    no_vitals = all(
        kept[name] is None or (isinstance(kept[name], float) and math.isnan(kept[name]))
        for name in _VITAL_FIELDS
    )
    if no_vitals and not case.implant and not case.bilan_received:
        return "NR", frozenset({"no_data"})
    level = min(fired.values(), default=3)
    return f"P{level}", frozenset(fired)
