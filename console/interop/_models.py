# ruff: noqa: N815 - field names are the official Hub Santé (camelCase) names
"""Pydantic models of the parts of the Hub Santé model the console uses.

Written by hand rather than generated from the schemas (docs/interop.md says why in
full): the official schemas are ~500 kB across 24 files, of which the console uses a
few dozen fields of three messages; a generator (datamodel-code-generator) would add a
build step and a dependency, and would produce thousands of lines that change with every
schema version although the console's use of them does not. The schemas stay the
authority: every message is validated with jsonschema against the official files (read
at run time) before it is parsed here, and every message built here is validated again
before it is written. These models give the code named, typed fields instead of
dictionaries; ``extra="allow"`` keeps fields the console does not use, so an imported
message survives an import → export round trip whole.

Field names are the official ones (camelCase), so ``model_dump(exclude_none=True)``
is the wire form.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HubModel(BaseModel):
    """Base: official field names, unknown fields kept (validated by the schema)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON form (no nulls: the schemas forbid them)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


# --------------------------------------------------------------------------------- RS-EDA


class Coded(HubModel):
    """A nomenclature entry (``whatsHappen``, ``locationKind``, ``healthMotive``)."""

    code: str
    label: str


class CaseDetails(HubModel):
    status: str | None = None
    attribution: str | None = None
    priority: str | None = None
    careLevel: str | None = None


class Qualification(HubModel):
    origin: str | None = None
    whatsHappen: Coded | None = None
    locationKind: Coded | None = None
    healthMotive: Coded | None = None
    details: CaseDetails | None = None


class City(HubModel):
    name: str | None = None
    inseeCode: str | None = None


class Location(HubModel):
    name: str | None = None
    freetext: str | None = None
    city: City | None = None


class Contact(HubModel):
    channel: str
    type: str
    detail: str


class DetailedName(HubModel):
    complete: str
    lastName: str | None = None
    firstName: str | None = None


class Caller(HubModel):
    callerContact: Contact
    type: str | None = None
    freetext: str | None = None
    detailedName: DetailedName | None = None


class Note(HubModel):
    creation: str | None = None
    freetext: str | None = None


class InitialAlert(HubModel):
    reception: str
    caller: Caller
    notes: list[Note] | None = None


class StrictFeatures(HubModel):
    birthName: str | None = None
    birthDate: str | None = None
    sex: str | None = None


class Identity(HubModel):
    strictFeatures: StrictFeatures | None = None
    nonStrictFeatures: DetailedName | None = None


class ExternalId(HubModel):
    source: str
    value: str


class AdministrativeFile(HubModel):
    externalId: list[ExternalId] | None = None


class PatientDetail(HubModel):
    weight: float | None = None
    height: float | None = None
    age: str | None = None
    careLevel: str | None = None
    medicalHistory: str | None = None
    treatment: str | None = None


class Patient(HubModel):
    patientId: str
    administrativeFile: AdministrativeFile | None = None
    identity: Identity | None = None
    detail: PatientDetail | None = None


class Operator(HubModel):
    role: str
    label: str | None = None


class MedicalNote(HubModel):
    medicalNoteId: str
    operator: Operator
    freetext: str
    patientId: str | None = None
    creation: str | None = None


class Decision(HubModel):
    creation: str
    operator: Operator
    decisionType: str
    patientId: str | None = None
    resourceType: str | None = None
    medicalTransport: bool | None = None
    orientationType: str | None = None


class CustomEntry(HubModel):
    """One ``additionalInformation.customMap`` entry (the schema allows three)."""

    key: str
    value: str
    label: str | None = None
    freetext: str | None = None


class AdditionalInformation(HubModel):
    customMap: list[CustomEntry] | None = Field(default=None, max_length=3)


class CreateCaseHealth(HubModel):
    """RS-EDA ``createCaseHealth``: the case as it travels between SAMU."""

    caseId: str
    creation: str
    qualification: Qualification
    location: Location
    owner: str
    senderCaseId: str | None = None
    perimeter: str | None = None
    interventionType: str | None = None
    initialAlert: InitialAlert | None = None
    patient: list[Patient] | None = None
    medicalNote: list[MedicalNote] | None = None
    decision: list[Decision] | None = None
    additionalInformation: AdditionalInformation | None = None


# --------------------------------------------------------------------------------- RS-BPV


class Redactor(HubModel):
    role: str
    label: str | None = None


class BpvPatient(HubModel):
    patientId: str
    lastName: str
    firstName: str
    birthName: str | None = None
    birthDate: str | None = None
    age: str | None = None
    sex: str | None = None
    externalId: list[ExternalId] | None = None
    height: int | None = None
    weight: int | None = None


class Vital(HubModel):
    """An evaluation parameter (``SATURATION_OXYGENE``…), its value as text."""

    type: str
    value: str
    precision: str | None = None


class Evaluation(HubModel):
    procedure: list[str] | None = None
    mainDiagnosis: str | None = None
    associatedDiagnosis: list[str] | None = None
    parameter: list[Vital] | None = None
    medicalHistory: str | None = None
    treatment: str | None = None
    freetext: list[str] | None = None


class InterventionReport(HubModel):
    """RS-BPV ``interventionReport``: the *bilan patient victime*."""

    caseId: str
    reportId: str
    redactor: Redactor
    creation: str
    patient: BpvPatient
    evaluation: Evaluation | None = None


# --------------------------------------------------------------------------------- EDXL-DE


class Party(HubModel):
    name: str
    URI: str


class ExplicitAddress(HubModel):
    explicitAddressScheme: str
    explicitAddressValue: str


class Descriptor(HubModel):
    language: str
    explicitAddress: ExplicitAddress


class EmbeddedJsonContent(HubModel):
    message: dict[str, Any]


class JsonContent(HubModel):
    embeddedJsonContent: EmbeddedJsonContent


class ContentObject(HubModel):
    jsonContent: JsonContent


class DistributionElement(HubModel):
    """RC-DE: the header of the message inside the envelope (content key beside it)."""

    messageId: str
    sender: Party
    sentAt: str
    kind: str
    status: str
    recipient: list[Party]


class EdxlEnvelope(HubModel):
    """The EDXL-DE distribution envelope."""

    distributionID: str
    senderID: str
    dateTimeSent: str
    dateTimeExpires: str
    distributionStatus: str
    distributionKind: str
    descriptor: Descriptor
    content: list[ContentObject]
