"""A case as one FHIR R4 document Bundle, built and validated with ``fhir.resources`` (R4B).

Order and content (interop.md): the Composition (the compte rendu) first, then the
Patient(s), the Practitioners (physicians who decided or signed, nurses who sent a
bilan), the Organization (the SAMU centre: custodian, and author while no physician
signed), the Observations (vital-signs category, LOINC + UCUM, SpO2 coded both 59408-5
and 2708-6, each with its Device and time), the Devices (bedside devices coded with the
IEEE 11073-10101 terms they measure, the implant with its 11073-10103 type), the Consent
(the video consent), the Provenance (target: the Composition; signature: the physician's
Ed25519 signature of the signed compte rendu, base64), and with ``audit`` the case's
AuditEvents.

Every resource is built through its ``fhir.resources`` model (a field the model does not
know fails here, not at the hospital), referenced by a ``urn:uuid`` derived from the case
so that two exports of the same case name the same resources; :func:`check_references`
then proves every reference resolves inside the bundle.

Text from outside (a nurse's name, an implant's serial and model, a consent's performer,
the case's reasons, anything a bilan or another centre sent) is made safe on the way in,
once for every resource (:meth:`_Builder.add`): a narrative ``div`` is built only from
:func:`narrative` text, every other string passes :func:`fhir_string`.
"""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.domainresource import DomainResource as Resource
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.provenance import Provenance
from pydantic import ValidationError

from console.interop._case import CaseData, patient_id
from console.interop._rs_eda import identity_of
from protocols import printable
from protocols.vocab import IDC_DEVICE_TYPES, LOINC, MDC, VALUE_KEYS

LOINC_SYSTEM = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC_SYSTEM = "urn:iso:std:iso:11073:10101"
IDC_SYSTEM = "urn:iso:std:iso:11073:10103"
PATIENT_SYSTEM = "urn:fr:health:hub-sante:patientId"
DEVICE_SYSTEM = "urn:samu:device"
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
#: LOINC → IEEE 11073-10101 code of the same measurement.
MDC_OF_LOINC: dict[str, int] = {
    info.loinc: info.mdc
    for key, info in VALUE_KEYS.items()
    if info.loinc is not None and info.mdc is not None and key != "heart_rate_bpm"
}
_SPO2 = ("59408-5", "2708-6")
_ROLES = {"regulateur": "médecin régulateur"}


class FhirError(ValueError):
    """The bundle did not validate or a reference does not resolve (a bug: nothing written)."""


#: Characters XML 1.0 cannot hold that :func:`protocols.printable` leaves alone: lone
#: surrogates (a JSON ``\\ud800`` escape decodes to one) and the noncharacters U+FFFE/FFFF.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
#: Characters a FHIR ``string`` should not hold (below U+0020 only tab, CR and LF, R4
#: datatypes) and its XML form cannot hold, with the others XML cannot hold.
_NOT_FHIR_STRING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def narrative(text: str) -> str:
    """``text`` as character data of a narrative ``div`` (XHTML): readable, inert, well-formed.

    Markup is escaped (``<script>`` in a complaint stays the text ``<script>``). Control
    characters are shown as visible escapes (``\\x1b``, ``\\x00``) rather than removed,
    exactly as :func:`protocols.printable` shows them on the console's screens: a narrative
    is what a person reads, so it must say that something was there (removing ``\\x00``
    from ``GAR\\x00NIER`` would present a name that was never sent, and a regulator
    comparing the document with the console must see the same text). XML 1.0 forbids most
    C0 controls outright, a terminal showing the document would obey ``ESC``/``BEL``, and
    bidirectional overrides can make a line read differently: all escaped, as are the
    characters XML cannot hold at all (:data:`_NOT_XML`). Newlines (a CR or CRLF becomes
    one, as an XML parser would make it) and tabs are kept; so is every printable
    character of every script.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return html.escape(_NOT_XML.sub(_visible, printable(text)), quote=False)


def fhir_string(text: str) -> str:
    """``text`` as a valid FHIR ``string``: kept as received but for what FHIR forbids.

    FHIR R4 defines ``string`` by the regex ``[ \\r\\n\\t\\S]+`` and says it "SHOULD not
    contain Unicode character points below 32, except for u0009 (horizontal tab), u000D
    (carriage return) and u000A (line feed)"; the XML form of FHIR, into which a hospital
    may well convert the document, cannot carry them at all (XML 1.0), so a bundle
    holding one is one a receiver may reject or fail to store. Those characters
    alone, and what XML cannot hold either, are shown as visible escapes (``\\x1b``), as
    :func:`narrative` does and for the same reason: the value stays faithful to what was
    sent and says that something else was there. Markup, DEL, C1 controls and
    bidirectional marks are valid FHIR text and are kept as received: a string is data,
    and it is the reader's display that escapes it.
    """
    return _NOT_FHIR_STRING.sub(_visible, text)


def _clean(node: Any) -> Any:
    """``node`` (a resource body) with every string through :func:`fhir_string`."""
    if isinstance(node, str):
        return fhir_string(node)
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _urn(case_id: str, what: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{case_id}#{what}')}"


def _time(text: str) -> str:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat()


def _ref(url: str, display: str | None = None) -> dict[str, Any]:
    return {"reference": url, **({"display": display} if display else {})}


class _Builder:
    def __init__(self, data: CaseData, identity: bool) -> None:
        self.data = data
        self.identity = identity
        self.entries: list[tuple[str, Resource]] = []

    def url(self, what: str) -> str:
        return _urn(self.data.case_id, what)

    def add(self, model: type[Resource], what: str, body: dict[str, Any]) -> str:
        url = self.url(what)
        body = {"resourceType": model.get_resource_type(), "id": url.rsplit(":", 1)[-1], **body}
        try:
            self.entries.append((url, model.model_validate(_clean(body))))
        except ValidationError as exc:
            raise FhirError(f"{model.get_resource_type()} {what}: {exc}") from None
        return url


def fhir_bundle(
    data: CaseData, *, identity: bool, audit: list[dict[str, Any]] | None = None
) -> str:
    """The bundle as JSON text (see the module docstring).

    Raises:
        FhirError: a resource does not validate or a reference does not resolve.
    """
    b = _Builder(data, identity)
    composition_url = b.url("composition")
    b.entries.append((composition_url, Organization.model_construct()))  # Composition, below
    org = b.add(
        Organization,
        "organization",
        {
            "identifier": [{"system": "urn:fr:health:hub-sante", "value":
                            f"fr.health.{data.centre}"}],
            "name": f"SAMU {data.centre}",
        },
    )  # fmt: skip
    patients = _patients(b)
    first = next(iter(patients.values()), None)
    practitioners = _practitioners(b)
    devices = _devices(b, first)
    observations = _observations(b, patients, devices)
    consents = _consents(b, first)
    report = data.reports[-1] if data.reports else None
    signer = practitioners.get(report.author) if report else None
    composition = _composition(
        b, patient=first, practitioners=practitioners, org=org, observations=observations,
        consents=consents, devices=devices,
    )  # fmt: skip
    b.entries[0] = (composition_url, _validated(Composition, composition_url, composition))
    prov: dict[str, Any] = {
        "target": [_ref(composition_url)],
        "recorded": _time(report.signed_at) if report else datetime.now(UTC).isoformat(),
        "agent": [{"who": _ref(signer or org)}],
    }
    if report is not None:
        prov["signature"] = [
            {
                "type": [
                    {
                        "system": "urn:iso-astm:E1762-95:2013",
                        "code": "1.2.840.10065.1.12.1.1",
                        "display": "Author's Signature",
                    }
                ],
                "when": _time(report.signed_at),
                "who": _ref(signer or org, report.author),
                "targetFormat": "application/json",
                "sigFormat": "application/octet-stream",
                "data": base64.b64encode(report.signature).decode("ascii"),
            }
        ]
        prov["entity"] = [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": "urn:samu:compte-rendu", "value": report.report_id},
                    "display": f"compte rendu signé (Ed25519, clé {report.key_id})",
                },
            }
        ]
    b.add(Provenance, "provenance", prov)
    for row in audit or []:
        b.add(AuditEvent, f"audit/{row['seq']}", _audit_event(row, composition_url))
    order = ("Composition", "Patient", "Practitioner", "Organization", "Observation", "Device",
             "Consent", "Provenance", "AuditEvent")  # fmt: skip
    b.entries.sort(key=lambda e: order.index(e[1].get_resource_type()))
    bundle_body = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": b.url("bundle")},
        "type": "document",
        "timestamp": datetime.now(UTC).isoformat(),
        "entry": [{"fullUrl": url, "resource": res} for url, res in b.entries],
    }
    try:
        bundle = Bundle.model_validate(bundle_body)
    except ValidationError as exc:
        raise FhirError(f"Bundle: {exc}") from None
    text = bundle.model_dump_json()
    missing = check_references(json.loads(text))
    if missing:
        raise FhirError("references not in the bundle: " + ", ".join(sorted(missing)))
    return text


def _validated(model: type[Resource], url: str, body: dict[str, Any]) -> Resource:
    body = {"resourceType": model.get_resource_type(), "id": url.rsplit(":", 1)[-1], **body}
    try:
        return model.model_validate(_clean(body))
    except ValidationError as exc:
        raise FhirError(f"{model.get_resource_type()}: {exc}") from None


def _references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def check_references(bundle: dict[str, Any]) -> set[str]:
    """References of a bundle that name no entry's ``fullUrl`` (empty: all resolve)."""
    urls = {e.get("fullUrl") for e in bundle.get("entry", [])}
    return {r for r in _references(bundle.get("entry", [])) if r not in urls}


def _patients(b: _Builder) -> dict[str, str]:
    data = b.data
    traits = identity_of(data) if b.identity else {}
    out = {}
    for rid in data.residents:
        body: dict[str, Any] = {
            "identifier": [{"system": PATIENT_SYSTEM, "value": patient_id(data.centre, rid)}]
        }
        bilan = traits.get(rid)
        if bilan is not None:
            r = bilan.resident
            body["name"] = [
                {"use": "official", "family": r.birth_name, "given": list(r.first_names)}
            ]
            if r.used_name:
                body["name"].append({"use": "usual", "family": r.used_name})
            body["birthDate"] = r.birth_date.isoformat()
            body["gender"] = {"M": "male", "F": "female", "O": "other"}.get(r.sex, "unknown")
            if r.ins:
                body["identifier"].append({"system": INS_SYSTEM, "value": r.ins})
        out[rid] = b.add(Patient, f"patient/{rid}", body)
    return out


def _practitioners(b: _Builder) -> dict[str, str]:
    data = b.data
    out: dict[str, str] = {}
    people = [d.author for d, _, _ in data.decisions] + [r.author for r in data.reports]
    for who in dict.fromkeys(people):
        out[who] = b.add(
            Practitioner,
            f"practitioner/{who}",
            {"identifier": [{"system": "urn:samu:user", "value": who}], "name": [{"text": who}]},
        )
    for _, bilan in data.bilans:
        nurse = bilan.nurse
        key = f"rpps:{nurse.rpps}"
        if key not in out:
            out[key] = b.add(
                Practitioner,
                f"practitioner/{key}",
                {
                    "identifier": [{"system": RPPS_SYSTEM, "value": nurse.rpps}],
                    "name": [{"text": nurse.name}],
                },
            )
    return out


def _devices(b: _Builder, patient: str | None) -> dict[str, str]:
    data = b.data
    out: dict[str, str] = {}
    measured: dict[str, set[str]] = {}
    for o in data.observations:
        measured.setdefault(o.device, set()).add(o.code)
    for device, codes in measured.items():
        coding = [
            {"system": MDC_SYSTEM, "code": str(MDC_OF_LOINC[c]), "display": MDC[MDC_OF_LOINC[c]]}
            for c in sorted(codes)
            if c in MDC_OF_LOINC
        ]
        body: dict[str, Any] = {
            "identifier": [{"system": DEVICE_SYSTEM, "value": f"{data.site}/{device}"}],
            "deviceName": [{"name": device, "type": "user-friendly-name"}],
            "type": {"coding": coding, "text": data.devices.get((data.site, device), device)}
            if coding
            else {"text": data.devices.get((data.site, device), device)},
        }
        if patient:
            body["patient"] = _ref(patient)
        out[device] = b.add(Device, f"device/{device}", body)
    for received, implant in data.implants:
        key = f"implant:{implant.device.serial}"
        if key in out:
            continue
        body = {
            "identifier": [
                {"system": DEVICE_SYSTEM, "value": f"{received.site}/{received.device}"}
            ],
            "serialNumber": implant.device.serial,
            "modelNumber": implant.device.model,
            "deviceName": [{"name": implant.device.model, "type": "model-name"}],
            "type": {
                "coding": [
                    {
                        "system": IDC_SYSTEM,
                        "code": str(implant.device.type),
                        "display": IDC_DEVICE_TYPES[implant.device.type],
                    }
                ]
            },
        }
        if implant.device.manufacturer:
            body["manufacturer"] = implant.device.manufacturer
        if patient:
            body["patient"] = _ref(patient)
        out[key] = b.add(Device, f"device/{key}", body)
    return out


def _observations(b: _Builder, patients: dict[str, str], devices: dict[str, str]) -> list[str]:
    out = []
    for o in b.data.observations:
        info = LOINC.get(o.code)
        codes = list(_SPO2) if o.code in _SPO2 else [o.code]
        coding = [
            {"system": LOINC_SYSTEM, "code": c, "display": LOINC[c].display if c in LOINC else c}
            for c in codes
        ]
        mdc = MDC_OF_LOINC.get(o.code)
        if mdc is not None:
            coding.append({"system": MDC_SYSTEM, "code": str(mdc), "display": MDC[mdc]})
        body: dict[str, Any] = {
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                            "display": "Vital Signs",
                        }
                    ]
                }
            ],
            "code": {"coding": coding, "text": info.display if info else o.code},
            "subject": _ref(patients[o.resident]),
            "effectiveDateTime": _time(o.measured_at),
            "device": _ref(devices[o.device]),
            "method": {"text": o.method},
        }
        if o.value is not None and o.unit is not None:
            body["valueQuantity"] = {
                "value": o.value, "unit": o.unit, "system": UCUM, "code": o.unit
            }  # fmt: skip
        else:
            body["valueCodeableConcept"] = {"text": o.coded or ""}
        out.append(b.add(Observation, f"observation/{o.obs_id}", body))
    return out


def _consents(b: _Builder, patient: str | None) -> list[str]:
    out: list[str] = []
    if patient is None:
        return out
    for i, v in enumerate(b.data.video):
        granted = v["event"] == "consent_granted"
        who = ", ".join(x for x in (v["by"], v["relation"], v["how"]) if x) or "inconnu"
        out.append(
            b.add(
                Consent,
                f"consent/{i}",
                {
                    "status": "active" if granted else "inactive",
                    "scope": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                "code": "patient-privacy",
                            }
                        ],
                        "text": "vidéo de régulation",
                    },
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": LOINC_SYSTEM,
                                    "code": "59284-0",
                                    "display": "Patient Consent",
                                }
                            ]
                        }
                    ],
                    "patient": _ref(patient),
                    "dateTime": _time(v["at"]),
                    "performer": [{"display": who}],
                    "policyRule": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "OPTIN" if granted else "OPTOUT",
                            }
                        ]
                    },
                },
            )
        )
    return out


def _composition(
    b: _Builder,
    *,
    patient: str | None,
    practitioners: dict[str, str],
    org: str,
    observations: list[str],
    consents: list[str],
    devices: dict[str, str],
) -> dict[str, Any]:
    data = b.data
    report = data.reports[-1] if data.reports else None
    authors = [_ref(practitioners[d.author], d.author) for d, _, _ in data.decisions] or [_ref(org)]
    decisions = [
        f"{d.priority} {d.care_level} {d.decision_type}"
        f"{' ' + d.resource if d.resource else ''}"
        f"{' → ' + d.orientation if d.orientation else ''} ({d.author}, {d.signed_at})"
        for d, _, _ in data.decisions
    ]
    sections: list[dict[str, Any]] = [
        {
            "title": "Suggestion du tri",
            "text": _div(
                _p(f"{data.suggested_priority}, NEWS2 {data.news2}"), _ul(data.reasons or ["—"])
            ),
            **({"entry": [_ref(u) for u in observations]} if observations else {}),
        },
        {"title": "Décisions", "text": _div(_ul(decisions or ["aucune décision"]))},
    ]
    if devices:
        sections.append(
            {
                "title": "Objets connectés et implants",
                "text": _div(_p(", ".join(sorted(devices)))),
                "entry": [_ref(u) for u in devices.values()],
            }
        )
    if consents:
        sections.append(
            {
                "title": "Consentement vidéo",
                "text": _div(_p(f"{len(consents)} événement(s)")),
                "entry": [_ref(u) for u in consents],
            }
        )
    body: dict[str, Any] = {
        "identifier": {"system": "urn:samu:compte-rendu",
                       "value": report.report_id if report else data.case_id},
        "status": "final" if report else "preliminary",
        "type": {"coding": [{"system": LOINC_SYSTEM, "code": "34133-9",
                             "display": "Summary of episode note"}],
                 "text": "Compte rendu de régulation"},
        "date": _time(report.signed_at) if report else datetime.now(UTC).isoformat(),
        "author": authors,
        "title": f"Compte rendu de régulation — {data.case_id}",
        "custodian": _ref(org),
        "section": sections,
    }  # fmt: skip
    if patient:
        body["subject"] = _ref(patient)
    if report is not None and report.author in practitioners:
        body["attester"] = [
            {"mode": "legal", "time": _time(report.signed_at),
             "party": _ref(practitioners[report.author], report.author)}
        ]  # fmt: skip
    return body


def _div(*html: str) -> dict[str, str]:
    """A generated narrative made of :func:`_p` and :func:`_ul` parts (never of raw text)."""
    return {"status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{"".join(html)}</div>'}  # fmt: skip


def _p(text: str) -> str:
    return f"<p>{narrative(text)}</p>"


def _ul(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{narrative(i)}</li>" for i in items) + "</ul>"


def _audit_event(row: dict[str, Any], composition: str) -> dict[str, Any]:
    action = str(row["action"])
    return {
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110",
                 "display": "Patient Record"},
        "subtype": [{"system": "urn:samu:audit-action", "code": action}],
        "action": "E" if action.endswith((".sign", ".take", ".import", ".write")) else "R",
        "recorded": _time(str(row["time"])),
        "outcome": "0" if row["outcome"] == "success" else "4",
        "agent": [{"who": {"display": str(row["actor"])}, "requestor": True,
                   "role": [{"text": str(row["role"])}]}],
        "source": {"site": str(row["terminal"]), "observer": {"display": "samu console"}},
        "entity": [{"what": _ref(composition), "description": f"seq {row['seq']}"}],
    }  # fmt: skip
