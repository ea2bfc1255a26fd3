"""Security and technical incidents: first-class records with a status and a follow-up.

Security incidents: failed-login bursts, break-glass accesses, audit verification
failures, device MAC failures. Technical ones: device disconnects, video stream
failures, broker loss. Each is a row of ``incidents`` with a status
(``open`` -> ``acknowledged`` -> ``closed``; reopening allowed) and an append-only list of
``incident_notes`` — the follow-up, including every status change with its author.

Every creation, change and read appends an audit event in the *same* transaction
(``incident.open``, ``incident.update``, ``incident.read``, ``incident.list``), with
record ids and codes only: titles and notes are free text and stay out of the trail.
Habilitations (who may read or change incidents) are enforced by the service layer
that calls these functions; this module records whoever it is told is acting.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from console.records._audit import AuditContext
from console.records._errors import StoreError
from console.records._store import Store

IncidentKind = Literal["security", "technical"]
Status = Literal["open", "acknowledged", "closed"]
Severity = Literal["low", "medium", "high", "critical"]

#: Categories other packages use; any lowercase slug is accepted for new ones.
KNOWN_CATEGORIES: dict[str, tuple[str, ...]] = {
    "security": ("failed-login-burst", "break-glass", "verify-failure", "mac-failure", "other"),
    "technical": ("device-disconnect", "video-failure", "broker-loss", "other"),
}

#: (from, to) status changes allowed; closing and reopening need a note saying why.
TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("open", "acknowledged"),
        ("open", "closed"),
        ("acknowledged", "closed"),
        ("acknowledged", "open"),
        ("closed", "open"),
    }
)
_NOTE_REQUIRED = {"closed", "open"}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")


class IncidentError(StoreError):
    """An incident request is invalid (unknown id, forbidden transition, missing note)."""


class IncidentNote(BaseModel):
    id: int
    time: str
    author: str
    status_from: str | None = None
    status_to: str | None = None
    note: str


class Incident(BaseModel):
    id: int
    kind: IncidentKind
    category: str
    severity: Severity
    title: str
    object: str | None = None
    status: Status
    opened_at: str
    opened_by: str
    updated_at: str
    notes: list[IncidentNote] = Field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_SELECT = (
    "SELECT id, kind, category, severity, title, object, status, opened_at, opened_by, "
    "updated_at FROM incidents"
)
_FIELDS = (
    "id",
    "kind",
    "category",
    "severity",
    "title",
    "object",
    "status",
    "opened_at",
    "opened_by",
    "updated_at",
)


def _load(conn: sqlite3.Connection, incident_id: int, with_notes: bool = True) -> Incident:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (incident_id,)).fetchone()
    if row is None:
        raise IncidentError(f"no incident {incident_id}")
    incident = Incident(**dict(zip(_FIELDS, row, strict=True)))
    if with_notes:
        notes = conn.execute(
            "SELECT id, time, author, status_from, status_to, note FROM incident_notes "
            "WHERE incident_id = ? ORDER BY id",
            (incident_id,),
        ).fetchall()
        incident.notes = [
            IncidentNote(
                id=n[0], time=n[1], author=n[2], status_from=n[3], status_to=n[4], note=n[5]
            )
            for n in notes
        ]
    return incident


def open_incident(
    store: Store,
    who: AuditContext,
    *,
    kind: IncidentKind,
    category: str,
    title: str,
    severity: Severity = "medium",
    object: str | None = None,
    note: str | None = None,
) -> Incident:
    """Record a new incident (status ``open``), audited as ``incident.open``."""
    if kind not in KNOWN_CATEGORIES:
        raise IncidentError(f"kind must be security or technical, not {kind!r}")
    if not _SLUG.match(category):
        raise IncidentError(
            f"category must be a lowercase slug such as {KNOWN_CATEGORIES[kind][0]}"
        )
    if severity not in ("low", "medium", "high", "critical"):
        raise IncidentError(f"severity must be low, medium, high or critical, not {severity!r}")
    if not title.strip():
        raise IncidentError("an incident needs a title")
    now = _now()
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO incidents (kind, category, severity, title, object, status, "
            "opened_at, opened_by, updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)",
            (kind, category, severity, title.strip(), object, now, who.actor, now),
        )
        incident_id = int(cursor.lastrowid or 0)
        note_id = None
        if note and note.strip():
            note_id = conn.execute(
                "INSERT INTO incident_notes (incident_id, time, author, status_from, "
                "status_to, note) VALUES (?, ?, ?, NULL, 'open', ?)",
                (incident_id, now, who.actor, note.strip()),
            ).lastrowid
        detail: dict[str, Any] = {"kind": kind, "category": category, "severity": severity}
        if object:
            detail["about"] = object
        if note_id is not None:
            detail["note"] = note_id
        store.append_audit(
            who.event("incident.open", f"incident:{incident_id}", detail=detail), conn
        )
        return _load(conn, incident_id)


def update_incident(
    store: Store,
    who: AuditContext,
    incident_id: int,
    *,
    status: Status | None = None,
    note: str | None = None,
) -> Incident:
    """Change the status and/or add a follow-up note, audited as ``incident.update``."""
    text = (note or "").strip()
    if status is None and not text:
        raise IncidentError("give a new status, a note, or both")
    with store.transaction() as conn:
        current = _load(conn, incident_id, with_notes=False)
        if status is not None and status != current.status:
            if (current.status, status) not in TRANSITIONS:
                raise IncidentError(
                    f"incident {incident_id} cannot go from {current.status} to {status}"
                )
            if status in _NOTE_REQUIRED and not text:
                raise IncidentError(f"say why when setting an incident {status} (--note)")
        elif status is not None and not text:
            raise IncidentError(f"incident {incident_id} is already {status}")
        new_status = status if status is not None and status != current.status else None
        now = _now()
        note_id = conn.execute(
            "INSERT INTO incident_notes (incident_id, time, author, status_from, status_to, "
            "note) VALUES (?, ?, ?, ?, ?, ?)",
            (
                incident_id,
                now,
                who.actor,
                current.status if new_status else None,
                new_status,
                text or f"status {current.status} -> {new_status}",
            ),
        ).lastrowid
        if new_status:
            conn.execute(
                "UPDATE incidents SET status = ?, updated_at = ? WHERE id = ?",
                (new_status, now, incident_id),
            )
        else:
            conn.execute("UPDATE incidents SET updated_at = ? WHERE id = ?", (now, incident_id))
        detail: dict[str, Any] = {"note": note_id}
        if new_status:
            detail.update({"status_from": current.status, "status_to": new_status})
        store.append_audit(
            who.event("incident.update", f"incident:{incident_id}", detail=detail), conn
        )
        return _load(conn, incident_id)


def get_incident(store: Store, who: AuditContext, incident_id: int) -> Incident:
    """One incident with its notes; the read is audited (``incident.read``)."""
    with store.transaction() as conn:
        incident = _load(conn, incident_id)
        store.append_audit(who.event("incident.read", f"incident:{incident_id}"), conn)
        return incident


def list_incidents(
    store: Store,
    who: AuditContext,
    *,
    status: Status | None = None,
    kind: IncidentKind | None = None,
    with_notes: bool = False,
) -> list[Incident]:
    """Incidents, newest first, optionally filtered; audited as one ``incident.list``."""
    clauses: list[str] = []
    params: list[str] = []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with store.transaction() as conn:
        ids = [
            r[0]
            for r in conn.execute(f"SELECT id FROM incidents{where} ORDER BY id DESC", params)  # noqa: S608
        ]
        incidents = [_load(conn, i, with_notes=with_notes) for i in ids]
        detail: dict[str, Any] = {"count": len(incidents)}
        if status:
            detail["status"] = status
        if kind:
            detail["kind"] = kind
        store.append_audit(who.event("incident.list", "incidents", detail=detail), conn)
        return incidents
