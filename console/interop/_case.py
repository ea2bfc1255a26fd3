"""What an export reads of a case: one read of the records, shared by RS-EDA, RS-BPV, FHIR.

:func:`load_case` gathers the case row, its patients, timeline, signed decisions (with
their signed content and signature check), the bilans and implant transmissions it rests
on (parsed back from the sealed raw messages, exactly what was received), the latest
observations of its residents, the video consent events, the signed comptes rendus and
the Hub Santé messages received for it. Exports build from this snapshot only, so what
one format says the other says too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.auth import AccountService
from console.cases import Decision, Decisions
from console.crypto import MasterKeyRing, verify
from console.ingest import raw_opener
from console.records import Store
from protocols import BilanBody, EnvelopeError, ImplantBody, parse_envelope

#: The RS-EDA patientId pattern.
PATIENT_ID = re.compile(r"^([a-zA-Z0-9_-]+\.){3,8}patient(\.[a-zA-Z0-9_-]+){1,2}$")
_SEGMENT = re.compile(r"^[a-zA-Z0-9_-]+$")
#: Observations older than this before the case opened are not part of it.
WINDOW_S = 3600.0
_CR_CONTEXT = "comptes_rendus\x00content\x00"


class CaseNotFoundError(LookupError):
    """No such case."""


def hub_time(value: str | float | datetime) -> str:
    """An instant as the Hub Santé schemas want it: seconds, explicit offset."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, int | float):
        when = datetime.fromtimestamp(float(value), UTC)
    else:
        when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.replace(microsecond=0).isoformat()


def patient_id(centre: str, resident: str) -> str:
    """The shared patientId of a resident (``fr.health.samu075.patient.<site>.<ref>``).

    A reference that already is a patientId (an imported patient) is kept as it is; a
    site or reference with characters the pattern refuses becomes a digest (the
    ``samu.case`` custom entry maps it back).
    """
    site, _, ref = resident.partition("/")
    if PATIENT_ID.fullmatch(ref):
        return ref
    if _SEGMENT.fullmatch(site) and _SEGMENT.fullmatch(ref):
        return f"fr.health.{centre}.patient.{site}.{ref}"
    digest = hashlib.sha256(resident.encode("utf-8")).hexdigest()[:24]
    return f"fr.health.{centre}.patient.h{digest}"


@dataclass(frozen=True)
class Received:
    """A message the case rests on: its row, when, from which sender, parsed."""

    msg_id: int
    site: str
    device: str
    kind: str
    received_at: str
    raw: bytes


@dataclass(frozen=True)
class ObservationRow:
    obs_id: int
    msg_id: int
    resident: str
    device: str
    code: str
    value: float | None
    coded: str | None
    unit: str | None
    method: str
    measured_at: str


@dataclass(frozen=True)
class SignedReport:
    """A signed compte rendu: the exact bytes signed and the Ed25519 signature."""

    report_id: str
    author: str
    signed_at: str
    key_id: str
    signature: bytes
    content: bytes
    valid: bool
    public_key: bytes


@dataclass
class CaseData:
    """A case as every export reads it (see the module docstring)."""

    case_id: str
    centre: str
    site: str
    status: str
    opened_at: str
    updated_at: str
    opened_by: str
    sources: list[str]
    suggested_priority: str
    decided_priority: str | None
    news2: int | None
    qsofa: int | None
    reasons: list[str]
    implant_alerts: list[str]
    residents: list[str]
    timeline: list[tuple[str, str, dict[str, Any]]]
    decisions: list[tuple[Decision, dict[str, Any], bool]] = field(default_factory=list)
    bilans: list[tuple[Received, BilanBody]] = field(default_factory=list)
    received_bilans: list[tuple[Received, dict[str, Any]]] = field(default_factory=list)
    implants: list[tuple[Received, ImplantBody]] = field(default_factory=list)
    hub_messages: list[tuple[Received, dict[str, Any]]] = field(default_factory=list)
    observations: list[ObservationRow] = field(default_factory=list)
    devices: dict[tuple[str, str], str] = field(default_factory=dict)
    video: list[dict[str, Any]] = field(default_factory=list)
    reports: list[SignedReport] = field(default_factory=list)

    @property
    def priority(self) -> str:
        return self.decided_priority or self.suggested_priority

    @property
    def care_level(self) -> str | None:
        return self.decisions[-1][0].care_level if self.decisions else None

    def patient_ids(self) -> dict[str, str]:
        """resident id → patientId."""
        return {r: patient_id(self.centre, r) for r in self.residents}

    def latest_hub_case(self) -> dict[str, Any] | None:
        """The latest RS-EDA content received for this case (imports), if any."""
        for _, message in reversed(self.hub_messages):
            content = inner(message).get("createCaseHealth")
            if isinstance(content, dict):
                return content
        return None


def inner(data: dict[str, Any]) -> dict[str, Any]:
    """The message of a bare or enveloped Hub Santé message (``{"edxl": …}`` too)."""
    if len(data) == 1 and isinstance(data.get("edxl"), dict):
        data = data["edxl"]
    for item in data.get("content", []) or []:
        try:
            message = item["jsonContent"]["embeddedJsonContent"]["message"]
        except (KeyError, TypeError):
            continue
        if isinstance(message, dict):
            return message
    return data


def load_case(
    store: Store,
    accounts: AccountService,
    master_key: bytes,
    case_id: str,
) -> CaseData:
    """Read ``case_id`` (see the module docstring).

    Raises:
        CaseNotFoundError: no such case.
    """
    row = store.fetchone(
        "SELECT case_id, centre, site, status, opened_at, opened_ts, updated_at, opened_by,"
        " sources, suggested_priority, decided_priority, news2, qsofa, reasons, implant_alerts"
        " FROM cases WHERE case_id = ?",
        (case_id,),
    )
    if row is None:
        raise CaseNotFoundError(f"no case {case_id!r}")
    opened_ts = float(row[5])
    residents = [
        r[0]
        for r in store.fetchall(
            "SELECT resident_id FROM case_residents WHERE case_id = ? ORDER BY rowid", (case_id,)
        )
    ]
    timeline = [
        (at, kind, json.loads(detail))
        for at, kind, detail in store.fetchall(
            "SELECT at, kind, detail FROM case_timeline WHERE case_id = ? ORDER BY event_id",
            (case_id,),
        )
    ]
    data = CaseData(
        case_id=row[0],
        centre=row[1],
        site=row[2],
        status=row[3],
        opened_at=row[4],
        updated_at=row[6],
        opened_by=row[7],
        sources=json.loads(row[8]),
        suggested_priority=row[9],
        decided_priority=row[10],
        news2=row[11],
        qsofa=row[12],
        reasons=json.loads(row[13]),
        implant_alerts=json.loads(row[14]),
        residents=residents,
        timeline=timeline,
    )
    decisions = Decisions(store, accounts, master_key)
    for d in decisions.of_case(case_id):
        content, valid = decisions.content(d.decision_id)
        data.decisions.append((d, content.get("payload", {}), valid))
    open_raw = raw_opener(master_key)
    seen: set[int] = set()
    for _, kind, detail in timeline:
        msg_id = detail.get("message")
        if not isinstance(msg_id, int) or msg_id in seen:
            continue
        seen.add(msg_id)
        received = _message(store, open_raw, msg_id)
        if received is None:
            continue
        if received.kind.startswith("hubsante:"):
            try:
                parsed = json.loads(received.raw)
            except ValueError:
                continue
            if kind == "bilan":
                data.received_bilans.append((received, parsed))
            else:
                data.hub_messages.append((received, parsed))
            continue
        try:
            body = parse_envelope(received.raw).body
        except EnvelopeError:
            continue
        if isinstance(body, BilanBody):
            data.bilans.append((received, body))
        elif isinstance(body, ImplantBody):
            data.implants.append((received, body))
    for rid in residents:
        site, _, ref = rid.partition("/")
        for r in store.fetchall(
            "SELECT obs_id, msg_id, device, code, value, coded, unit, method, measured_at"
            " FROM observations WHERE site = ? AND resident = ? AND observed_ts >= ?"
            " ORDER BY observed_ts DESC, obs_id DESC LIMIT 200",
            (site, ref, opened_ts - WINDOW_S),
        ):
            data.observations.append(ObservationRow(r[0], r[1], rid, *r[2:]))
    data.observations.sort(key=lambda o: (o.measured_at, o.obs_id))
    for site, device, kind in store.fetchall("SELECT site, device, kind FROM devices"):
        data.devices[(site, device)] = kind
    data.video = [
        {"session": v[0], "event": v[1], "at": v[2], "by": v[3], "relation": v[4], "how": v[5]}
        for v in store.fetchall(
            "SELECT session, event, at, consent_by, relation, how FROM video_events"
            " WHERE case_ref = ? AND event LIKE 'consent_%' ORDER BY event_id",
            (case_id,),
        )
    ]
    ring = MasterKeyRing(master_key)
    for rid_, author, signed_at, key_id, sealed, signature in store.fetchall(
        "SELECT report_id, author, signed_at, key_id, content, signature FROM comptes_rendus"
        " WHERE case_id = ? ORDER BY signed_at",
        (case_id,),
    ):
        signed = ring.open_secret(_CR_CONTEXT + rid_, bytes(sealed))
        try:
            _, public, _ = accounts.public_key(key_id)
            valid = verify(public, signed, bytes(signature))
        except KeyError:
            public, valid = b"", False
        data.reports.append(
            SignedReport(rid_, author, signed_at, key_id, bytes(signature), signed, valid, public)
        )
    return data


def _message(store: Store, open_raw: Callable[[bytes], bytes], msg_id: int) -> Received | None:
    row = store.fetchone(
        "SELECT msg_id, site, device, kind, received_at, raw FROM ingest_messages WHERE msg_id = ?",
        (msg_id,),
    )
    if row is None:
        return None
    return Received(row[0], row[1], row[2], row[3], row[4], open_raw(bytes(row[5])))
