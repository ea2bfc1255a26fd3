"""Régulation decisions: Hub Santé codes, a reason on override, an Ed25519 signature.

A decision is taken by a person in a live session whose signing key was unlocked at
login (:class:`console.auth.Session`); the habilitation ``decision.take`` is checked and
audited first. The decided priority, care level (R1–R4), decision type, resource and
orientation are Hub Santé codes checked against the official lists (``_codes``). When
the decided priority differs from the suggestion the physician saw, a reason is
required: the refusal is audited like any other. The signed content names the triage
result the decision was taken on, so provenance runs from the decision back to the
frames (``provenance``).

Storage: ``decisions`` (append-only) keeps the codes in clear for the board and the
exports, and the signed content (with the reason, which is clinical free text) sealed
under the master key; the signature covers the plaintext, so it verifies offline once
exported.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from console.auth import AccountService, Action, Session, Target
from console.cases._codes import load_codes
from console.crypto import MasterKeyRing, sign, signed_content, verify
from console.records import Store
from protocols import has_control

_CONTEXT = "decisions\x00content\x00"


class DecisionError(ValueError):
    """The decision is refused (the message says why; the refusal is audited)."""


class DecisionRequest(BaseModel):
    """What the physician decides (the service API's request model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str = Field(min_length=1, max_length=100)
    priority: str
    care_level: str
    decision_type: str
    resource: str | None = None
    orientation: str | None = None
    reason: str | None = Field(None, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        # A reason is typed by a physician and signed: a control character in it is an
        # attack on whoever reads it on a terminal, never clinical text.
        if value is not None and has_control(value.replace("\r\n", "\n")):
            raise ValueError("the reason holds a control character (only text is signed)")
        return value


@dataclass(frozen=True)
class Decision:
    decision_id: str
    case_id: str
    intention: int
    author: str
    priority: str
    care_level: str
    decision_type: str
    resource: str | None
    orientation: str | None
    suggested_priority: str
    triage_result: int | None
    signed_at: str
    key_id: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def code_labels(request: DecisionRequest, directory: Path | None = None) -> dict[str, str]:
    """The French label of each code of ``request``, from the official lists.

    Raises:
        CodesError: a code is not in its list, or the lists are missing.
    """
    codes = load_codes(directory)
    labels = {
        "priority": codes["priority"].label(request.priority),
        "care_level": codes["care_level"].label(request.care_level),
        "decision_type": codes["decision_type"].label(request.decision_type),
    }
    if request.resource is not None:
        labels["resource"] = codes["resource"].label(request.resource)
    if request.orientation is not None:
        labels["orientation"] = codes["orientation"].label(request.orientation)
    return labels


class Decisions:
    """Decisions on cases, over the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        accounts: AccountService,
        master_key: bytes,
        *,
        codes_dir: Path | None = None,
    ) -> None:
        self._codes_dir = codes_dir
        self._store = store
        self._accounts = accounts
        self._ring = MasterKeyRing(master_key)

    def _refuse(self, session: Session, case_id: str, reason: str) -> DecisionError:
        self._accounts.audit(
            session,
            "decision.take",
            f"case:{case_id}",
            outcome="denied",
            detail={"reason": reason},
        )
        return DecisionError(reason)

    def decide(self, session: Session, request: DecisionRequest, *, now: datetime) -> Decision:
        """Record and sign a decision; returns it.

        Raises:
            Denied: the session's roles do not allow ``decision.take`` (audited).
            DecisionError: unknown case, a code not in its list, no reason on an
                override, no unlocked signing key (audited).
        """
        row = self._store.fetchone(
            "SELECT site, suggested_priority, last_result, status FROM cases WHERE case_id = ?",
            (request.case_id,),
        )
        if row is None:
            raise DecisionError(f"no case {request.case_id!r}")
        site, suggested, result_id, status = row
        auth = self._accounts.authorize(
            session, Action.DECISION_TAKE, Target(f"case:{request.case_id}", site=site)
        )
        if status not in ("PROGRAM", "ACTIF"):
            # Its compte rendu is signed: a decision now would post-date the signed
            # record of the régulation. A new call or alert opens a new case.
            raise self._refuse(
                session,
                request.case_id,
                f"case {request.case_id} is {status}: its régulation is over (compte rendu"
                " signed); a new call opens a new case",
            )
        try:
            labels = code_labels(request, self._codes_dir)
        except ValueError as exc:
            raise self._refuse(session, request.case_id, str(exc)) from None
        reason = (request.reason or "").strip()
        if request.priority != suggested and not reason:
            raise self._refuse(
                session,
                request.case_id,
                f"a reason is required: the decided priority {request.priority} differs "
                f"from the suggestion {suggested}",
            )
        if session.signer is None or session.signer_key_id is None:
            raise self._refuse(
                session,
                request.case_id,
                "this session has no unlocked signing key: log in again with your password",
            )
        decision_id = f"dec_{secrets.token_hex(8)}"
        signed_at = now.astimezone(UTC)
        (count,) = self._store.fetchone(
            "SELECT count(*) FROM decisions WHERE case_id = ?", (request.case_id,)
        )
        payload = {
            "case_id": request.case_id,
            "intention": int(count) + 1,
            "priority": request.priority,
            "care_level": request.care_level,
            "decision_type": request.decision_type,
            "resource": request.resource,
            "orientation": request.orientation,
            "labels": labels,
            "reason": reason or None,
            "suggested_priority": suggested,
            "triage_result": result_id,
        }
        content = signed_content(
            record_id=decision_id,
            kind="decision",
            subject=f"case:{request.case_id}",
            author=session.user_id,
            key_id=session.signer_key_id,
            signed_at=signed_at,
            payload=payload,
        )
        signature = sign(session.signer, content)
        sealed = self._ring.seal_secret(_CONTEXT + decision_id, content)
        stamp = signed_at.isoformat()
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO decisions (decision_id, case_id, intention, author, priority,"
                " care_level, decision_type, resource, orientation, suggested_priority,"
                " triage_result, overridden, signed_at, key_id, content, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    decision_id,
                    request.case_id,
                    payload["intention"],
                    session.user_id,
                    request.priority,
                    request.care_level,
                    request.decision_type,
                    request.resource,
                    request.orientation,
                    suggested,
                    result_id,
                    int(request.priority != suggested),
                    stamp,
                    session.signer_key_id,
                    sealed,
                    signature,
                ),
            )
            conn.execute(
                "UPDATE cases SET decided_priority = ?, updated_at = ? WHERE case_id = ?",
                (request.priority, stamp, request.case_id),
            )
            conn.execute(
                "INSERT INTO case_timeline (case_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                (
                    request.case_id,
                    stamp,
                    "decision",
                    json.dumps(
                        {
                            "decision": decision_id,
                            "by": session.user_id,
                            "priority": request.priority,
                            "care_level": request.care_level,
                            "decision_type": request.decision_type,
                            "overridden": request.priority != suggested,
                        },
                        separators=(",", ":"),
                    ),
                ),
            )
            self._accounts.audit(
                session,
                "decision.take",
                f"case:{request.case_id}",
                role=auth.role,
                purpose=auth.purpose,
                detail={"decision": decision_id, "priority": request.priority},
                conn=conn,
            )
        return self.get(decision_id)

    def get(self, decision_id: str) -> Decision:
        row = self._store.fetchone(
            "SELECT decision_id, case_id, intention, author, priority, care_level, decision_type,"
            " resource, orientation, suggested_priority, triage_result, signed_at, key_id"
            " FROM decisions WHERE decision_id = ?",
            (decision_id,),
        )
        if row is None:
            raise KeyError(f"no decision {decision_id!r}")
        return Decision(*row)

    def of_case(self, case_id: str) -> list[Decision]:
        ids = self._store.fetchall(
            "SELECT decision_id FROM decisions WHERE case_id = ? ORDER BY intention", (case_id,)
        )
        return [self.get(r[0]) for r in ids]

    def content(self, decision_id: str) -> tuple[dict[str, Any], bool]:
        """The signed content and whether its signature verifies with the author's key."""
        row = self._store.fetchone(
            "SELECT key_id, content, signature FROM decisions WHERE decision_id = ?",
            (decision_id,),
        )
        if row is None:
            raise KeyError(f"no decision {decision_id!r}")
        key_id, sealed, signature = row
        content = self._ring.open_secret(_CONTEXT + decision_id, bytes(sealed))
        try:
            _, public, _ = self._accounts.public_key(key_id)
        except KeyError:
            return json.loads(content), False
        return json.loads(content), verify(public, content, bytes(signature))
