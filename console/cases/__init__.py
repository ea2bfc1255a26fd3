"""Clinical cases (Hub Santé model): opening rules, timeline, triage tick, decisions.

One word per concept: a *case* is the clinical episode; an *incident* is a security or
technical event (:mod:`console.records`).
"""

from console.cases._book import (
    OPEN_STATUSES,
    PARAMETER_OF_CODE,
    CaseBook,
    CaseEvent,
    ResidentView,
    resident_id,
)
from console.cases._ids import CASE_ID, CaseIdMaker

__all__ = [
    "CASE_ID",
    "OPEN_STATUSES",
    "PARAMETER_OF_CODE",
    "CaseBook",
    "CaseEvent",
    "CaseIdMaker",
    "ResidentView",
    "resident_id",
]
