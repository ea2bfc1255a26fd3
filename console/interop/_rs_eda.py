"""A case as an RS-EDA ``createCaseHealth`` message (docs/interop.md has the mapping).

Built from :class:`~console.interop._case.CaseData` with the official codes (priority,
care level, decision, resource and orientation types as decided; location kind
``L04.09.01`` for an EHPAD; caller ``SANTE.INF`` for the nurse's bilan, ``OBJCONNC`` for
a connected object; motive and what happened from the nomenclatures). What the model has
no field for travels where it allows: medical notes (readable text: the bilan, the
implant alerts, the latest vitals, the video consent, the triage suggestion) and
``additionalInformation.customMap`` (three entries, the schema's limit: ``samu.case``,
``samu.devices``, ``samu.video``, each a JSON text the console reads back on import).

Identity traits (names, birth date, sex, INS) are written only with ``identity=True``,
which the command line grants to a signed-in physician and audits; otherwise a patient
is its pseudonymous ``patientId``.

A case that came in over Hub Santé is exported from the message received (every field
kept, even those the console does not use), with what the console knows laid over it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from console.interop._case import CaseData, hub_time
from console.interop._codes import (
    EHPAD,
    NURSE_CALLER,
    OBJECT_CALLER,
    label,
    motive,
    what_happened,
)
from console.interop._models import (
    AdditionalInformation,
    AdministrativeFile,
    Caller,
    CaseDetails,
    Coded,
    Contact,
    CreateCaseHealth,
    CustomEntry,
    Decision,
    DetailedName,
    ExternalId,
    Identity,
    InitialAlert,
    Location,
    MedicalNote,
    Operator,
    Patient,
    PatientDetail,
    Qualification,
    StrictFeatures,
)
from protocols import BilanBody
from protocols.vocab import LOINC

CASE_KEY = "samu.case"
DEVICES_KEY = "samu.devices"
VIDEO_KEY = "samu.video"
_STATUSES = ("PROGRAM", "ACTIF", "ACHEVE", "VALIDE", "CLOTURE")


def bilan_flags(body: BilanBody) -> set[str]:
    f = body.flags
    flags = {n for n in ("fall", "chest_pain", "new_confusion", "cardiac_arrest") if getattr(f, n)}
    if f.fast is not None and f.fast.positive:
        flags.add("fast_positive")
    return flags


def identity_of(data: CaseData) -> dict[str, BilanBody]:
    """resident id → the latest bilan naming them (it carries the identity traits)."""
    out: dict[str, BilanBody] = {}
    for received, body in data.bilans:
        ref = body.resident.resident
        if ref is not None:
            out[f"{received.site}/{ref}"] = body
    return out


def _names(body: BilanBody) -> tuple[str, str]:
    r = body.resident
    return (r.used_name or r.birth_name, r.first_names[0])


def _patients(data: CaseData, identity: bool) -> list[Patient]:
    traits = identity_of(data)
    care = data.care_level
    out = []
    for rid, pid in data.patient_ids().items():
        body = traits.get(rid)
        patient = Patient(patientId=pid)
        if care is not None or (body is not None and body.dlu is not None):
            dlu = body.dlu if body is not None else None
            patient.detail = PatientDetail(
                careLevel=care,
                medicalHistory="; ".join(dlu.history) if dlu and dlu.history else None,
                treatment="; ".join(dlu.treatments) if dlu and dlu.treatments else None,
            )
        if identity and body is not None:
            r = body.resident
            last, first = _names(body)
            patient.identity = Identity(
                strictFeatures=StrictFeatures(
                    birthName=r.birth_name, birthDate=r.birth_date.isoformat(), sex=r.sex
                ),
                nonStrictFeatures=DetailedName(
                    complete=f"{' '.join(r.first_names)} {last}", lastName=last, firstName=first
                ),
            )
            if r.ins is not None:
                patient.administrativeFile = AdministrativeFile(
                    externalId=[ExternalId(source="NIR", value=r.ins)]
                )
        out.append(patient)
    return out


def _value(v: float | None, coded: str | None) -> str:
    if coded is not None:
        return coded
    assert v is not None
    return f"{v:g}"


def _notes(data: CaseData) -> list[MedicalNote]:
    """Readable notes: bilan, implant alerts, latest vitals, video consent, triage."""
    sender = data.case_id.rsplit(".", 1)[-1]
    pids = data.patient_ids()
    first = next(iter(pids.values()), None)
    notes: list[tuple[str, str, str | None, str, str | None]] = []
    for received, body in data.bilans:
        flags = sorted(bilan_flags(body))
        if body.flags.pain is not None:
            flags.append(f"douleur {body.flags.pain}/10")
        text = f"Bilan IDE EHPAD : {body.complaint}"
        if flags:
            text += f" — signes : {', '.join(flags)}"
        if body.notes:
            text += f" — {body.notes}"
        rid = f"{received.site}/{body.resident.resident}" if body.resident.resident else None
        who = f"{body.nurse.name} (RPPS {body.nurse.rpps})"
        notes.append(
            ("INFIRMIER", who, pids.get(rid) if rid else first, text, received.received_at)
        )
    for received, implant in data.implants:
        codes = ", ".join(sorted({a.code for a in implant.alerts})) or "aucune alerte"
        text = (
            f"Transmission implant {received.device} ({implant.device.model}, série "
            f"{implant.device.serial}) : {codes}"
        )
        notes.append(("AUTRE", "télésurveillance implant", first, text, received.received_at))
    latest: dict[str, Any] = {}
    for o in data.observations:
        latest[o.code] = o
    if latest:
        parts = [
            f"{LOINC[c].display if c in LOINC else c} {_value(o.value, o.coded)}"
            f"{' ' + o.unit if o.unit else ''} ({o.method}, {hub_time(o.measured_at)})"
            for c, o in sorted(latest.items())
        ]
        notes.append(("AUTRE", "objets connectés", first, "Dernières constantes : "
                      + "; ".join(parts), None))  # fmt: skip
    for v in data.video:
        text = f"Vidéo {v['session']} : {v['event']}"
        if v["by"]:
            text += f" par {v['by']} ({v['relation'] or '-'}, {v['how'] or '-'})"
        notes.append(("AUTRE", "lien vidéo", first, text, v["at"]))
    if data.reasons:
        text = (
            f"Suggestion du tri : {data.suggested_priority} (NEWS2 "
            f"{data.news2 if data.news2 is not None else '—'}) — " + "; ".join(data.reasons)
        )
        notes.append(("AUTRE", "aide au tri", first, text, None))
    return [
        MedicalNote(
            medicalNoteId=f"fr.health.{data.centre}.medicalNote.{sender}.{i}",
            operator=Operator(role=role, label=who),
            patientId=pid,
            creation=hub_time(at) if at else None,
            freetext=text,
        )
        for i, (role, who, pid, text, at) in enumerate(notes, 1)
    ]


def _decisions(data: CaseData) -> list[Decision]:
    first = next(iter(data.patient_ids().values()), None)
    return [
        Decision(
            creation=hub_time(d.signed_at),
            operator=Operator(role="MEDECIN", label=d.author),
            decisionType=d.decision_type,
            patientId=first,
            resourceType=d.resource,
            orientationType=d.orientation,
        )
        for d, _, _ in data.decisions
    ]


def _custom(data: CaseData) -> list[CustomEntry]:
    case = {
        "site": data.site,
        "patients": {pid: rid for rid, pid in data.patient_ids().items()},
        "sources": data.sources,
        "suggested_priority": data.suggested_priority,
        "decided_priority": data.decided_priority,
        "news2": data.news2,
        "qsofa": data.qsofa,
        "reasons": data.reasons,
        "implant_alerts": data.implant_alerts,
    }
    out = [
        CustomEntry(
            key=CASE_KEY,
            label="Dossier (console SAMU)",
            value=json.dumps(case, ensure_ascii=False, separators=(",", ":")),
        )
    ]
    devices = {
        "implants": [
            {
                "device": r.device,
                "site": r.site,
                "type": b.device.type,
                "model": b.device.model,
                "serial": b.device.serial,
                "session": b.session.type,
                "time": b.session.time.isoformat(),
                "alerts": [a.code for a in b.alerts],
            }
            for r, b in data.implants
        ],
        "devices": sorted(
            {(o.device, data.devices.get((data.site, o.device), "")) for o in data.observations}
        ),
        "attachments": [
            a.model_dump(mode="json", exclude_none=True)
            for _, b in data.bilans
            for a in b.attachments
        ],
    }
    if any(devices.values()):
        out.append(
            CustomEntry(
                key=DEVICES_KEY,
                label="Objets connectés, alertes implant, pièces jointes (SHA-256)",
                value=json.dumps(devices, ensure_ascii=False, separators=(",", ":")),
            )
        )
    if data.video:
        out.append(
            CustomEntry(
                key=VIDEO_KEY,
                label="Consentement vidéo",
                value=json.dumps(data.video, ensure_ascii=False, separators=(",", ":")),
            )
        )
    return out


def export_rs_eda(data: CaseData, codes_dir: Path, *, identity: bool) -> CreateCaseHealth:
    """The case as ``createCaseHealth`` (see the module docstring).

    Raises:
        CodesError: the nomenclatures are missing.
    """
    flags: set[str] = set()
    for _, body in data.bilans:
        flags |= bilan_flags(body)
    implant = bool(data.implant_alerts or data.implants)
    happened = what_happened(flags)
    motive_code = motive(flags, implant)
    base = data.latest_hub_case()
    built = CreateCaseHealth(
        caseId=data.case_id,
        senderCaseId=data.case_id.rsplit(".", 1)[-1],
        creation=hub_time(data.opened_at),
        owner=f"fr.health.{data.centre}",
        qualification=Qualification(
            whatsHappen=Coded(code=happened, label=label(codes_dir, "fait", happened)),
            locationKind=Coded(code=EHPAD, label=label(codes_dir, "lieu", EHPAD)),
            healthMotive=Coded(code=motive_code, label=label(codes_dir, "motif", motive_code)),
            details=CaseDetails(
                status=data.status, priority=data.priority, careLevel=data.care_level
            ),
        ),
        location=Location(name=data.site, freetext=f"EHPAD {data.site}"),
    )
    if data.bilans:
        received, body = data.bilans[0]
        built.initialAlert = InitialAlert(
            reception=hub_time(received.received_at),
            caller=Caller(
                type=NURSE_CALLER,
                callerContact=Contact(
                    channel="APPLICATION", type="WEB", detail=f"{received.site}/{received.device}"
                ),
                detailedName=DetailedName(complete=body.nurse.name),
                freetext=f"{label(codes_dir, 'appelant', NURSE_CALLER)} EHPAD, RPPS "
                f"{body.nurse.rpps}",
            ),
        )
    elif data.implants or "vitals" in data.sources:
        device = data.implants[0][0].device if data.implants else data.opened_by
        built.initialAlert = InitialAlert(
            reception=hub_time(data.opened_at),
            caller=Caller(
                type=OBJECT_CALLER,
                callerContact=Contact(channel="APPLICATION", type="WEB", detail=device),
                freetext=label(codes_dir, "appelant", OBJECT_CALLER),
            ),
        )
    patients = _patients(data, identity)
    built.patient = patients or None
    built.medicalNote = _notes(data) or None
    built.decision = _decisions(data) or None
    built.additionalInformation = AdditionalInformation(customMap=_custom(data))
    if base is not None:
        return _over(base, built, data, identity)
    return built


def _over(
    base: dict[str, Any], built: CreateCaseHealth, data: CaseData, identity: bool
) -> CreateCaseHealth:
    """A received case with what the console knows laid over it."""
    received = CreateCaseHealth.model_validate(base)
    out = received.model_copy(deep=True)
    q = out.qualification
    details = q.details or CaseDetails()
    details.status = data.status if data.status in _STATUSES else details.status
    details.priority = (
        data.priority if data.priority != "NR" or not details.priority else (details.priority)
    )
    if data.care_level is not None:
        details.careLevel = data.care_level
    q.details = details
    patients = {p.patientId: p for p in out.patient or []}
    for p in built.patient or []:
        patients.setdefault(p.patientId, p)
    out.patient = list(patients.values()) or None
    if not identity:
        for p in out.patient or []:
            p.identity = None
            if p.administrativeFile is not None:
                p.administrativeFile.externalId = None
    notes = {n.medicalNoteId: n for n in out.medicalNote or []}
    known = {n.freetext for n in notes.values()}
    for n in built.medicalNote or []:
        if n.freetext not in known:
            n.medicalNoteId = n.medicalNoteId.rsplit(".", 1)[0] + f".{len(notes) + 1}"
            notes[n.medicalNoteId] = n
    out.medicalNote = list(notes.values()) or None
    decisions = list(out.decision or [])
    seen = {(d.creation, d.decisionType, d.operator.label) for d in decisions}
    for d in built.decision or []:
        if (d.creation, d.decisionType, d.operator.label) not in seen:
            decisions.append(d)
    out.decision = decisions or None
    entries = (
        {e.key: e for e in (out.additionalInformation.customMap or [])}
        if (out.additionalInformation)
        else {}
    )
    ours = (
        {e.key: e for e in (built.additionalInformation.customMap or [])}
        if (built.additionalInformation)
        else {}
    )
    merged = {**entries, **ours}
    order = [k for k in (CASE_KEY, DEVICES_KEY, VIDEO_KEY) if k in merged]
    order += [k for k in merged if k not in order]
    out.additionalInformation = AdditionalInformation(customMap=[merged[k] for k in order[:3]])
    return out
