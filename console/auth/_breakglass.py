"""Break-glass: opening a record outside one's habilitation, with a reason, for 15 min.

In an emergency the rules must not stand between a clinician and a patient's data
(an ARM covering another site, a nurse helping a neighbouring EHPAD), but every such
access must be justified, short and looked at afterwards. So:

* a reason is required (non-blank, kept in the grant and in the audit ``purpose`` as
  ``break-glass: <reason>``, the flag auditors filter on);
* the grant covers one object for one user and expires 15 minutes after it is given
  (injectable clock; no renewal without a new reason and a new trace);
* only read actions (board, identity and clinical detail) can be opened this way, and
  only by holders of a clinical role — an ``admin`` or ``auditeur`` has no care
  relationship with patients, so "emergency" cannot justify their reading clinical data;
* every grant is listed for auditor review until an auditor marks it reviewed, and
  opens a ``security`` incident (category ``break-glass``) in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from console.auth._habilitations import (
    BREAK_GLASS_ACTIONS,
    CLINICAL_ROLES,
    Action,
    Denied,
    require,
)
from console.auth._sessions import Clock, Session, system_clock
from console.records import AuditContext, AuditEvent, Store, open_incident

BREAK_GLASS_DURATION = timedelta(minutes=15)
MAX_REASON = 500


@dataclass(frozen=True)
class Grant:
    """An emergency override, active from ``granted_at`` until ``expires_at``."""

    grant_id: str
    user_id: str
    object_ref: str
    reason: str
    granted_at: datetime
    expires_at: datetime
    terminal: str
    audit_seq: int | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None

    def active(self, now: datetime) -> bool:
        return self.granted_at <= now < self.expires_at


def _iso(t: datetime) -> str:
    return t.isoformat()


def _grant(row: Any) -> Grant:
    return Grant(
        grant_id=row[0],
        user_id=row[1],
        object_ref=row[2],
        reason=row[3],
        granted_at=datetime.fromisoformat(row[4]),
        expires_at=datetime.fromisoformat(row[5]),
        terminal=row[6],
        audit_seq=row[7],
        reviewed_by=row[8],
        reviewed_at=datetime.fromisoformat(row[9]) if row[9] else None,
        review_note=row[10],
    )


_SELECT = (
    "SELECT grant_id, user_id, object, reason, granted_at, expires_at, terminal, audit_seq,"
    " reviewed_by, reviewed_at, review_note FROM breakglass_grants"
)


class BreakGlass:
    """Grants stored in ``breakglass_grants``; every change appended to the trail."""

    def __init__(
        self,
        store: Store,
        clock: Clock = system_clock,
        check_session: Callable[[Session], None] | None = None,
    ) -> None:
        """``check_session`` validates a session against the database (the account
        service's); without it only the 12 h freshness is checked."""
        self._store = store
        self._clock = clock
        self._check_session = check_session

    def _check(self, session: Session) -> None:
        session.check_fresh(self._clock())
        if self._check_session is not None:
            self._check_session(session)

    def open(self, session: Session, object_ref: str, reason: str) -> Grant:
        """Grant ``session`` a 15-minute read override on ``object_ref``.

        Raises:
            ValueError: blank or over-long reason.
            Denied: the session holds no clinical role (audited).
        """
        reason = " ".join(reason.split())
        if not reason:
            raise ValueError("break-glass needs a reason")
        if len(reason) > MAX_REASON:
            raise ValueError(f"break-glass reason too long (at most {MAX_REASON} characters)")
        self._check(session)
        now = self._clock()
        if not session.roles & CLINICAL_ROLES:
            seq = self._store.append_audit(
                AuditEvent(
                    actor=session.user_id,
                    role=session.role_label,
                    terminal=session.terminal,
                    action="breakglass.open",
                    object=object_ref,
                    purpose=f"break-glass: {reason}",
                    outcome="denied",
                    detail={"reason": "break-glass is reserved to clinical roles"},
                )
            )
            raise Denied(
                f"{session.user_id} ({session.role_label}) may not break the glass: "
                "reserved to clinical roles",
                action="breakglass.open",
                object_ref=object_ref,
                seq=seq,
            )
        grant_id = "bg_" + secrets.token_hex(8)
        expires = now + BREAK_GLASS_DURATION
        with self._store.transaction() as conn:
            seq = self._store.append_audit(
                AuditEvent(
                    actor=session.user_id,
                    role=session.role_label,
                    terminal=session.terminal,
                    action="breakglass.open",
                    object=object_ref,
                    purpose=f"break-glass: {reason}",
                    outcome="success",
                    detail={
                        "grant": grant_id,
                        "expires_at": _iso(expires),
                        "actions": sorted(a.value for a in BREAK_GLASS_ACTIONS),
                    },
                ),
                conn=conn,
            )
            conn.execute(
                "INSERT INTO breakglass_grants (grant_id, user_id, object, reason, granted_at,"
                " expires_at, terminal, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    grant_id,
                    session.user_id,
                    object_ref,
                    reason,
                    _iso(now),
                    _iso(expires),
                    session.terminal,
                    seq,
                ),
            )
            # A security incident too, in the same transaction: the auditors' queue.
            open_incident(
                self._store,
                AuditContext(
                    actor=session.user_id,
                    role=session.role_label,
                    terminal=session.terminal,
                    purpose=f"break-glass: {reason}",
                ),
                kind="security",
                category="break-glass",
                severity="medium",
                object=object_ref,
                title=f"break-glass access to {object_ref} by {session.user_id} ({grant_id})",
            )
        return Grant(
            grant_id, session.user_id, object_ref, reason, now, expires, session.terminal, seq
        )

    def active_grant(self, user_id: str, object_ref: str, now: datetime) -> Grant | None:
        """The user's grant on this object still active at ``now``, if any."""
        rows = self._store.fetchall(
            _SELECT + " WHERE user_id = ? AND object = ? ORDER BY granted_at DESC",
            (user_id, object_ref),
        )
        for row in rows:
            grant = _grant(row)
            if grant.active(now):
                return grant
        return None

    def pending_review(self) -> list[Grant]:
        """Every grant no auditor has reviewed yet, oldest first."""
        rows = self._store.fetchall(_SELECT + " WHERE reviewed_at IS NULL ORDER BY granted_at")
        return [_grant(r) for r in rows]

    def all_grants(self) -> list[Grant]:
        """Every grant ever given, oldest first."""
        rows = self._store.fetchall(_SELECT + " ORDER BY granted_at")
        return [_grant(r) for r in rows]

    def mark_reviewed(self, session: Session, grant_id: str, note: str) -> None:
        """Record an auditor's review of a grant (auditeur role required, audited)."""
        self._check(session)
        auth = require(
            session,
            Action.AUDIT_READ,
            f"breakglass:{grant_id}",
            audit=self._store,
            clock=self._clock,
        )
        now = self._clock()
        with self._store.transaction() as tx:
            cur = tx.execute(
                "UPDATE breakglass_grants SET reviewed_by = ?, reviewed_at = ?, review_note = ?"
                " WHERE grant_id = ? AND reviewed_at IS NULL",
                (session.user_id, _iso(now), note, grant_id),
            )
            if cur.rowcount != 1:
                raise KeyError(f"no break-glass grant awaiting review with id {grant_id}")
            self._store.append_audit(
                AuditEvent(
                    actor=session.user_id,
                    role=auth.role,
                    terminal=session.terminal,
                    action="breakglass.review",
                    object=f"breakglass:{grant_id}",
                    purpose="normal",
                    outcome="success",
                    detail={},
                ),
                conn=tx,
            )
