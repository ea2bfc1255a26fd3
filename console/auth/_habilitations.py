"""The habilitation matrix of records-security.md, as data, and its enforcement.

The matrix is kept as a table of rows exactly like the design note so a reviewer can
compare them line by line; each row lists the fine-grained :class:`Action` names the
service layer checks (``decision.take`` and ``report.sign`` share the row "take a
régulation decision, sign a compte rendu", for instance).

Enforcement lives here and in the services, never in the TUI: the TUI hides buttons
for convenience, but the refusal that counts is :func:`require`, which every service
method calls before touching data and which appends a ``denied`` audit event for each
refusal (a burst of refusals is how abuse shows up in the trail).

Scopes that depend on the object:

* ``own site`` / ``own residents`` (ide_ehpad): the object's ``site`` must be the
  nurse's site; an object without a site is refused (fail closed).
* ``own actions`` (admin reading the trail): the object's ``owner`` must be the admin
  themself — an administrator can check what was done under their account, not read
  who accessed which patient.

A person may hold several roles: an action is allowed when *any* held role allows it,
and the audit records that role (least surprise for the reviewer: "allowed as arm").
When nothing allows it, an active break-glass grant for that object may (read actions
only, see :mod:`console.auth._breakglass`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from console.auth._sessions import Clock, Role, Session, system_clock
from console.records import AuditEvent


class Action(StrEnum):
    """Every action the service layer checks; values appear in the audit trail."""

    BOARD_VIEW = "board.view"
    CLINICAL_READ = "clinical.read"
    DECISION_TAKE = "decision.take"
    REPORT_SIGN = "report.sign"
    CASE_CREATE = "case.create"
    #: A finished dossier validated (a medical act) and closed (administrative): see
    #: :mod:`console.cases._lifecycle` for why each sits in its row.
    CASE_VALIDATE = "case.validate"
    CASE_CLOSE = "case.close"
    CONSENT_RECORD = "consent.record"
    IDENTITY_WRITE = "identity.write"
    BILAN_SEND = "bilan.send"
    AUDIT_READ = "audit.read"
    INCIDENT_READ = "incident.read"
    ACCOUNTS_MANAGE = "accounts.manage"
    DEVICES_MANAGE = "devices.manage"
    KEYS_MANAGE = "keys.manage"
    #: Not in any row of the matrix: no role may; only the local operator (CLI).
    RETENTION_MANAGE = "retention.manage"
    RIGHTS_EXPORT = "rights.export"


class Scope(StrEnum):
    """A cell of the matrix, spelled as in the design note."""

    YES = "yes"
    NO = "no"
    OWN_SITE = "own site"
    OWN_RESIDENTS = "own residents"
    OWN_ACTIONS = "own actions"


@dataclass(frozen=True)
class MatrixRow:
    """One line of the design note's table."""

    label: str
    actions: tuple[Action, ...]
    cells: dict[Role, Scope]


_R, _A, _I, _U, _D = Role.REGULATEUR, Role.ARM, Role.IDE_EHPAD, Role.AUDITEUR, Role.ADMIN
_Y, _N = Scope.YES, Scope.NO

#: The matrix, row for row. ``identity.write`` (register a patient, rectify an identity,
#: set the opposition flag) sits with "create a case": it is what the ARM and the
#: physician do when they open a case.
MATRIX: tuple[MatrixRow, ...] = (
    MatrixRow(
        "see board (priority, scores, masked identity)",
        (Action.BOARD_VIEW,),
        {_R: _Y, _A: _Y, _I: Scope.OWN_SITE, _U: _N, _D: _N},
    ),
    MatrixRow(
        "see identities and clinical detail",
        (Action.CLINICAL_READ,),
        {_R: _Y, _A: _Y, _I: Scope.OWN_RESIDENTS, _U: _N, _D: _N},
    ),
    MatrixRow(
        "take a régulation decision, sign a compte rendu",
        (Action.DECISION_TAKE, Action.REPORT_SIGN, Action.CASE_VALIDATE),
        {_R: _Y, _A: _N, _I: _N, _U: _N, _D: _N},
    ),
    MatrixRow(
        "create a case, record video consent",
        (Action.CASE_CREATE, Action.CASE_CLOSE, Action.CONSENT_RECORD, Action.IDENTITY_WRITE),
        {_R: _Y, _A: _Y, _I: _N, _U: _N, _D: _N},
    ),
    MatrixRow(
        "send a bilan",
        (Action.BILAN_SEND,),
        {_R: _N, _A: _N, _I: _Y, _U: _N, _D: _N},
    ),
    MatrixRow(
        "read the audit trail and incidents",
        (Action.AUDIT_READ, Action.INCIDENT_READ),
        {_R: _N, _A: _N, _I: _N, _U: _Y, _D: Scope.OWN_ACTIONS},
    ),
    MatrixRow(
        "manage accounts, devices and keys",
        (Action.ACCOUNTS_MANAGE, Action.DEVICES_MANAGE, Action.KEYS_MANAGE),
        {_R: _N, _A: _N, _I: _N, _U: _N, _D: _Y},
    ),
)

#: Read actions a break-glass grant may open (never writes, signatures or admin).
BREAK_GLASS_ACTIONS: frozenset[Action] = frozenset({Action.BOARD_VIEW, Action.CLINICAL_READ})

#: Roles that may break the glass: those that care for patients. Checked when a grant
#: opens *and at each use*, so a grant does not outlive the role that opened it.
CLINICAL_ROLES: frozenset[Role] = frozenset({Role.REGULATEUR, Role.ARM, Role.IDE_EHPAD})


def scope_of(role: Role, action: Action) -> Scope:
    """The matrix cell for ``role`` × ``action`` (``no`` for anything unlisted)."""
    for row in MATRIX:
        if action in row.actions:
            return row.cells.get(role, Scope.NO)
    return Scope.NO


@dataclass(frozen=True)
class Target:
    """The object of an action: an id for the trail plus what scoped cells need.

    ``ref`` is what the audit ``object`` field records (``patient:…``, ``case:…``,
    ``user:…``) — never an identity. ``site`` is the EHPAD site the object belongs to;
    ``owner`` the user an audit event or incident is about.
    """

    ref: str
    site: str | None = None
    owner: str | None = None


class Denied(PermissionError):  # noqa: N818 - the name is the contract
    """The session may not perform this action on this object (already audited)."""

    def __init__(self, message: str, *, action: str, object_ref: str, seq: int | None) -> None:
        super().__init__(message)
        self.action = action
        self.object_ref = object_ref
        self.audit_seq = seq


@dataclass(frozen=True)
class Authorization:
    """Why an action was allowed: which role, and the audit ``purpose`` to record."""

    role: str
    purpose: str = "normal"
    break_glass_grant: str | None = None

    @property
    def break_glass(self) -> bool:
        return self.break_glass_grant is not None


class AuditSink(Protocol):
    """Anything that appends audit events: the records store."""

    def append_audit(self, event: Any, conn: sqlite3.Connection | None = None) -> int: ...


class GrantLookup(Protocol):
    """Finds an active break-glass grant (see :class:`console.auth.BreakGlass`)."""

    def active_grant(self, user_id: str, object_ref: str, now: datetime) -> Any | None: ...


def allowed_role(session: Session, action: Action, target: Target) -> Role | None:
    """The first held role (in matrix column order) whose cell allows this, else None."""
    for role in Role:
        if role not in session.roles:
            continue
        scope = scope_of(role, action)
        if scope is Scope.YES:
            return role
        if scope in (Scope.OWN_SITE, Scope.OWN_RESIDENTS):
            if session.site is not None and target.site == session.site:
                return role
        elif scope is Scope.OWN_ACTIONS and target.owner == session.user_id:
            return role
    return None


def require(
    session: Session,
    action: Action | str,
    obj: Target | str,
    *,
    audit: AuditSink,
    grants: GrantLookup | None = None,
    clock: Clock = system_clock,
    conn: sqlite3.Connection | None = None,
) -> Authorization:
    """Allow ``action`` on ``obj`` for ``session`` or raise :class:`Denied`.

    Checks, in order: the session is still fresh (12 h), the matrix, then an active
    break-glass grant for read actions. Each refusal appends an audit event with
    outcome ``denied`` (the reason in ``detail``) before raising; a successful check
    appends nothing — the service records the access itself, with its detail, in the
    same transaction as the read or write it performs.

    Raises:
        SessionExpiredError: the session is too old.
        Denied: no role and no grant allows it.
    """
    act = Action(action)
    target = Target(obj) if isinstance(obj, str) else obj
    now = clock()
    session.check_fresh(now)
    role = allowed_role(session, act, target)
    if role is not None:
        return Authorization(role=role.value)
    if grants is not None and act in BREAK_GLASS_ACTIONS and session.roles & CLINICAL_ROLES:
        grant = grants.active_grant(session.user_id, target.ref, now)
        if grant is not None:
            return Authorization(
                role=session.role_label,
                purpose=f"break-glass: {grant.reason}",
                break_glass_grant=grant.grant_id,
            )
    reason = _refusal_reason(session, act, target)
    seq = audit.append_audit(
        AuditEvent(
            actor=session.user_id,
            role=session.role_label,
            terminal=session.terminal,
            action=act.value,
            object=target.ref,
            purpose="normal",
            outcome="denied",
            detail={"reason": reason},
        ),
        conn=conn,
    )
    raise Denied(
        f"{session.user_id} ({session.role_label}) may not {act.value} on {target.ref}: {reason}",
        action=act.value,
        object_ref=target.ref,
        seq=seq,
    )


def _refusal_reason(session: Session, action: Action, target: Target) -> str:
    scopes = {scope_of(r, action) for r in session.roles}
    if scopes & {Scope.OWN_SITE, Scope.OWN_RESIDENTS}:
        return "object outside the user's site"
    if Scope.OWN_ACTIONS in scopes:
        return "only the user's own actions"
    return "not in the habilitation matrix for these roles"
