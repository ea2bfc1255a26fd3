"""Reasons a physician reads: which rule fired, on which value, and what is missing.

Every suggestion carries its reasons. For the many rows of a batch they are described by
one integer key per row, computed with numpy; the text of each distinct key is built once
and cached (a batch has few distinct combinations), so explaining ten million rows costs a
dictionary lookup each.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from console.triage._arrays import (
    ALL_PRESENT,
    PARAMETER_LABELS,
    PARAMETERS,
    VitalsArrays,
)
from console.triage._news2 import (
    RISK_NAMES,
    VitalRule,
    VitalScores,
    compile_policy,
    format_centi,
    parameter_scores,
    shock_index_centi,
    vital_rules,
)
from console.triage._policy import CONSCIOUSNESS_LEVELS, Policy

SEPARATOR = "; "
NO_VITAL_SIGN = "no vital sign recorded (NEWS2 incomplete)"

# Bit layout of a vital reason key (int64).
_NEWS2, _RISK, _MISSING, _THREE, _RULES, _QSOFA, _CONS, _SCALE2, _SI = (
    0,
    5,
    7,
    14,
    21,
    25,
    27,
    30,
    31,
)


def vital_reason_keys(
    vitals: VitalsArrays, scores: VitalScores, policy: Policy
) -> NDArray[np.int64]:
    """One int64 per row describing everything its reason text depends on."""
    cp = compile_policy(policy)
    ps = scores.parameter_scores
    if ps is None:
        ps = parameter_scores(vitals, policy)
    three = np.zeros(len(vitals), np.int64)
    for bit in range(len(PARAMETERS)):
        three |= (ps[bit] >= cp.single_parameter).astype(np.int64) << bit
    rules = vital_rules(vitals, scores, policy).astype(np.int64)
    si = np.where(scores.shock_index_alert, shock_index_centi(vitals), 0).astype(np.int64)
    cons = vitals.consciousness.astype(np.int64)
    cons = np.where(cons < len(CONSCIOUSNESS_LEVELS), cons, 7)
    keys: NDArray[np.int64] = (
        scores.news2.astype(np.int64) << _NEWS2
        | scores.risk.astype(np.int64) << _RISK
        | vitals.missing_mask().astype(np.int64) << _MISSING
        | three << _THREE
        | rules << _RULES
        | scores.qsofa.astype(np.int64) << _QSOFA
        | cons << _CONS
        | (vitals.spo2_scale == 2).astype(np.int64) << _SCALE2
        | np.minimum(si, (1 << 24) - 1) << _SI
    )
    return keys


def _field(key: int, shift: int, bits: int) -> int:
    return (key >> shift) & ((1 << bits) - 1)


def _labels(mask: int, scale2: bool) -> list[str]:
    labels = []
    for bit, name in enumerate(PARAMETERS):
        if mask >> bit & 1:
            label = PARAMETER_LABELS[name]
            if name == "spo2":
                label += " scale 2" if scale2 else " scale 1"
            labels.append(label)
    return labels


def vital_reasons(key: int) -> list[str]:
    """The reasons encoded by one ``vital_reason_keys`` value, most decisive first."""
    missing = _field(key, _MISSING, 7)
    scale2 = bool(_field(key, _SCALE2, 1))
    rules = VitalRule(_field(key, _RULES, 4))
    if missing == ALL_PRESENT:
        return [NO_VITAL_SIGN]
    news2 = _field(key, _NEWS2, 5)
    parts = [f"NEWS2 {news2} ({RISK_NAMES[_field(key, _RISK, 2)]})"]
    if VitalRule.CONSCIOUSNESS in rules:
        parts.append(f"consciousness {CONSCIOUSNESS_LEVELS[_field(key, _CONS, 3)]}")
    if VitalRule.SINGLE_PARAMETER in rules:
        level = CONSCIOUSNESS_LEVELS[_field(key, _CONS, 3)] if _field(key, _CONS, 3) < 5 else ""
        for label in _labels(_field(key, _THREE, 7), scale2):
            text = label
            if label == "consciousness":
                if VitalRule.CONSCIOUSNESS in rules:
                    continue  # already said: "consciousness U"
                text = f"consciousness {level}" + (" (new confusion)" if level == "C" else "")
            parts.append(f"{text} scores 3")
    if VitalRule.QSOFA in rules:
        parts.append(f"qSOFA {_field(key, _QSOFA, 2)}")
    if VitalRule.SHOCK_INDEX in rules:
        parts.append(f"shock index {format_centi(_field(key, _SI, 24))}")
    if missing:
        parts.append(
            f"NEWS2 incomplete (missing {'/'.join(_labels(missing, scale2))}): may be higher"
        )
    return parts


class ReasonTexts(dict[int, str]):
    """``key → "reason; reason"``, built on first use; cleared when it grows too big."""

    def __init__(self, limit: int = 100_000) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, key: int) -> str:
        if len(self) >= self.limit:
            self.clear()
        text = self[key] = SEPARATOR.join(vital_reasons(key))
        return text

    def texts(self, keys: NDArray[np.int64]) -> list[str]:
        return list(map(self.__getitem__, keys.tolist()))
