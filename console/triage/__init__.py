"""Vectorised triage: NEWS2, qSOFA, shock index, implant alerts → priority P0–P3.

Triage suggests; the régulation physician decides. The engine scores every open
case at once from a struct-of-arrays (``VitalsArrays``) under a versioned policy
(``policy_v1.toml``, shipped with the package); every result carries the policy version
and SHA-256 and can list its reasons. ``_oracle`` is an independent plain-Python scorer
kept as the test oracle and benchmark baseline.

Entry points:
    - ``score_vitals``: vital-sign scores and priority (what ``samu triage score`` uses).
    - ``triage``: the full suggestion with freshness, implant, bilan and deterioration.
    - ``score_csv``: the ``samu triage score`` CSV contract, streamed in chunks.
"""

from console.triage._arrays import (
    ALL_PRESENT,
    MISSING_U8,
    MISSING_U16,
    PARAMETER_LABELS,
    PARAMETERS,
    VitalsArrays,
    consciousness_codes,
)
from console.triage._csv import (
    DEFAULT_CHUNK_ROWS,
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    CsvInputError,
    ScoreReport,
    score_csv,
)
from console.triage._engine import (
    BilanFlag,
    TriageInputs,
    TriageResult,
    bilan_flags,
    triage,
)
from console.triage._history import News2History
from console.triage._implant import (
    CONDITION_BITS,
    ImplantAlertName,
    ImplantSeverity,
    ImplantStatus,
    implant_conditions,
    implant_severity,
)
from console.triage._news2 import (
    PRIORITY_NAMES,
    RISK_NAMES,
    VitalRule,
    VitalScores,
    format_centi,
    parameter_scores,
    score_vitals,
    shock_index_centi,
    vital_rules,
)
from console.triage._policy import (
    CONSCIOUSNESS_LEVELS,
    BilanCondition,
    ImplantCondition,
    Policy,
    default_policy,
    default_policy_bytes,
    load_policy,
)
from console.triage._reasons import vital_reasons

__all__ = [
    "ALL_PRESENT",
    "CONDITION_BITS",
    "CONSCIOUSNESS_LEVELS",
    "DEFAULT_CHUNK_ROWS",
    "INPUT_COLUMNS",
    "MISSING_U8",
    "MISSING_U16",
    "OUTPUT_COLUMNS",
    "PARAMETERS",
    "PARAMETER_LABELS",
    "PRIORITY_NAMES",
    "RISK_NAMES",
    "BilanCondition",
    "BilanFlag",
    "CsvInputError",
    "ImplantAlertName",
    "ImplantCondition",
    "ImplantSeverity",
    "ImplantStatus",
    "News2History",
    "Policy",
    "ScoreReport",
    "TriageInputs",
    "TriageResult",
    "VitalRule",
    "VitalScores",
    "VitalsArrays",
    "bilan_flags",
    "consciousness_codes",
    "default_policy",
    "default_policy_bytes",
    "format_centi",
    "implant_conditions",
    "implant_severity",
    "load_policy",
    "parameter_scores",
    "score_csv",
    "score_vitals",
    "shock_index_centi",
    "triage",
    "vital_reasons",
    "vital_rules",
]
