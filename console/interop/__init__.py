"""Exchange with the outside: Hub Santé RS-EDA / RS-BPV, FHIR R4, HL7 v2 IDCO.

* :class:`HubSanteSchemas` validates any Hub Santé message (bare or in its EDXL-DE
  envelope) against the official schemas read from the reference directory at run time.
* :func:`load_case` reads a case once; :func:`export_rs_eda`, :func:`export_rs_bpv` and
  :func:`fhir_bundle` turn it into RS-EDA ``createCaseHealth``, RS-BPV
  ``interventionReport`` and a FHIR R4 document Bundle; :func:`envelope` wraps a message
  in EDXL-DE.
* :class:`HubSanteImporter` opens or updates a case from RS-EDA and attaches an RS-BPV
  bilan, all or nothing.
* :func:`parse_idco` reads HL7 v2 ORU^R01 (IHE PCD-09) implant transmissions into the
  ``implant`` bodies MQTT carries, with a quarantine reason for each bad one.

The models (:mod:`console.interop._models`) are hand-written pydantic models of the
parts of the Hub Santé model the console uses (docs/interop.md says why).
"""

from console.interop._case import (
    PATIENT_ID,
    CaseData,
    CaseNotFoundError,
    hub_time,
    load_case,
    patient_id,
)
from console.interop._envelope import DEFAULT_RECIPIENT, envelope
from console.interop._fhir import FhirError, check_references, fhir_bundle
from console.interop._idco import (
    IDCO_REASONS,
    IdcoError,
    IdcoImport,
    IdcoMessage,
    parse_idco,
    split_messages,
)
from console.interop._import import HubSanteImporter, HubSanteImportError, ImportSummary, parse_json
from console.interop._models import (
    CreateCaseHealth,
    DistributionElement,
    EdxlEnvelope,
    InterventionReport,
)
from console.interop._rs_bpv import export_rs_bpv
from console.interop._rs_eda import export_rs_eda
from console.interop._schemas import (
    HubSanteError,
    HubSanteSchemas,
    SchemaIssue,
    Validation,
    load_schemas,
)

__all__ = [
    "DEFAULT_RECIPIENT",
    "IDCO_REASONS",
    "PATIENT_ID",
    "CaseData",
    "CaseNotFoundError",
    "CreateCaseHealth",
    "DistributionElement",
    "EdxlEnvelope",
    "FhirError",
    "HubSanteError",
    "HubSanteImportError",
    "HubSanteImporter",
    "HubSanteSchemas",
    "IdcoError",
    "IdcoImport",
    "IdcoMessage",
    "ImportSummary",
    "InterventionReport",
    "SchemaIssue",
    "Validation",
    "check_references",
    "envelope",
    "export_rs_bpv",
    "export_rs_eda",
    "fhir_bundle",
    "hub_time",
    "load_case",
    "load_schemas",
    "parse_idco",
    "parse_json",
    "patient_id",
    "split_messages",
]
