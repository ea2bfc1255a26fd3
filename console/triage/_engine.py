"""The full triage of all open cases: fresh vitals, implant, bilan, trend → P0–P3/NR.

Inputs are plain arrays, one row per open case, so this package does not depend on
the message models (ingest fills them): the latest vital signs (``VitalsArrays``) with
the time each was observed, the implant conditions (``_implant``) and the nurse's bilan
flags as bit masks, and an optional ``News2History`` for deterioration.

The steps, all vectorised:

1. Freshness: a value older than the window (policy, 15 min by default; overridable by
   the installation's setting) is *stale*: shown dimmed, left out of the score, and the
   set is then incomplete.
2. A bilan's "new confusion" is the C of ACVPU (policy ``bilan.new_confusion_is_c``):
   consciousness scores as C unless a worse level was observed.
3. Vital-sign scores and vital priority (``_news2``).
4. Implant and bilan conditions reach the level the policy gives them; a NEWS2 risen by
   ≥ 3 within the hour escalates to the policy's deterioration level (P1).
5. The most urgent level wins; a case with no fresh vital sign, no implant
   condition and no bilan is NR (no clinical data yet).

Every result records the policy version and SHA-256, and can list the rules that fired
(``fired``) and their human-readable reasons (``reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntFlag
from typing import Any

import numpy as np
from numpy.typing import NDArray

from console.triage._arrays import (
    ALL_PRESENT,
    MISSING_U8,
    MISSING_U16,
    PARAMETER_FIELDS,
    PARAMETER_LABELS,
    PARAMETERS,
    VitalsArrays,
)
from console.triage._history import News2History
from console.triage._implant import CONDITION_BITS, CONDITION_TEXT, implant_level_table
from console.triage._news2 import (
    NR,
    PRIORITY_NAMES,
    VitalRule,
    VitalScores,
    compile_policy,
    score_vitals,
    vital_rules,
)
from console.triage._policy import CONSCIOUSNESS_LEVELS, BilanCondition, Policy
from console.triage._reasons import vital_reason_keys, vital_reasons


class BilanFlag(IntFlag):
    """Structured flags of the nurse's bilan (design note console.md, protocols.md §2)."""

    PRESENT = 1  # a bilan was received
    FALL = 2
    CHEST_PAIN = 4
    FAST_POSITIVE = 8
    NEW_CONFUSION = 16
    CARDIAC_ARREST = 32
    PAIN = 64  # pain score above 0


_BILAN_CONDITION_FLAGS: dict[BilanCondition, BilanFlag] = {
    BilanCondition.ANY_BILAN: BilanFlag.PRESENT,
    BilanCondition.FALL: BilanFlag.FALL,
    BilanCondition.CHEST_PAIN: BilanFlag.CHEST_PAIN,
    BilanCondition.FAST_POSITIVE: BilanFlag.FAST_POSITIVE,
    BilanCondition.NEW_CONFUSION: BilanFlag.NEW_CONFUSION,
    BilanCondition.CARDIAC_ARREST: BilanFlag.CARDIAC_ARREST,
    BilanCondition.PAIN: BilanFlag.PAIN,
}
_BILAN_TEXT: dict[BilanCondition, str] = {
    BilanCondition.ANY_BILAN: "bilan received",
    BilanCondition.FALL: "bilan: fall",
    BilanCondition.CHEST_PAIN: "bilan: chest pain",
    BilanCondition.FAST_POSITIVE: "bilan: FAST positive (stroke signs)",
    BilanCondition.NEW_CONFUSION: "bilan: new confusion",
    BilanCondition.CARDIAC_ARREST: "bilan: cardiac arrest",
    BilanCondition.PAIN: "bilan: pain",
}

# Identifiers of fired rules (``TriageResult.fired``), stable for tests and audit.
RULE_NEWS2 = "news2:P{level}"
RULE_IDS: dict[VitalRule, str] = {
    VitalRule.CONSCIOUSNESS: "consciousness",
    VitalRule.SINGLE_PARAMETER: "single_parameter",
    VitalRule.QSOFA: "qsofa",
    VitalRule.SHOCK_INDEX: "shock_index",
}
RULE_DETERIORATION = "deterioration"
RULE_NO_DATA = "no_data"


def bilan_flags(
    *,
    fall: bool = False,
    chest_pain: bool = False,
    fast_positive: bool = False,
    new_confusion: bool = False,
    cardiac_arrest: bool = False,
    pain: int | None = None,
) -> int:
    """The bit mask of one received bilan (``PRESENT`` always set)."""
    flags = BilanFlag.PRESENT
    for flag, on in (
        (BilanFlag.FALL, fall),
        (BilanFlag.CHEST_PAIN, chest_pain),
        (BilanFlag.FAST_POSITIVE, fast_positive),
        (BilanFlag.NEW_CONFUSION, new_confusion),
        (BilanFlag.CARDIAC_ARREST, cardiac_arrest),
        (BilanFlag.PAIN, bool(pain)),
    ):
        if on:
            flags |= flag
    return int(flags)


@dataclass(frozen=True)
class TriageInputs:
    """Everything triage reads, one row per open case.

    Attributes:
        vitals: latest value of each parameter (rounded, see ``VitalsArrays``).
        observed_at: (7, n) float64 epoch seconds at which each ``PARAMETERS`` value was
            observed (NaN: unknown, taken as fresh); None: every value is fresh.
        implant: uint16 ``ImplantCondition`` bits (``implant_severity(...).bits``).
        bilan: uint8 ``BilanFlag`` bits (0: no bilan).
    """

    vitals: VitalsArrays
    observed_at: NDArray[np.float64] | None = None
    implant: NDArray[np.uint16] | None = None
    bilan: NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        n = len(self.vitals)
        if self.observed_at is not None and self.observed_at.shape != (len(PARAMETERS), n):
            raise ValueError(f"observed_at must have shape (7, {n})")
        for name in ("implant", "bilan"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                raise ValueError(f"{name} must have {n} rows")


@dataclass(frozen=True)
class TriageResult:
    """Priority suggestion of every case, with what it rests on.

    Attributes:
        priority: index in ``PRIORITY_NAMES`` (0-3 = P0-P3, 4 = NR).
        vitals: scores of the fresh values (``scored``).
        scored: the values that entered the score (stale ones removed, bilan C applied).
        stale: bit ``i`` set when ``PARAMETERS[i]`` was left out as stale.
        rise: NEWS2 now minus the lowest inside the deterioration window (0 without
            history).
        deteriorating: ``rise`` reached the policy's threshold.
        implant: implant condition bits; bilan: bilan flag bits.
    """

    priority: NDArray[np.uint8]
    vitals: VitalScores
    scored: VitalsArrays
    stale: NDArray[np.uint8]
    rise: NDArray[np.int16]
    deteriorating: NDArray[np.bool_]
    implant: NDArray[np.uint16]
    bilan: NDArray[np.uint8]
    policy: Policy

    @property
    def policy_version(self) -> str:
        return self.policy.version

    @property
    def policy_sha256(self) -> str:
        return self.policy.sha256

    def __len__(self) -> int:
        return len(self.priority)

    def priority_names(self) -> list[str]:
        return [PRIORITY_NAMES[p] for p in self.priority.tolist()]

    def fired(self, row: int) -> frozenset[str]:
        """Identifiers of the rules that fired for ``row`` (see ``RULE_*``)."""
        if self.priority[row] == NR:
            return frozenset({RULE_NO_DATA})
        cp = compile_policy(self.policy)
        one = self.scored.take([row])
        scores = self.vitals.take(np.array([row]))
        rules: set[str] = set()
        news2 = int(scores.news2[0])
        for minimum, level in cp.news2_levels:
            if news2 >= minimum:
                rules.add(RULE_NEWS2.format(level=level))
                break
        bits = VitalRule(int(vital_rules(one, scores, self.policy)[0]))
        rules.update(RULE_IDS[r] for r in RULE_IDS if r in bits)
        implant = int(self.implant[row])
        rules.update(f"implant:{c.value}" for c, bit in CONDITION_BITS.items() if implant & bit)
        bilan = int(self.bilan[row])
        levels = self.policy.priority.levels()
        for lv in levels:
            for condition in lv.bilan:
                if bilan & _BILAN_CONDITION_FLAGS[condition]:
                    rules.add(f"bilan:{condition.value}")
        if self.deteriorating[row]:
            rules.add(RULE_DETERIORATION)
        return frozenset(rules)

    def reasons(self, row: int) -> list[str]:
        """What a physician reads for ``row``, most decisive first."""
        texts: list[str] = []
        if self.priority[row] == NR:
            texts.append("no clinical data yet (no fresh vital sign, implant alert or bilan)")
            return texts + self._stale_text(row)
        one = self.scored.take([row])
        scores = self.vitals.take(np.array([row]))
        if one.missing_mask()[0] != ALL_PRESENT:
            texts.extend(vital_reasons(int(vital_reason_keys(one, scores, self.policy)[0])))
        implant = int(self.implant[row])
        texts.extend(text for c, text in CONDITION_TEXT.items() if implant & CONDITION_BITS[c])
        bilan = int(self.bilan[row])
        for condition, flag in _BILAN_CONDITION_FLAGS.items():
            if condition is not BilanCondition.ANY_BILAN and bilan & flag:
                texts.append(_BILAN_TEXT[condition])
        if bilan and not any(t.startswith("bilan:") for t in texts):
            texts.append(_BILAN_TEXT[BilanCondition.ANY_BILAN])
        if self.deteriorating[row]:
            window = int(self.policy.deterioration.window_s // 60)
            texts.append(f"NEWS2 risen by {int(self.rise[row])} within {window} min")
        return texts + self._stale_text(row)

    def _stale_text(self, row: int) -> list[str]:
        stale = int(self.stale[row])
        if not stale:
            return []
        names = [PARAMETER_LABELS[p] for bit, p in enumerate(PARAMETERS) if stale >> bit & 1]
        return [f"stale (left out of the score): {'/'.join(names)}"]


def _apply_freshness(
    vitals: VitalsArrays, observed_at: NDArray[np.float64] | None, now: float, window_s: float
) -> tuple[VitalsArrays, NDArray[np.uint8]]:
    n = len(vitals)
    stale_bits = np.zeros(n, np.uint8)
    if observed_at is None:
        return vitals, stale_bits
    with np.errstate(invalid="ignore"):
        old = (now - observed_at) > window_s  # NaN (unknown) compares False: fresh
    if not old.any():
        return vitals, stale_bits
    columns: dict[str, NDArray[Any]] = {}
    for bit, name in enumerate(PARAMETERS):
        field = PARAMETER_FIELDS[name]
        column = getattr(vitals, field)
        sentinel = MISSING_U8 if column.dtype == np.uint8 else MISSING_U16
        stale = old[bit] & (column != sentinel)
        if stale.any():
            column = column.copy()
            column[stale] = sentinel
            stale_bits |= stale.astype(np.uint8) << np.uint8(bit)
        columns[field] = column
    return replace(vitals, **columns), stale_bits


def triage(
    inputs: TriageInputs,
    policy: Policy,
    *,
    now: float,
    history: News2History | None = None,
    record: bool = True,
    freshness_s: float | None = None,
) -> TriageResult:
    """Suggest a priority for every open case (see the module docstring).

    Args:
        inputs: the cases' arrays.
        policy: the triage policy.
        now: current time, epoch seconds (a virtual clock in replays).
        history: NEWS2 per minute for deterioration, rows aligned with ``inputs``.
        record: also record this NEWS2 into ``history`` (after measuring the rise).
        freshness_s: the installation's freshness window; the policy's when None.
    """
    vitals_in = inputs.vitals
    n = len(vitals_in)
    window = policy.freshness.window_s if freshness_s is None else freshness_s
    fresh, stale = _apply_freshness(vitals_in, inputs.observed_at, now, window)
    bilan = inputs.bilan if inputs.bilan is not None else np.zeros(n, np.uint8)
    implant = inputs.implant if inputs.implant is not None else np.zeros(n, np.uint16)

    if policy.bilan.new_confusion_is_c:
        confused = (bilan & np.uint8(BilanFlag.NEW_CONFUSION)) != 0
        a_code = CONSCIOUSNESS_LEVELS.index("A")
        lift = confused & ((fresh.consciousness == a_code) | (fresh.consciousness == MISSING_U8))
        if lift.any():
            cons = fresh.consciousness.copy()
            cons[lift] = CONSCIOUSNESS_LEVELS.index("C")
            fresh = replace(fresh, consciousness=cons)

    scores = score_vitals(fresh, policy)
    priority = scores.priority.copy()

    levels = policy.priority.levels()
    for level, lv in enumerate(levels):
        for condition in lv.bilan:
            hit = (bilan & np.uint8(_BILAN_CONDITION_FLAGS[condition])) != 0
            priority = np.where(hit, np.minimum(priority, level), priority).astype(np.uint8)
    implant_level = implant_level_table(policy)[implant]
    priority = np.minimum(priority, implant_level)

    if history is not None:
        rise = history.rise(now, scores.news2)
        if record:
            history.record(now, scores.news2)
    else:
        rise = np.zeros(n, np.int16)
    deteriorating = rise >= policy.deterioration.rise
    for level, lv in enumerate(levels):
        if lv.deterioration:
            priority = np.where(deteriorating, np.minimum(priority, level), priority)
    priority = priority.astype(np.uint8)

    no_vitals = fresh.missing_mask() == ALL_PRESENT
    no_data = no_vitals & (implant == 0) & (bilan == 0)
    no_data_level = PRIORITY_NAMES.index(policy.priority.no_data.engine)
    priority[no_data] = no_data_level
    return TriageResult(
        priority=priority,
        vitals=scores,
        scored=fresh,
        stale=stale,
        rise=rise,
        deteriorating=deteriorating,
        implant=implant,
        bilan=bilan,
        policy=policy,
    )
