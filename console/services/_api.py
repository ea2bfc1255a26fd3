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

from pydantic import BaseModel, ConfigDict

from console.auth import Action, Session, Target
from console.cases import (
    OPEN_STATUSES,
    CaseEvent,
    Decision,
    DecisionRequest,
    Decisions,
    build_compte_rendu,
    render_markdown,
    sign_compte_rendu,
)
from console.ingest import raw_opener
from console.services._compose import Services

#: Deltas a subscriber may have pending before it is told to resync.
MAX_BACKLOG = 1000
_ALARM_PRIORITIES = ("P0", "P1")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class CaseDetail(_Model):
    row: BoardRow
    timeline: tuple[TimelineEntry, ...]
    decisions: tuple[dict[str, Any], ...]
    video: tuple[dict[str, Any], ...]


class LockPolicy(_Model):
    """The privacy lock every terminal applies (console.md): after ``idle_s`` without
    input identities and free text are masked; the password unmasks, and after a lock
    longer than ``totp_after_s`` a TOTP code too. Alarms keep running meanwhile."""

    idle_s: float
    totp_after_s: float
    reauth_h: float


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
        patients: dict[str, list[str]] = {}
        for case_id, rid in store.fetchall(
            "SELECT case_id, resident_id FROM case_residents ORDER BY rowid"
        ):
            patients.setdefault(case_id, []).append(rid)
        rows = store.fetchall(f"{_ROW_SQL} {where} ORDER BY opened_ts", params)
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
            )
            for r in rows
        ]

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
                    delta = delta.model_copy(
                        update={
                            "upserts": tuple(r for r in delta.upserts if r.site == session.site),
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
        return CaseDetail(row=row, timeline=timeline, decisions=decisions, video=video)

    async def case(self, session: Session, case_id: str) -> CaseDetail:
        """A case with its timeline, decisions and video (``clinical.read``; audited)."""
        detail: CaseDetail = await self._call(self._case, session, case_id)
        return detail

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
    "BoardDelta",
    "BoardRow",
    "BoardSnapshot",
    "CaseDetail",
    "CompteRenduReply",
    "LockPolicy",
    "RegulationService",
    "TimelineEntry",
]
