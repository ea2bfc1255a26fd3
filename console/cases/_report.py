"""The compte rendu of a case (CSP R6316-4): generated from the records, signed.

It holds what records-security.md lists: date and time, the acts and prescriptions (the
decisions with their Hub Santé codes and labels), the professionals who took part (the
physicians who decided, the nurse who sent a bilan), the technical incidents during the
act, the triage suggestion with its policy version and SHA-256, the decision and the
physician's reason when it differs from the suggestion. :func:`render_markdown` prints it
as Markdown (PDF-friendly text).

Signing (``report.sign``, a live session with its key unlocked) stores the exact content
signed in ``comptes_rendus`` (append-only, sealed) and marks the case ``ACHEVE``.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from console.auth import AccountService, Action, Session, Target
from console.cases._decisions import Decisions
from console.crypto import MasterKeyRing, sign, signed_content
from console.records import Store
from protocols import BilanBody, EnvelopeError, parse_envelope

_CONTEXT = "comptes_rendus\x00content\x00"


class ReportError(ValueError):
    """No such case, or the report cannot be signed (the message says why)."""


def build_compte_rendu(
    store: Store, decisions: Decisions, case_id: str, *, open_raw: Any, now: datetime
) -> dict[str, Any]:
    """The compte rendu of ``case_id`` as data (see the module docstring).

    Args:
        open_raw: opens a stored message's sealed raw bytes (``Ingest.open_raw``), to
            name the nurse of a bilan.
    """
    case = store.fetchone(
        "SELECT case_id, centre, site, status, opened_at, suggested_priority, decided_priority,"
        " news2, qsofa, reasons, implant_alerts, sources, last_result FROM cases"
        " WHERE case_id = ?",
        (case_id,),
    )
    if case is None:
        raise ReportError(f"no case {case_id!r}")
    residents = [
        r[0]
        for r in store.fetchall(
            "SELECT resident_id FROM case_residents WHERE case_id = ? ORDER BY rowid", (case_id,)
        )
    ]
    acts = []
    professionals: dict[str, str] = {}
    for d in decisions.of_case(case_id):
        content, valid = decisions.content(d.decision_id)
        payload = content.get("payload", {})
        acts.append(
            {
                "decision_id": d.decision_id,
                "intention": d.intention,
                "at": d.signed_at,
                "by": d.author,
                "priority": d.priority,
                "care_level": d.care_level,
                "decision_type": d.decision_type,
                "resource": d.resource,
                "orientation": d.orientation,
                "labels": payload.get("labels", {}),
                "suggested_priority": d.suggested_priority,
                "reason": payload.get("reason") if d.priority != d.suggested_priority else None,
                "signature_valid": valid,
            }
        )
        professionals[d.author] = "médecin régulateur"
    for (detail,) in store.fetchall(
        "SELECT detail FROM case_timeline WHERE case_id = ? AND kind = 'bilan'", (case_id,)
    ):
        msg_id = json.loads(detail).get("message")
        row = store.fetchone("SELECT raw FROM ingest_messages WHERE msg_id = ?", (msg_id,))
        if row is None:
            continue
        try:
            body = parse_envelope(open_raw(bytes(row[0]))).body
        except EnvelopeError:
            continue
        if isinstance(body, BilanBody):
            professionals[f"{body.nurse.name} (RPPS {body.nurse.rpps})"] = "infirmier·e EHPAD"
    triage = None
    if case[12] is not None:
        t = store.fetchone(
            "SELECT at, priority, news2, qsofa, reasons, policy_version, policy_sha256"
            " FROM triage_results WHERE result_id = ?",
            (case[12],),
        )
        if t is not None:
            triage = {
                "at": t[0],
                "priority": t[1],
                "news2": t[2],
                "qsofa": t[3],
                "reasons": json.loads(t[4]),
                "policy_version": t[5],
                "policy_sha256": t[6],
            }
    incidents = [
        {"at": r[0], "kind": r[1], "detail": json.loads(r[2])}
        for r in store.fetchall(
            "SELECT at, kind, detail FROM case_timeline WHERE case_id = ?"
            " AND kind IN ('incident', 'video') ORDER BY event_id",
            (case_id,),
        )
    ]
    return {
        "case_id": case[0],
        "centre": case[1],
        "site": case[2],
        "status": case[3],
        "opened_at": case[4],
        "generated_at": now.astimezone(UTC).isoformat(),
        "patients": residents,
        "sources": json.loads(case[11]),
        "triage": triage,
        "implant_alerts": json.loads(case[10]),
        "acts": acts,
        "professionals": [{"who": k, "role": v} for k, v in professionals.items()],
        "technical_incidents": incidents,
    }


_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]#|!"} | {"<": "&lt;", ">": "&gt;"})


def _inline(text: str) -> str:
    """Free text (a physician's reason) as one Markdown line of plain text: its line
    breaks shown as ↵ and its markup escaped, so a reason can never start a heading,
    open a comment or add a section to the signed document (the signed content keeps
    the text as typed)."""
    return " ↵ ".join(line.strip() for line in text.splitlines() if line.strip()).translate(
        _MD_SPECIAL
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The compte rendu as Markdown."""
    lines = [
        f"# Compte rendu de régulation — {report['case_id']}",
        "",
        f"- Centre : {report['centre']} — site : {report['site']}",
        f"- Ouverture : {report['opened_at']} — édité le : {report['generated_at']}",
        f"- Patient(s) : {', '.join(report['patients']) or '—'}",
        f"- Sources : {', '.join(report['sources']) or '—'}",
        "",
        "## Suggestion du tri",
    ]
    t = report["triage"]
    if t is None:
        lines.append("Aucune suggestion enregistrée.")
    else:
        lines += [
            f"- {t['priority']} à {t['at']} — NEWS2 {t['news2'] if t['news2'] is not None else '—'}"
            f", qSOFA {t['qsofa'] if t['qsofa'] is not None else '—'}",
            f"- Politique de tri : version {t['policy_version']}, SHA-256 {t['policy_sha256']}",
            *[f"  - {r}" for r in t["reasons"]],
        ]
    if report["implant_alerts"]:
        lines.append(f"- Alertes implant : {', '.join(report['implant_alerts'])}")
    lines += ["", "## Actes et prescriptions (décisions)"]
    if not report["acts"]:
        lines.append("Aucune décision.")
    for a in report["acts"]:
        labels = a["labels"]
        lines.append(
            f"- Décision {a['intention']} ({a['at']}, {a['by']}) : "
            f"{a['priority']} {labels.get('priority', '')} · {a['care_level']} "
            f"{labels.get('care_level', '')} · {labels.get('decision_type', a['decision_type'])}"
        )
        if a["resource"]:
            lines.append(f"  - Ressource : {a['resource']} {labels.get('resource', '')}")
        if a["orientation"]:
            lines.append(f"  - Orientation : {a['orientation']} {labels.get('orientation', '')}")
        if a["reason"]:
            lines.append(
                f"  - Écart avec la suggestion ({a['suggested_priority']}) : {_inline(a['reason'])}"
            )
        if not a["signature_valid"]:
            lines.append("  - **Signature invalide**")
    lines += ["", "## Professionnels"]
    lines += [f"- {p['who']} — {p['role']}" for p in report["professionals"]] or ["—"]
    lines += ["", "## Incidents techniques"]
    lines += [
        f"- {i['at']} {i['kind']} : {json.dumps(i['detail'], ensure_ascii=False)}"
        for i in report["technical_incidents"]
    ] or ["Aucun."]
    return "\n".join(lines) + "\n"


def sign_compte_rendu(
    store: Store,
    accounts: AccountService,
    master_key: bytes,
    session: Session,
    report: dict[str, Any],
) -> str:
    """Sign ``report`` as ``session``; returns the compte rendu id.

    Raises:
        Denied: no ``report.sign`` habilitation (audited).
        ReportError: no unlocked signing key.
    """
    case_id = report["case_id"]
    auth = accounts.authorize(
        session, Action.REPORT_SIGN, Target(f"case:{case_id}", site=report["site"])
    )
    if session.signer is None or session.signer_key_id is None:
        raise ReportError("this session has no unlocked signing key: log in again")
    row = store.fetchone("SELECT status FROM cases WHERE case_id = ?", (case_id,))
    signed = store.fetchone(
        "SELECT report_id FROM comptes_rendus WHERE case_id = ? ORDER BY signed_at DESC",
        (case_id,),
    )
    if row is not None and row[0] not in ("PROGRAM", "ACTIF"):
        # One signed compte rendu per régulation: after it nothing can change (no new
        # decision), so a second signature would only make two documents of record.
        accounts.audit(
            session, "report.sign", f"case:{case_id}", outcome="denied",
            detail={"reason": f"case is {row[0]}"},
        )  # fmt: skip
        raise ReportError(
            f"case {case_id} is {row[0]}: its compte rendu is already signed"
            + (f" ({signed[0]})" if signed else "")
        )
    # Signing ends the régulation (the case goes to ACHEVE and leaves the board): a case
    # no physician has decided on must not leave the board by a signature.
    decided = store.fetchone("SELECT 1 FROM decisions WHERE case_id = ? LIMIT 1", (case_id,))
    if decided is None:
        raise ReportError(
            f"case {case_id} has no decision yet: record one before signing the compte rendu"
            " (signing ends the régulation)"
        )
    report_id = f"cr_{secrets.token_hex(8)}"
    now = datetime.now(UTC)
    content = signed_content(
        record_id=report_id,
        kind="compte_rendu",
        subject=f"case:{case_id}",
        author=session.user_id,
        key_id=session.signer_key_id,
        signed_at=now,
        payload=report,
    )
    signature = sign(session.signer, content)
    sealed = MasterKeyRing(master_key).seal_secret(_CONTEXT + report_id, content)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO comptes_rendus (report_id, case_id, author, signed_at, key_id, content,"
            " signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (report_id, case_id, session.user_id, now.isoformat(), session.signer_key_id,
             sealed, signature),
        )  # fmt: skip
        conn.execute(
            "UPDATE cases SET status = 'ACHEVE', updated_at = ? WHERE case_id = ?"
            " AND status IN ('PROGRAM', 'ACTIF')",
            (now.isoformat(), case_id),
        )
        conn.execute(
            "INSERT INTO case_timeline (case_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            (case_id, now.isoformat(), "compte_rendu",
             json.dumps({"report": report_id, "by": session.user_id}, separators=(",", ":"))),
        )  # fmt: skip
        accounts.audit(
            session,
            "report.sign",
            f"case:{case_id}",
            role=auth.role,
            purpose=auth.purpose,
            detail={"report": report_id},
            conn=conn,
        )
    return report_id
