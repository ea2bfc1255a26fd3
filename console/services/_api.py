"""The one service API every front end uses: the Textual console, replay, remote terminals.

Async, pydantic in and out (so the same calls can travel over MQTT to a remote terminal
unchanged), the habilitation matrix checked inside every call and every call audited
(records-security.md). Nothing here imports Textual.

The board is a **snapshot plus keyed, versioned deltas**: :meth:`RegulationService.board`
returns every open case with the board's version; :meth:`RegulationService.updates`
yields :class:`BoardDelta` s, each with the next version, the rows that changed (keyed by
case id, the newest state only) and the **alarms** — a new P0/P1, an implant P0/P1 alert
— every one of them, in order, never coalesced: a render tick may merge two updates of a
row, it may never merge two alarms. A subscriber that falls more than
:data:`MAX_BACKLOG` deltas behind is told to take a fresh snapshot (``resync``) rather
than being fed an unbounded queue, and its pending alarms are kept in that resync.

All database work runs on the core's single writer thread (the hub's), or inline when
the caller runs the core itself (replay, tests).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from console.auth import Action, Session, Target
from console.cases import (
    OPEN_STATUSES,
    CaseEvent,
    Decision,
    DecisionRequest,
    Decisions,
    ManualCaseRequest,
    StatusRequest,
    advance,
    build_compte_rendu,
    open_by_hand,
    render_markdown,
    sign_compte_rendu,
)
from console.ingest import iso, raw_opener
from console.services._compose import Services
from protocols import printable

#: Deltas a subscriber may have pending before it is told to resync.
MAX_BACKLOG = 1000
_ALARM_PRIORITIES = ("P0", "P1")


def _displayable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _displayable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_displayable(v) for v in value)
    return value


class _Model(BaseModel):
    """A reply to a front end. Every string in it is display-safe: a control character
    that came from outside (a bilan, a Hub Santé import, a typed reason) is shown as a
    visible escape, never sent to a terminal (:func:`protocols.printable`). The store
    keeps the text as received; only what is shown is escaped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _escape_controls(cls, data: Any) -> Any:
        return _displayable(data) if isinstance(data, dict) else data


class BoardRow(_Model):
    """One open case as the board shows it (no identity: the board is masked)."""

    case_id: str
    site: str
    patients: tuple[str, ...]
    status: str
    suggested_priority: str
    decided_priority: str | None
    news2: int | None
    news2_complete: bool
    qsofa: int | None
    reasons: tuple[str, ...]
    implant_alerts: tuple[str, ...]
    sources: tuple[str, ...]
    opened_at: str
    updated_at: str
    #: Latest video-link event of the case (``consent_granted``, ``stream_started`` …).
    video: str | None = None


class Alarm(_Model):
    """Something a physician must see now; never merged with another."""

    kind: Literal["priority", "implant"]
    case_id: str
    priority: str
    at: str
    reasons: tuple[str, ...] = ()


class BoardSnapshot(_Model):
    version: int
    rows: tuple[BoardRow, ...]


class BoardDelta(_Model):
    version: int
    upserts: tuple[BoardRow, ...] = ()
    removed: tuple[str, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    resync: bool = False


class TimelineEntry(_Model):
    at: str
    kind: str
    detail: dict[str, Any]


class ParameterView(_Model):
    """One NEWS2 parameter of a triage result: the value used and its points."""

    parameter: str
    label: str
    value: str | None
    points: int


class TriageView(_Model):
    """A case's latest triage result with its score breakdown (console.cases)."""

    at: str
    priority: str
    news2: int | None
    complete: bool
    qsofa: int | None
    reasons: tuple[str, ...]
    policy_version: str
    policy_sha256: str
    parameters: tuple[ParameterView, ...]
    note: str | None = None


class BilanView(_Model):
    """A nurse's bilan on a case, as the physician reads it (the sealed message opened
    under ``clinical.read``): the reason for calling, free text, flags and the DLU."""

    at: str
    site: str
    nurse: str
    complaint: str
    notes: str | None
    flags: tuple[str, ...]
    on_oxygen: bool | None
    history: tuple[str, ...] = ()
    allergies: tuple[str, ...] = ()
    treatments: tuple[str, ...] = ()
    advance_directives: str | None = None
    palliative_care: bool = False


class CaseDetail(_Model):
    row: BoardRow
    timeline: tuple[TimelineEntry, ...]
    decisions: tuple[dict[str, Any], ...]
    video: tuple[dict[str, Any], ...]
    triage: TriageView | None = None
    bilans: tuple[BilanView, ...] = ()


class VitalPoint(_Model):
    """One stored observation of a case's resident (LOINC code, value, time)."""

    resident: str
    code: str
    value: float | None
    coded: str | None
    unit: str | None
    device: str
    at: float


class DeviceRow(_Model):
    """A device as the Devices screen lists it (no patient identity)."""

    site: str
    device: str
    kind: str
    state: str
    last_seen: str | None
    battery_pct: int | None
    frames: int
    errors: int
    quarantined: int


class TrailEntry(_Model):
    """One audit event: who did what to which record, when, and the outcome."""

    seq: int
    time: str
    actor: str
    role: str
    action: str
    object: str
    outcome: str


class AuditStatus(_Model):
    """What an auditor checks first: is the trail intact, what incidents are open."""

    status: str
    events: int
    checkpoints: int
    uncovered: int
    error: str | None
    incidents: tuple[dict[str, Any], ...]


class VideoEntry(_Model):
    """An operator's entry on a case's video link (cases.md: who consented, their
    relation, how); the gateway's own events arrive through ingest."""

    case_id: str = Field(min_length=1, max_length=100)
    event: Literal["link_sent", "consent_granted", "consent_refused", "consent_withdrawn"]
    session: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    by: str | None = Field(None, max_length=200)
    relation: str | None = Field(None, max_length=200)
    how: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _consent_says_who(self) -> VideoEntry:
        if self.event.startswith("consent_") and not (self.by and self.by.strip()):
            raise ValueError("a consent entry says who gave or refused it (by)")
        return self


class LockPolicy(_Model):
    """The privacy lock every terminal applies (console.md): after ``idle_s`` without
    input identities and free text are masked; the password unmasks, and after a lock
    longer than ``totp_after_s`` a TOTP code too. Alarms keep running meanwhile."""

    idle_s: float
    totp_after_s: float
    reauth_h: float


class ExportReply(_Model):
    """A case exported for another system (console.interop), as text to save."""

    case_id: str
    format: Literal["fhir", "rs-eda"]
    media_type: str
    text: str


class ManualCaseReply(_Model):
    """The case a call was recorded on, and whether it was opened by this call."""

    case_id: str
    opened: bool


class CompteRenduReply(_Model):
    case_id: str
    markdown: str
    report: dict[str, Any]
    report_id: str | None = None


_ROW_SQL = (
    "SELECT case_id, site, status, suggested_priority, decided_priority, news2,"
    " news2_complete, qsofa, reasons, implant_alerts, sources, opened_at, updated_at"
    " FROM cases"
)


class RegulationService:
    """The service API (see the module docstring).

    Args:
        services: the assembled system.
        run: how to run a database call: on the core's writer thread (the hub passes its
            executor call), or inline (the default, for replay and tests).
    """

    def __init__(
        self,
        services: Services,
        *,
        run: Callable[..., Any] | None = None,
    ) -> None:
        self._services = services
        self._run = run
        self._version = 0
        self._subscribers: list[asyncio.Queue[BoardDelta]] = []
        self._policy: Any = None
        self._decisions = Decisions(
            services.store,
            services.accounts,
            services.master_key,
            codes_dir=services.settings.hub_sante_dir,
        )

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._run is None:
            return fn(*args)
        return await self._run(fn, *args)

    # ------------------------------------------------------------------ sessions

    @property
    def lock_policy(self) -> LockPolicy:
        """The installation's privacy-lock and session settings, for every terminal."""
        console = self._services.settings.console
        return LockPolicy(
            idle_s=console.lock_idle_s,
            totp_after_s=console.totp_after_lock_s,
            reauth_h=console.reauth_h,
        )

    async def login(self, user_id: str, password: str, totp: str, terminal: str) -> Session:
        """Password + TOTP (back-off and audit in the account service)."""
        session: Session = await self._call(
            self._services.accounts.login, user_id, password, totp, terminal
        )
        return session

    async def logout(self, session: Session) -> None:
        await self._call(self._services.accounts.logout, session)

    async def unlock(self, session: Session, password: str) -> None:
        """Lift the privacy lock (console.md)."""
        await self._call(self._services.accounts.unlock, session, password)

    # ------------------------------------------------------------------ board

    def _rows(self, where: str = "", params: Sequence[Any] = ()) -> list[BoardRow]:
        store = self._services.store
        rows = store.fetchall(f"{_ROW_SQL} {where} ORDER BY opened_ts", params)
        patients: dict[str, list[str]] = {}
        video: dict[str, str] = {}
        if rows:
            marks = ",".join("?" * len(rows))
            # Only these cases' patients: the table holds every case ever opened.
            for case_id, rid in store.fetchall(
                f"SELECT case_id, resident_id FROM case_residents WHERE case_id IN ({marks})"  # noqa: S608
                " ORDER BY rowid",
                [r[0] for r in rows],
            ):
                patients.setdefault(case_id, []).append(rid)
            sql = f"SELECT case_ref, event FROM video_events WHERE case_ref IN ({marks})"  # noqa: S608
            for case_ref, event in store.fetchall(
                f"{sql} AND event != 'stream_quality' ORDER BY event_id",
                [r[0] for r in rows],
            ):
                video[case_ref] = event
        return [
            BoardRow(
                case_id=r[0],
                site=r[1],
                patients=tuple(patients.get(r[0], [])),
                status=r[2],
                suggested_priority=r[3],
                decided_priority=r[4],
                news2=r[5],
                news2_complete=bool(r[6]),
                qsofa=r[7],
                reasons=tuple(json.loads(r[8])),
                implant_alerts=tuple(json.loads(r[9])),
                sources=tuple(json.loads(r[10])),
                opened_at=r[11],
                updated_at=r[12],
                video=video.get(r[0]),
            )
            for r in rows
        ]

    def replay_board(self) -> list[BoardRow]:
        """The open cases of a replay's store, for the tester's live view.

        A replay's store is created for the run and thrown away: it holds a scenario's
        pseudonymous residents and no account, so there is no session to check and no
        one to trace (and auditing a read twice a second would be the replay's own
        noise in its trail). That is also the guard: a store with any account is a real
        one and is refused — real boards are read with a session, through :meth:`board`.

        Raises:
            PermissionError: the store has accounts.
        """
        store = self._services.store
        (accounts,) = store.fetchone("SELECT count(*) FROM accounts") or (0,)
        if accounts:
            raise PermissionError("replay_board reads a replay's store only (it has accounts)")
        return self._rows("WHERE status IN ('PROGRAM', 'ACTIF')")

    def _board(self, session: Session) -> BoardSnapshot:
        auth = self._services.accounts.authorize(session, Action.BOARD_VIEW, _board_target(session))
        rows = self._rows("WHERE status IN ('PROGRAM', 'ACTIF')")
        if session.site is not None:  # an EHPAD nurse sees her own site only
            rows = [r for r in rows if r.site == session.site]
        self._services.accounts.audit(
            session,
            "board.view",
            "board",
            role=auth.role,
            purpose=auth.purpose,
            detail={"cases": len(rows)},
        )
        return BoardSnapshot(version=self._version, rows=tuple(rows))

    def _finished(self, session: Session, limit: int) -> list[BoardRow]:
        auth = self._services.accounts.authorize(session, Action.BOARD_VIEW, _board_target(session))
        where = "WHERE status IN ('ACHEVE', 'VALIDE')"
        params: tuple[Any, ...] = ()
        if session.site is not None:
            where, params = f"{where} AND site = ?", (session.site,)
        rows = self._rows(where, params)
        rows = sorted(rows, key=lambda r: r.updated_at, reverse=True)[:limit]
        self._services.accounts.audit(
            session, "board.finished", "board", role=auth.role, purpose=auth.purpose,
            detail={"cases": len(rows)},
        )  # fmt: skip
        return rows

    async def finished(self, session: Session, limit: int = 200) -> list[BoardRow]:
        """Finished cases still to be validated (``ACHEVE``) or closed (``VALIDE``),
        newest first (``board.view``; audited): where the steps after the régulation
        are taken (:meth:`advance_case`)."""
        rows: list[BoardRow] = await self._call(self._finished, session, limit)
        return rows

    async def board(self, session: Session) -> BoardSnapshot:
        """Every open case (``board.view``; audited)."""
        snapshot: BoardSnapshot = await self._call(self._board, session)
        return snapshot

    async def updates(self, session: Session) -> AsyncIterator[BoardDelta]:
        """Board deltas from now on (``board.view`` checked at subscription)."""
        await self._call(
            self._services.accounts.authorize, session, Action.BOARD_VIEW, _board_target(session)
        )
        queue: asyncio.Queue[BoardDelta] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                delta = await queue.get()
                if session.site is not None:
                    # A nurse's board is her own site's (records-security.md): the rows
                    # and the alarms about them, nothing of another site's cases.
                    mine = tuple(r for r in delta.upserts if r.site == session.site)
                    ids = {r.case_id for r in mine}
                    delta = delta.model_copy(
                        update={
                            "upserts": mine,
                            "alarms": tuple(a for a in delta.alarms if a.case_id in ids),
                        }
                    )
                yield delta
        finally:
            self._subscribers.remove(queue)

    def _delta(self, events: Sequence[CaseEvent]) -> BoardDelta | None:
        """Rows touched by ``events`` (newest state) and every alarm among them."""
        touched = sorted({e.case_id for e in events if e.case_id})
        alarms: list[Alarm] = []
        for e in events:
            if e.case_id is None:
                continue
            at = datetime.fromtimestamp(e.at, UTC).isoformat()
            if e.event == "priority_changed" and e.detail.get("to") in _ALARM_PRIORITIES:
                alarms.append(
                    Alarm(
                        kind="priority",
                        case_id=e.case_id,
                        priority=str(e.detail["to"]),
                        at=at,
                        reasons=tuple(e.detail.get("reasons", ())),
                    )
                )
            elif e.event == "implant_alert":
                alarms.append(
                    Alarm(
                        kind="implant",
                        case_id=e.case_id,
                        priority="P1",
                        at=at,
                        reasons=tuple(e.detail.get("alerts", ())),
                    )
                )
        if not touched and not alarms:
            return None
        placeholders = ",".join("?" * len(touched))
        rows = self._rows(f"WHERE case_id IN ({placeholders})", touched) if touched else []
        upserts = tuple(r for r in rows if r.status in OPEN_STATUSES)
        removed = tuple(r.case_id for r in rows if r.status not in OPEN_STATUSES)
        self._version += 1
        return BoardDelta(
            version=self._version, upserts=upserts, removed=removed, alarms=tuple(alarms)
        )

    def publish(self, events: Sequence[CaseEvent]) -> None:
        """Feed the core's events (after a batch or a tick) to every subscriber."""
        delta = self._delta(events)
        if delta is None:
            return
        for queue in list(self._subscribers):
            if queue.qsize() >= MAX_BACKLOG:
                kept = [a for d in _drain(queue) for a in d.alarms]
                queue.put_nowait(
                    BoardDelta(
                        version=delta.version,
                        alarms=(*kept, *delta.alarms),
                        resync=True,
                    )
                )
            else:
                queue.put_nowait(delta)

    # ------------------------------------------------------------------ a case

    def _case(self, session: Session, case_id: str) -> CaseDetail:
        rows = self._rows("WHERE case_id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id!r}")
        row = rows[0]
        auth = self._services.accounts.authorize(
            session, Action.CLINICAL_READ, Target(f"case:{case_id}", site=row.site)
        )
        store = self._services.store
        timeline = tuple(
            TimelineEntry(at=at, kind=kind, detail=json.loads(detail))
            for at, kind, detail in store.fetchall(
                "SELECT at, kind, detail FROM case_timeline WHERE case_id = ? ORDER BY event_id",
                (case_id,),
            )
        )
        decisions = tuple(d.as_dict() for d in self._decisions.of_case(case_id))
        video = tuple(
            {"session": v[0], "event": v[1], "at": v[2], "by": v[3], "relation": v[4]}
            for v in store.fetchall(
                "SELECT session, event, at, consent_by, relation FROM video_events"
                " WHERE case_ref = ? ORDER BY event_id",
                (case_id,),
            )
        )
        self._services.accounts.audit(
            session,
            "case.read",
            f"case:{case_id}",
            role=auth.role,
            purpose=auth.purpose,
        )
        return CaseDetail(
            row=row, timeline=timeline, decisions=decisions, video=video,
            triage=self._triage(case_id), bilans=self._bilans(timeline),
        )  # fmt: skip

    def _bilans(self, timeline: Sequence[TimelineEntry]) -> tuple[BilanView, ...]:
        """The bilans of a case's timeline, opened from their sealed messages (the
        caller holds ``clinical.read`` on the case; the read is audited with it)."""
        from protocols import BilanBody, EnvelopeError, parse_envelope

        opener = raw_opener(self._services.master_key)
        out: list[BilanView] = []
        seen: set[int] = set()
        for entry in timeline:
            msg_id = entry.detail.get("message")
            if entry.kind != "bilan" or not isinstance(msg_id, int) or msg_id in seen:
                continue
            seen.add(msg_id)
            row = self._services.store.fetchone(
                "SELECT site, received_at, raw FROM ingest_messages WHERE msg_id = ?", (msg_id,)
            )
            if row is None:
                continue
            try:
                body = parse_envelope(opener(bytes(row[2]))).body
            except (EnvelopeError, ValueError):
                continue  # a Hub Santé bilan (not an envelope) is read by the interop views
            if not isinstance(body, BilanBody):
                continue
            f = body.flags
            flags = [name for name, on in (("chute", f.fall), ("douleur thoracique", f.chest_pain),
                     ("confusion nouvelle", f.new_confusion), ("arrêt cardiaque", f.cardiac_arrest),
                     ("FAST positif", bool(f.fast and f.fast.positive))) if on]  # fmt: skip
            if f.pain is not None:
                flags.append(f"douleur {f.pain}/10")
            dlu = body.dlu
            out.append(BilanView(
                at=row[1], site=row[0], nurse=body.nurse.name, complaint=body.complaint,
                notes=body.notes, flags=tuple(flags), on_oxygen=body.on_oxygen,
                history=tuple(dlu.history) if dlu else (),
                allergies=tuple(dlu.allergies) if dlu else (),
                treatments=tuple(dlu.treatments) if dlu else (),
                advance_directives=dlu.advance_directives if dlu else None,
                palliative_care=bool(dlu and dlu.palliative_care),
            ))  # fmt: skip
        return tuple(out)

    def _triage(self, case_id: str) -> TriageView | None:
        from dataclasses import asdict

        from console.cases import triage_breakdown
        from console.triage import default_policy

        if self._policy is None:
            self._policy = default_policy()  # the core's policy (console/triage)
        got = triage_breakdown(self._services.store, case_id, self._policy)
        return None if got is None else TriageView.model_validate(asdict(got))

    async def case(self, session: Session, case_id: str) -> CaseDetail:
        """A case with its timeline, decisions and video (``clinical.read``; audited)."""
        detail: CaseDetail = await self._call(self._case, session, case_id)
        return detail

    def _case_target(self, case_id: str) -> Target:
        rows = self._rows("WHERE case_id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id!r}")
        return Target(f"case:{case_id}", site=rows[0].site)

    def _vitals(self, session: Session, case_id: str, since_s: float) -> list[VitalPoint]:
        target = self._case_target(case_id)
        auth = self._services.accounts.authorize(session, Action.CLINICAL_READ, target)
        store = self._services.store
        residents = [
            r for (r,) in store.fetchall(
                "SELECT resident_id FROM case_residents WHERE case_id = ?", (case_id,)
            )
        ]  # fmt: skip
        out: list[VitalPoint] = []
        for rid in residents:
            site, _, resident = rid.partition("/")
            # The window ends at the newest observation, not at "now": a resident whose
            # devices went quiet still shows their last hour (the age says how old it is).
            newest = store.fetchone(
                "SELECT max(observed_ts) FROM observations WHERE site = ? AND resident = ?",
                (site, resident),
            )
            if newest is None or newest[0] is None:
                continue
            since = float(newest[0]) - since_s
            out += [
                VitalPoint(resident=rid, code=c, value=v, coded=k, unit=u, device=d, at=t)
                for c, v, k, u, d, t in store.fetchall(
                    "SELECT code, value, coded, unit, device, observed_ts FROM observations"
                    " WHERE site = ? AND resident = ? AND observed_ts >= ?"
                    " ORDER BY observed_ts",
                    (site, resident, since),
                )
            ]
        self._services.accounts.audit(
            session, "case.vitals", target.ref, role=auth.role, purpose=auth.purpose
        )
        return out

    async def vitals(
        self, session: Session, case_id: str, *, since_s: float = 86_400.0
    ) -> list[VitalPoint]:
        """The case's residents' observations over ``since_s`` up to their newest one
        (``clinical.read``; audited), oldest first: what the trend plots draw."""
        points: list[VitalPoint] = await self._call(self._vitals, session, case_id, since_s)
        return points

    def _trail(self, session: Session, case_id: str) -> list[TrailEntry]:
        target = self._case_target(case_id)
        self._services.accounts.authorize(session, Action.CLINICAL_READ, target)
        rows = self._services.store.fetchall(
            "SELECT seq, time, actor, role, action, object, outcome FROM audit_events"
            " WHERE object = ? ORDER BY seq DESC LIMIT 500",
            (target.ref,),
        )
        self._services.accounts.audit(session, "case.trail", target.ref)
        return [
            TrailEntry(seq=r[0], time=r[1], actor=r[2], role=r[3], action=r[4], object=r[5],
                       outcome=r[6])
            for r in rows
        ]  # fmt: skip

    async def trail(self, session: Session, case_id: str) -> list[TrailEntry]:
        """Who accessed this case's record, newest first (``clinical.read``; audited)."""
        entries: list[TrailEntry] = await self._call(self._trail, session, case_id)
        return entries

    def _devices(self, session: Session) -> list[DeviceRow]:
        self._services.accounts.authorize(session, Action.BOARD_VIEW, _board_target(session))
        rows = self._services.store.fetchall(
            "SELECT site, device, kind, state, last_seen, battery_pct, frames, errors,"
            " quarantined FROM devices ORDER BY site, device"
        )
        out = [
            DeviceRow(site=r[0], device=r[1], kind=r[2], state=r[3], last_seen=r[4],
                      battery_pct=r[5], frames=r[6], errors=r[7], quarantined=r[8])
            for r in rows
            if session.site is None or r[0] == session.site
        ]  # fmt: skip
        self._services.accounts.audit(session, "devices.view", "devices")
        return out

    async def devices(self, session: Session) -> list[DeviceRow]:
        """Every enrolled device with its state, battery and error counts (``board.view``)."""
        rows: list[DeviceRow] = await self._call(self._devices, session)
        return rows

    def _audit_search(self, session: Session, text: str, limit: int) -> list[TrailEntry]:
        self._services.accounts.authorize(session, Action.AUDIT_READ, Target("audit"))
        like = f"%{text}%"
        rows = self._services.store.fetchall(
            "SELECT seq, time, actor, role, action, object, outcome FROM audit_events"
            " WHERE actor LIKE ? OR action LIKE ? OR object LIKE ?"
            " ORDER BY seq DESC LIMIT ?",
            (like, like, like, limit),
        )
        self._services.accounts.audit(session, "audit.search", "audit", detail={"text": text[:100]})
        return [
            TrailEntry(seq=r[0], time=r[1], actor=r[2], role=r[3], action=r[4], object=r[5],
                       outcome=r[6])
            for r in rows
        ]  # fmt: skip

    async def audit_search(
        self, session: Session, text: str = "", *, limit: int = 200
    ) -> list[TrailEntry]:
        """Trail search for auditors (``audit.read``; the search itself is audited)."""
        entries: list[TrailEntry] = await self._call(self._audit_search, session, text, limit)
        return entries

    def _audit_status(self, session: Session) -> AuditStatus:
        from console.records import verify_trail

        self._services.accounts.authorize(session, Action.AUDIT_READ, Target("audit"))
        report = verify_trail(self._services.db_path)
        incidents = tuple(
            {"id": r[0], "kind": r[1], "category": r[2], "severity": r[3], "title": r[4],
             "status": r[5], "opened_at": r[6]}
            for r in self._services.store.fetchall(
                "SELECT id, kind, category, severity, title, status, opened_at FROM incidents"
                " WHERE status != 'closed' ORDER BY id DESC LIMIT 200"
            )
        )  # fmt: skip
        self._services.accounts.audit(
            session, "audit.verify", "audit", detail={"status": report.status}
        )
        return AuditStatus(
            status=report.status,
            events=report.events,
            checkpoints=report.checkpoints,
            uncovered=report.uncovered,
            error=report.error,
            incidents=incidents,
        )

    async def audit_status(self, session: Session) -> AuditStatus:
        """Verify the trail now and list open incidents (``audit.read``; audited)."""
        status: AuditStatus = await self._call(self._audit_status, session)
        return status

    def _residents(self, session: Session, site: str) -> list[str]:
        self._services.accounts.authorize(session, Action.BOARD_VIEW, Target("board", site=site))
        store = self._services.store
        found = {
            r for (r,) in store.fetchall(
                "SELECT DISTINCT patient FROM devices WHERE site = ? AND patient IS NOT NULL",
                (site,),
            )
        } | {
            r for (r,) in store.fetchall(
                "SELECT DISTINCT resident FROM observations WHERE site = ?"
                " AND resident IS NOT NULL",
                (site,),
            )
        }  # fmt: skip
        self._services.accounts.audit(session, "residents.list", f"site:{site}")
        return sorted(found)

    async def residents(self, session: Session, site: str) -> list[str]:
        """The resident references known at ``site`` (bound devices, observations);
        pseudonymous refs only — the EHPAD's roster holds the identities."""
        refs: list[str] = await self._call(self._residents, session, site)
        return refs

    def _video_entry(self, session: Session, entry: VideoEntry) -> str:
        target = self._case_target(entry.case_id)
        auth = self._services.accounts.authorize(session, Action.CONSENT_RECORD, target)
        store = self._services.store
        video_session = entry.session
        if video_session is None:
            known = store.fetchone(
                "SELECT session FROM video_events WHERE case_ref = ? ORDER BY event_id DESC",
                (entry.case_id,),
            )
            video_session = known[0] if known else f"vs-{entry.case_id.rsplit('.', 1)[-1]}"[:64]
        now = datetime.now(UTC)
        detail = {
            "session": video_session,
            "event": entry.event,
            "by": entry.by,
            "relation": entry.relation,
            "how": entry.how,
            "recorded_by": session.user_id,
        }
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO video_events (session, case_ref, msg_id, event, at, consent_by,"
                " relation, how, loss_pct, recorded_by) VALUES (?, ?, 0, ?, ?, ?, ?, ?, NULL, ?)",
                (video_session, entry.case_id, entry.event, now.isoformat(), entry.by,
                 entry.relation, entry.how, f"user:{session.user_id}"),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO case_timeline (case_id, at, kind, detail) VALUES (?, ?, 'video', ?)",
                (entry.case_id, iso(now.timestamp()),
                 json.dumps({k: v for k, v in detail.items() if v is not None},
                            ensure_ascii=False)),
            )  # fmt: skip
            self._services.accounts.audit(
                session,
                f"video.{entry.event}",
                target.ref,
                role=auth.role,
                purpose=auth.purpose,
                detail={"session": video_session},
                conn=conn,
            )
        return video_session

    async def video_entry(self, session: Session, entry: VideoEntry) -> str:
        """Record a link sent, or the caller's consent given, refused or withdrawn
        (``consent.record``; audited with the change). Returns the video session id."""
        video_session: str = await self._call(self._video_entry, session, entry)
        self.publish([CaseEvent("video", entry.case_id, None, datetime.now(UTC).timestamp())])
        return video_session

    async def open_case(self, session: Session, request: ManualCaseRequest) -> ManualCaseReply:
        """Open a case by hand on a call (``case.create``; audited), or join the
        resident's open case: a case is never duplicated (cases.md)."""
        services = self._services
        settings = services.settings
        now = datetime.now(UTC)

        def call() -> tuple[str, bool]:
            return open_by_hand(
                services.store,
                services.accounts,
                session,
                request,
                centre=settings.centre,
                codes_dir=settings.hub_sante_dir,
                now=now,
            )

        case_id, opened = await self._call(call)
        rid = f"{request.site}/{request.resident}"
        event = "case_opened" if opened else "call"
        self.publish([CaseEvent(event, case_id, rid, now.timestamp(), {"source": "call"})])
        return ManualCaseReply(case_id=case_id, opened=opened)

    async def advance_case(self, session: Session, request: StatusRequest) -> str:
        """Validate (``case.validate``) or close (``case.close``) a finished case, one
        step at a time; returns the new status (console.cases._lifecycle)."""
        services = self._services
        now = datetime.now(UTC)
        status: str = await self._call(
            lambda: advance(services.store, services.accounts, session, request, now=now)
        )
        self.publish([CaseEvent("status", request.case_id, None, now.timestamp(), {"to": status})])
        return status

    def codes(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Each decision field's official codes with their French labels (select lists).

        Raises:
            CodesError: the nomenclatures are missing (``hub_sante_dir``).
        """
        from console.cases import load_codes

        lists = load_codes(self._services.settings.hub_sante_dir)
        return {name: tuple(lst.labels.items()) for name, lst in lists.items()}

    async def decide(self, session: Session, request: DecisionRequest) -> Decision:
        """Record and sign a decision (``decision.take``; reason on override; audited)."""
        decision: Decision = await self._call(
            lambda: self._decisions.decide(session, request, now=datetime.now(UTC))
        )
        self.publish([CaseEvent("decision", request.case_id, None, datetime.now(UTC).timestamp())])
        return decision

    def _compte_rendu(self, session: Session, case_id: str, sign: bool) -> CompteRenduReply:
        services = self._services
        rows = self._rows("WHERE case_id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id!r}")
        action = Action.REPORT_SIGN if sign else Action.CLINICAL_READ
        services.accounts.authorize(session, action, Target(f"case:{case_id}", site=rows[0].site))
        report = build_compte_rendu(
            services.store,
            self._decisions,
            case_id,
            open_raw=raw_opener(services.master_key),
            now=datetime.now(UTC),
        )
        report_id = None
        if sign:
            report_id = sign_compte_rendu(
                services.store, services.accounts, services.master_key, session, report
            )
        else:
            services.accounts.audit(session, "report.read", f"case:{case_id}")
        return CompteRenduReply(
            case_id=case_id, markdown=render_markdown(report), report=report, report_id=report_id
        )

    def _export(self, session: Session, case_id: str, fmt: str) -> ExportReply:
        from console.cases import default_dir
        from console.interop import export_rs_eda, fhir_bundle, load_case, load_schemas

        services = self._services
        rows = self._rows("WHERE case_id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id!r}")
        auth = services.accounts.authorize(
            session, Action.CLINICAL_READ, Target(f"case:{case_id}", site=rows[0].site)
        )
        data = load_case(services.store, services.accounts, services.master_key, case_id)
        if fmt == "fhir":
            text, media = fhir_bundle(data, identity=False), "application/fhir+json"
        elif fmt == "rs-eda":
            directory = services.settings.hub_sante_dir or default_dir()
            message = {"createCaseHealth": export_rs_eda(data, directory, identity=False).wire()}
            result = load_schemas(directory.resolve()).validate(message)
            if not result.ok:  # never hand out a message the hub would refuse
                raise ValueError("; ".join(str(i) for i in result.issues[:5]))
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            media = "application/json"
        else:
            raise ValueError(f"format {fmt!r}: fhir or rs-eda")
        services.accounts.audit(
            session, "report.export", f"case:{case_id}", detail={"format": fmt},
            role=auth.role, purpose=auth.purpose,
        )  # fmt: skip
        return ExportReply(case_id=case_id, format=fmt, media_type=media, text=text)

    async def export_compte_rendu(self, session: Session, case_id: str, fmt: str) -> ExportReply:
        """The case as a FHIR R4 document Bundle (``fhir``) or a Hub Santé RS-EDA message
        validated against the official schemas (``rs-eda``), without identity traits
        (``clinical.read``; audited as ``report.export``)."""
        reply: ExportReply = await self._call(self._export, session, case_id, fmt)
        return reply

    async def compte_rendu(
        self, session: Session, case_id: str, *, sign: bool = False
    ) -> CompteRenduReply:
        """Preview (``clinical.read``) or sign (``report.sign``) a case's compte rendu."""
        reply: CompteRenduReply = await self._call(self._compte_rendu, session, case_id, sign)
        if sign:
            self.publish([CaseEvent("compte_rendu", case_id, None, datetime.now(UTC).timestamp())])
        return reply


def _board_target(session: Session) -> Target:
    """The board a session asks for: an EHPAD nurse's is her own site's."""
    return Target("board", site=session.site)


def _drain(queue: asyncio.Queue[BoardDelta]) -> list[BoardDelta]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


__all__ = [
    "Alarm",
    "AuditStatus",
    "BoardDelta",
    "BoardRow",
    "BoardSnapshot",
    "CaseDetail",
    "CompteRenduReply",
    "DeviceRow",
    "LockPolicy",
    "RegulationService",
    "TimelineEntry",
    "TrailEntry",
    "VideoEntry",
    "VitalPoint",
]
