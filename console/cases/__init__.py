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
from console.cases._breakdown import ParameterPoints, TriageBreakdown, triage_breakdown
from console.cases._codes import LISTS, CodeList, CodesError, default_dir, load_codes
from console.cases._decisions import (
    Decision,
    DecisionError,
    DecisionRequest,
    Decisions,
    code_labels,
)
from console.cases._ids import CASE_ID, CaseIdMaker
from console.cases._lifecycle import (
    STEPS,
    CaseError,
    ManualCaseRequest,
    StatusRequest,
    advance,
    open_by_hand,
)
from console.cases._report import (
    ReportError,
    build_compte_rendu,
    render_markdown,
    sign_compte_rendu,
)

__all__ = [
    "CASE_ID",
    "LISTS",
    "OPEN_STATUSES",
    "PARAMETER_OF_CODE",
    "STEPS",
    "CaseBook",
    "CaseError",
    "CaseEvent",
    "CaseIdMaker",
    "CodeList",
    "CodesError",
    "Decision",
    "DecisionError",
    "DecisionRequest",
    "Decisions",
    "ManualCaseRequest",
    "ParameterPoints",
    "ReportError",
    "ResidentView",
    "StatusRequest",
    "TriageBreakdown",
    "advance",
    "build_compte_rendu",
    "code_labels",
    "default_dir",
    "load_codes",
    "open_by_hand",
    "render_markdown",
    "resident_id",
    "sign_compte_rendu",
    "triage_breakdown",
]
