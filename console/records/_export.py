"""``samu audit export``: the trail as FHIR R4 AuditEvent resources, one JSON per line.

Each line is built from the row's *canonical bytes* (what was hashed), not from the
convenience columns, and carries the row's sequence number and hashes in an extension
so an auditor can re-check any exported event against the chain.

Mapping (FHIR R4 AuditEvent):

* ``type``: DICOM DCM codes — 110114 User Authentication for ``auth.*``/``session.*``
  actions, 110106 Export for ``*.export``, 110101 Audit Log Used for ``audit.*`` reads,
  otherwise 110110 Patient Record when the object is a ``patient:`` record and 110100
  Application Activity for the rest; ``subtype`` carries our action code verbatim
  (system ``urn:samu:audit-action``).
* ``action``: C/R/U/D/E from the action's last word (create/add/open -> C, read/list/
  view/export -> R, update/disable/reset/... -> U, delete/shred -> D, else E).
* ``recorded``: the event time (with its offset). ``outcome``: success 0, denied 4
  (minor failure: refused as designed), failure 8 (serious failure).
* ``purposeOfEvent``: v3 ActReason TREAT, or ETREAT (emergency) for break-glass with
  the reason as text.
* ``agent``: the actor (``who.identifier.value``), its role as text, requestor, and the
  terminal as network address (type 1, machine name).
* ``source``: this installation (observer display, ``log_id`` as identifier), type 4
  (application server).
* ``entity``: the object (record id only; identities never appear in the trail) and the
  ``detail`` JSON as ``entity.detail`` (type ``detail``, valueString).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any, TextIO

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACTION_SYSTEM = "urn:samu:audit-action"
CHAIN_EXTENSION = "urn:samu:audit-chain"

_CREATE = {"create", "add", "open", "register", "enrol", "enroll", "sign", "start"}
_READ = {"read", "list", "view", "export", "search", "show", "get"}
_DELETE = {"delete", "shred", "erase", "purge", "remove"}
_UPDATE = {
    "update",
    "disable",
    "enable",
    "reset",
    "reset-totp",
    "rectify",
    "grant",
    "revoke",
    "close",
    "acknowledge",
    "roles",
    "change",
    "set",
    "restore",
}
_OUTCOME = {"success": "0", "denied": "4", "failure": "8"}


def _fhir_action(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    if verb in _CREATE:
        return "C"
    if verb in _READ:
        return "R"
    if verb in _UPDATE:
        return "U"
    if verb in _DELETE:
        return "D"
    return "E"


def _fhir_type(action: str, obj: str) -> dict[str, str]:
    if action.startswith(("auth.", "session.", "user.login", "user.logout")):
        return {"system": DCM, "code": "110114", "display": "User Authentication"}
    if action.endswith(".export"):
        return {"system": DCM, "code": "110106", "display": "Export"}
    if action.startswith("audit.") and _fhir_action(action) == "R":
        return {"system": DCM, "code": "110101", "display": "Audit Log Used"}
    if obj.startswith("patient:"):
        return {"system": DCM, "code": "110110", "display": "Patient Record"}
    return {"system": DCM, "code": "110100", "display": "Application Activity"}


def to_fhir(
    seq: int, canonical: bytes, leaf_hash: bytes, chain_hash: bytes, log_id: str
) -> dict[str, Any]:
    """One FHIR R4 AuditEvent for the event whose canonical bytes are ``canonical``."""
    event = json.loads(canonical)
    action, obj, purpose = event["action"], event["object"], event["purpose"]
    if purpose.startswith("break-glass: "):
        purpose_of_event = {
            "coding": [{"system": ACT_REASON, "code": "ETREAT", "display": "Emergency Treatment"}],
            "text": purpose,
        }
    else:
        purpose_of_event = {"coding": [{"system": ACT_REASON, "code": "TREAT"}], "text": purpose}
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"{log_id}-{seq}",
        "extension": [
            {
                "url": CHAIN_EXTENSION,
                "extension": [
                    {"url": "seq", "valueInteger": seq},
                    {"url": "leafHash", "valueString": leaf_hash.hex()},
                    {"url": "chainHash", "valueString": chain_hash.hex()},
                ],
            }
        ],
        "type": _fhir_type(action, obj),
        "subtype": [{"system": ACTION_SYSTEM, "code": action}],
        "action": _fhir_action(action),
        "recorded": event["time"],
        "outcome": _OUTCOME.get(event["outcome"], "8"),
        "outcomeDesc": event["outcome"],
        "purposeOfEvent": [purpose_of_event],
        "agent": [
            {
                "role": [{"text": event["role"]}],
                "who": {"identifier": {"value": event["actor"]}},
                "requestor": True,
                "network": {"address": event["terminal"], "type": "1"},
            }
        ],
        "source": {
            "observer": {
                "identifier": {"system": "urn:samu:audit-log", "value": log_id},
                "display": "samu-teleregulation",
            },
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    entity: dict[str, Any] = {}
    if obj:
        entity["what"] = {"identifier": {"value": obj}}
    if event["detail"]:
        entity["detail"] = [
            {
                "type": "detail",
                "valueString": json.dumps(event["detail"], sort_keys=True, ensure_ascii=False),
            }
        ]
    if entity:
        resource["entity"] = [entity]
    return resource


def iter_fhir(
    conn: sqlite3.Connection, log_id: str, since: int = 1, until: int | None = None
) -> Iterator[dict[str, Any]]:
    """AuditEvent resources for events ``since..until`` (inclusive), in order."""
    last = until if until is not None else (1 << 62)
    cursor = conn.execute(
        "SELECT seq, canonical, leaf_hash, chain_hash FROM audit_events "
        "WHERE seq >= ? AND seq <= ? ORDER BY seq",
        (since, last),
    )
    for seq, canonical, leaf, chain in cursor:
        yield to_fhir(int(seq), bytes(canonical), bytes(leaf), bytes(chain), log_id)


def write_fhir_lines(
    conn: sqlite3.Connection, out: TextIO, log_id: str, since: int = 1, until: int | None = None
) -> tuple[int, int | None, int | None]:
    """Write JSON lines; return ``(count, first seq, last seq)``."""
    count, first, last = 0, None, None
    for resource in iter_fhir(conn, log_id, since, until):
        out.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
        seq = resource["extension"][0]["extension"][0]["valueInteger"]
        first = seq if first is None else first
        last = seq
        count += 1
    return count, first, last
