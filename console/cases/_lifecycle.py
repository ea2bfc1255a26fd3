"""A case's life outside the automatic opening rules: opened by hand on a call, and the
steps after the régulation.

Status, as in the Hub Santé model (cases.md): ``PROGRAM`` → ``ACTIF`` → ``ACHEVE`` →
``VALIDE`` → ``CLOTURE``.

* ``ACTIF`` — open: by a bilan, an implant alert, vitals reaching P0/P1, or by hand
  when someone calls the centre (:func:`open_by_hand`, source ``call``).
* ``ACHEVE`` — the régulation is over: its compte rendu is signed (``_report``). The
  case leaves the board.
* ``VALIDE`` — a régulation physician has reread the finished dossier and validates it
  as complete and exact. That is a medical act, so it sits in the matrix row "take a
  régulation decision, sign a compte rendu" (``case.validate``: régulateur only).
* ``CLOTURE`` — the dossier is closed: nothing is added to it any more. Closing a
  validated dossier is the administrative end of the work the ARM began by creating
  it, so it sits in the row "create a case" (``case.close``: régulateur or ARM).

Steps only go forward and one at a time (a dossier is not validated before its compte
rendu is signed, nor closed before it is validated); each step is a ``status``
timeline event and an audit event, in one transaction, and a refused step is audited
like any refusal. A finished case is never reopened: what arrives about the resident
afterwards opens a new case (the case book sees the status in the database, so a step
taken from another process — ``samu records`` — counts as well).

A case opened by hand carries coded facts only (the Hub Santé *motif* and who called,
from the official lists): free text about a patient is clinical data and belongs in a
sealed record (the decision's reason, the bilan), not in the clear timeline.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from console.auth import AccountService, Action, Session, Target
from console.cases._book import SOURCES, open_case_of, resident_id
from console.cases._codes import load_codes
from console.cases._ids import CaseIdMaker
from console.ingest import iso
from console.records import Store
from protocols.vocab import ID_PATTERN

#: Each step: the status it leaves → (the status it reaches, the action it needs).
STEPS: dict[str, tuple[str, Action]] = {
    "ACHEVE": ("VALIDE", Action.CASE_VALIDATE),
    "VALIDE": ("CLOTURE", Action.CASE_CLOSE),
}
_BEFORE = {to: before for before, (to, _) in STEPS.items()}
_WHY_NOT = {
    "VALIDE": "its compte rendu must be signed first (the régulation is not over)",
    "CLOTURE": "it must be validated first",
}


class CaseError(ValueError):
    """A case step or a manual case is refused (the message says why; audited)."""


class ManualCaseRequest(BaseModel):
    """A case opened by hand: a call about a resident of an EHPAD."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field(pattern=ID_PATTERN)
    resident: str = Field(pattern=ID_PATTERN)
    #: Hub Santé ``motif`` code (``M03.06`` Douleur thoracique …).
    motif: str = Field(min_length=1, max_length=20)
    #: Hub Santé ``typeAppelant`` code (``PROFSANTE`` …), when known.
    caller: str | None = Field(None, min_length=1, max_length=20)


class StatusRequest(BaseModel):
    """One step of a finished case: validate it, or close it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str = Field(min_length=1, max_length=100)
    to: Literal["VALIDE", "CLOTURE"]


def _labels(request: ManualCaseRequest, codes_dir: Path | None) -> dict[str, str]:
    lists = load_codes(codes_dir)
    labels = {"motif": lists["motif"].label(request.motif)}
    if request.caller is not None:
        labels["caller"] = lists["caller"].label(request.caller)
    return labels


def _known_resident(store: Store, site: str, ref: str) -> bool:
    """Known at the site: monitored (data received) or bound to a device."""
    return (
        store.fetchone("SELECT 1 FROM residents WHERE site = ? AND ref = ?", (site, ref))
        or store.fetchone(
            "SELECT 1 FROM devices WHERE site = ? AND patient = ? LIMIT 1", (site, ref)
        )
    ) is not None


def open_by_hand(
    store: Store,
    accounts: AccountService,
    session: Session,
    request: ManualCaseRequest,
    *,
    centre: str,
    codes_dir: Path | None = None,
    now: datetime,
) -> tuple[str, bool]:
    """Open a case on a call (``case.create``), or join the resident's open case.

    Returns (case id, opened now). An open case for the resident is reused, never
    duplicated (cases.md): the call is then a ``call`` event on it.

    Raises:
        Denied: the session's roles do not allow ``case.create`` (audited).
        CaseError: an unknown resident, or a code not in its list (audited).
        CodesError: the nomenclatures are missing.
    """
    target = Target(f"resident:{resident_id(request.site, request.resident)}", site=request.site)
    auth = accounts.authorize(session, Action.CASE_CREATE, target)

    def refuse(reason: str) -> CaseError:
        accounts.audit(
            session, "case.create", target.ref, outcome="denied", detail={"reason": reason}
        )
        return CaseError(reason)

    try:
        labels = _labels(request, codes_dir)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    rid = resident_id(request.site, request.resident)
    ts = now.timestamp()
    # Checked before the transaction, so the refusal's audit event is not rolled back
    # with it (residents are never deleted: the answer cannot change meanwhile).
    if not _known_resident(store, request.site, request.resident):
        raise refuse(
            f"no resident {request.resident!r} at site {request.site!r}: a case by hand is"
            " for a resident the centre knows (a bound device or data received)"
        )
    with store.transaction() as conn:
        detail = {
            "source": "call",
            "by": f"user:{session.user_id}",
            "motif": request.motif,
            "labels": labels,
            **({"caller": request.caller} if request.caller else {}),
        }
        existing = open_case_of(conn, rid)
        if existing is not None:
            case_id, opened = existing, False
            (text,) = conn.execute(
                "SELECT sources FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
            sources = json.loads(text)
            if "call" not in sources:
                sources = [s for s in SOURCES if s in {*sources, "call"}]
            conn.execute(
                "UPDATE cases SET sources = ?, updated_at = ? WHERE case_id = ?",
                (json.dumps(sources, separators=(",", ":")), iso(ts), case_id),
            )
            _timeline(conn, case_id, ts, "call", detail)
        else:
            conn.execute(
                "INSERT OR IGNORE INTO residents (resident_id, site, ref, first_seen)"
                " VALUES (?, ?, ?, ?)",
                (rid, request.site, request.resident, iso(ts)),
            )
            case_id, opened = CaseIdMaker(centre).next(conn, ts), True
            conn.execute(
                "INSERT INTO cases (case_id, centre, site, status, opened_at, opened_ts,"
                " updated_at, opened_by, sources) VALUES (?, ?, ?, 'ACTIF', ?, ?, ?, ?, ?)",
                (case_id, centre, request.site, iso(ts), ts, iso(ts),
                 f"user:{session.user_id}", '["call"]'),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO case_residents (case_id, resident_id) VALUES (?, ?)", (case_id, rid)
            )
            _timeline(conn, case_id, ts, "opened", detail)
        accounts.audit(
            session,
            "case.create" if opened else "case.join",  # an auditor counts real creations
            f"case:{case_id}",
            role=auth.role,
            purpose=auth.purpose,
            detail={"resident": rid, "opened": opened, "motif": request.motif},
            conn=conn,
        )
    return case_id, opened


def advance(
    store: Store,
    accounts: AccountService,
    session: Session,
    request: StatusRequest,
    *,
    now: datetime,
) -> str:
    """Take one step of a finished case (validate, close); returns the new status.

    Raises:
        Denied: the session's roles do not allow the step (audited).
        CaseError: no such case, or not at the status the step leaves (audited).
    """
    before = _BEFORE[request.to]
    _, action = STEPS[before]
    ref = f"case:{request.case_id}"
    row = store.fetchone("SELECT site FROM cases WHERE case_id = ?", (request.case_id,))
    if row is None:
        reason = f"no case {request.case_id!r} (case ids are listed by samu records cases)"
        accounts.audit(session, str(action), ref, outcome="failure", detail={"reason": reason})
        raise CaseError(reason)
    auth = accounts.authorize(session, action, Target(ref, site=row[0]))
    stamp = now.astimezone(UTC)
    with store.transaction() as conn:
        (status,) = conn.execute(
            "SELECT status FROM cases WHERE case_id = ?", (request.case_id,)
        ).fetchone()
        if status != before:
            reason = _refusal(request.case_id, status, request.to)
            accounts.audit(
                session, str(action), ref, outcome="denied", detail={"reason": reason}, conn=conn
            )
            # The refusal is recorded: commit it, then refuse.
            error = CaseError(reason)
        else:
            error = None
            conn.execute(
                "UPDATE cases SET status = ?, updated_at = ? WHERE case_id = ?",
                (request.to, stamp.isoformat(), request.case_id),
            )
            _timeline(
                conn,
                request.case_id,
                stamp.timestamp(),
                "status",
                {"from": before, "to": request.to, "by": f"user:{session.user_id}"},
            )
            accounts.audit(
                session,
                str(action),
                ref,
                role=auth.role,
                purpose=auth.purpose,
                detail={"from": before, "to": request.to},
                conn=conn,
            )
    if error is not None:
        raise error
    return request.to


def _refusal(case_id: str, status: str, to: str) -> str:
    """Why ``case_id``, at ``status``, cannot step to ``to``."""
    if status == to:
        return f"case {case_id} is already {to}"
    order = ("PROGRAM", "ACTIF", "ACHEVE", "VALIDE", "CLOTURE")
    if order.index(status) < order.index(_BEFORE[to]):
        return f"case {case_id} is {status}, not {_BEFORE[to]}: {_WHY_NOT[to]}"
    return f"case {case_id} is {status}: a finished step is not taken again"


def _timeline(
    conn: sqlite3.Connection, case_id: str, ts: float, kind: str, detail: Mapping[str, object]
) -> None:
    conn.execute(
        "INSERT INTO case_timeline (case_id, at, kind, detail) VALUES (?, ?, ?, ?)",
        (case_id, iso(ts), kind, json.dumps(detail, ensure_ascii=False, separators=(",", ":"))),
    )
