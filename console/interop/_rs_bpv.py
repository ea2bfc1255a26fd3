"""The nurse's bilan as RS-BPV ``interventionReport`` (the official *bilan patient victime*).

One message per bilan: redactor (the nurse, ``INFIRMIER``), patient (``patientId``;
names only with identity allowed — the schema requires a last and first name, so a
pseudonymous export writes ``ANONYME``), creation (when the bilan was received), and
the evaluation parameters ``SATURATION_OXYGENE``, ``PRESSION_ARTERIELLE``,
``FREQUENCE_CARDIAQUE``, ``FREQUENCE_RESPIRATOIRE``, ``TEMPERATURE``,
``HEMOGLOCOTEST``, each with its origin in ``precision`` (``device`` or ``manual``, then
the UCUM unit and the time measured). A bilan received over Hub Santé is written back as
it came.
"""

from __future__ import annotations

from typing import Any

from console.interop._case import CaseData, hub_time, inner, patient_id
from console.interop._models import BpvPatient, Evaluation, InterventionReport, Redactor, Vital
from console.interop._rs_eda import bilan_flags
from protocols import BilanBody, Observation

ANONYMOUS = "ANONYME"
#: LOINC → RS-BPV parameter type (blood pressure is built from 8480-6 and 8462-4).
PARAMETER_OF = {
    "59408-5": "SATURATION_OXYGENE",
    "2708-6": "SATURATION_OXYGENE",
    "8867-4": "FREQUENCE_CARDIAQUE",
    "9279-1": "FREQUENCE_RESPIRATOIRE",
    "8310-5": "TEMPERATURE",
    "41653-7": "HEMOGLOCOTEST",
}


def _precision(o: Observation) -> str:
    return f"{o.method}; unit {o.unit}; measured {hub_time(o.time)}"


def parameters(observations: tuple[Observation, ...]) -> list[Vital]:
    """The evaluation parameters of a bilan's observations (latest per type)."""
    latest: dict[str, Vital] = {}
    by_time: dict[str, dict[str, Observation]] = {}
    for o in sorted(observations, key=lambda x: x.time):
        if o.code in ("8480-6", "8462-4"):
            by_time.setdefault(o.time.isoformat(), {})[o.code] = o
            continue
        kind = PARAMETER_OF.get(o.code)
        if kind is None or isinstance(o.value, str):
            continue
        latest[kind] = Vital(type=kind, value=f"{o.value:g}", precision=_precision(o))
    for pair in by_time.values():
        sys_, dia = pair.get("8480-6"), pair.get("8462-4")
        if sys_ is not None and dia is not None:
            latest["PRESSION_ARTERIELLE"] = Vital(
                type="PRESSION_ARTERIELLE",
                value=f"{sys_.value:g}/{dia.value:g}",
                precision=_precision(sys_),
            )
    order = ("SATURATION_OXYGENE", "PRESSION_ARTERIELLE", "FREQUENCE_CARDIAQUE",
             "FREQUENCE_RESPIRATOIRE", "TEMPERATURE", "HEMOGLOCOTEST")  # fmt: skip
    return [latest[k] for k in order if k in latest]


def bilan_report(
    data: CaseData, site: str, msg_id: int, received_at: str, body: BilanBody, *, identity: bool
) -> InterventionReport:
    r = body.resident
    rid = f"{site}/{r.resident}" if r.resident else (data.residents[0] if data.residents else "")
    patient = BpvPatient(
        patientId=patient_id(data.centre, rid), lastName=ANONYMOUS, firstName=ANONYMOUS
    )
    if identity:
        patient.lastName = r.used_name or r.birth_name
        patient.firstName = " ".join(r.first_names)
        patient.birthName = r.birth_name
        patient.birthDate = r.birth_date.isoformat()
        patient.sex = r.sex
    flags = sorted(bilan_flags(body))
    freetext = [body.complaint]
    if flags:
        freetext.append("signes : " + ", ".join(flags))
    if body.flags.pain is not None:
        freetext.append(f"douleur {body.flags.pain}/10")
    if body.on_oxygen is not None:
        freetext.append("sous oxygène" if body.on_oxygen else "air ambiant")
    if body.notes:
        freetext.append(body.notes)
    dlu = body.dlu
    return InterventionReport(
        caseId=data.case_id,
        reportId=f"{data.case_id.rsplit('.', 1)[-1]}.bilan.{msg_id}",
        redactor=Redactor(role="INFIRMIER", label=f"{body.nurse.name} (RPPS {body.nurse.rpps})"),
        creation=hub_time(received_at),
        patient=patient,
        evaluation=Evaluation(
            parameter=parameters(body.observations) or None,
            medicalHistory="; ".join(dlu.history) if dlu and dlu.history else None,
            treatment="; ".join(dlu.treatments) if dlu and dlu.treatments else None,
            freetext=freetext,
        ),
    )


def export_rs_bpv(data: CaseData, *, identity: bool) -> list[dict[str, Any]]:
    """Every bilan of the case as ``interventionReport`` content, oldest first."""
    out: list[tuple[str, dict[str, Any]]] = []
    for received, body in data.bilans:
        report = bilan_report(
            data, received.site, received.msg_id, received.received_at, body, identity=identity
        )
        out.append((received.received_at, report.wire()))
    for received, message in data.received_bilans:
        content = inner(message)
        report_content = content.get("interventionReport")
        if isinstance(report_content, dict):
            kept = InterventionReport.model_validate(report_content)
            if not identity:
                kept.patient.lastName = kept.patient.firstName = ANONYMOUS
                kept.patient.birthName = kept.patient.birthDate = kept.patient.sex = None
                kept.patient.externalId = None
            out.append((received.received_at, kept.wire()))
    out.sort(key=lambda x: x[0])
    return [c for _, c in out]
