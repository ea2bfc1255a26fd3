"""``samu fhir export`` and ``samu records compte-rendu --format fhir|rs-eda``.

The bundle must parse with the ``fhir.resources`` R4B models, be a document whose first
entry is the Composition, resolve every reference inside itself, code SpO2 with both
LOINC codes, and carry in its Provenance the physician's Ed25519 signature of the
compte rendu — the very bytes stored, which verify against the physician's key.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from console.cases import default_dir
from console.cli import EXIT_OK, EXIT_USAGE, main
from console.interop import check_references, load_schemas
from tests.test_interop_hub_sante import build_db

pytestmark = pytest.mark.skipif(
    not (default_dir() / "schemas").is_dir(),
    reason=f"Hub Santé reference files absent ({default_dir()}): ../shared/reference is not here",
)


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, str, dict]]:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("fhir")
    db = tmp / "samu.db"
    case_id, _ = build_db(db)
    out = tmp / "bundle.json"
    assert (
        main(["fhir", "export", "--db", str(db), "--case", case_id, "--audit", "-o", str(out)])
        == EXIT_OK
    )
    yield db, case_id, json.loads(out.read_text(encoding="utf-8"))


def _of(bundle: dict, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_parses_and_every_reference_resolves(exported) -> None:  # type: ignore[no-untyped-def]
    _, case_id, bundle = exported
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document" and parsed.identifier is not None
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Composition"
    for kind in (
        "Patient",
        "Practitioner",
        "Observation",
        "Device",
        "Consent",
        "Provenance",
        "AuditEvent",
    ):
        assert kind in kinds, kind
    assert check_references(bundle) == set()
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    (composition,) = _of(bundle, "Composition")
    assert case_id in composition["title"] and composition["status"] == "final"


def test_observations_are_vital_signs_with_loinc_ucum_device_and_time(exported) -> None:  # type: ignore[no-untyped-def]
    _, _, bundle = exported
    observations = _of(bundle, "Observation")
    assert observations
    devices = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Device"}
    spo2 = 0
    for o in observations:
        assert o["category"][0]["coding"][0]["code"] == "vital-signs"
        loinc = [c["code"] for c in o["code"]["coding"] if c["system"] == "http://loinc.org"]
        assert loinc
        assert o["device"]["reference"] in devices and o["effectiveDateTime"]
        if "valueQuantity" in o:
            assert o["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        if "59408-5" in loinc or "2708-6" in loinc:
            assert {"59408-5", "2708-6"} <= set(loinc)
            assert o["valueQuantity"]["code"] == "%"
            spo2 += 1
    assert spo2 > 0
    coded = [c for d in _of(bundle, "Device") for c in d.get("type", {}).get("coding", [])]
    assert any(
        c["system"] == "urn:iso:std:iso:11073:10101" and c["code"] == "150456" for c in coded
    )


def test_provenance_carries_the_physicians_signature(exported) -> None:  # type: ignore[no-untyped-def]
    db, _, bundle = exported
    (composition_entry,) = [
        e for e in bundle["entry"] if e["resource"]["resourceType"] == "Composition"
    ]
    (prov,) = _of(bundle, "Provenance")
    assert prov["target"] == [{"reference": composition_entry["fullUrl"]}]
    (signature,) = prov["signature"]
    conn = sqlite3.connect(db)
    (stored,) = conn.execute("SELECT signature FROM comptes_rendus").fetchone()
    assert base64.b64decode(signature["data"]) == bytes(stored)
    assert len(bytes(stored)) == 64  # Ed25519


def test_video_consent_and_audit_events(exported) -> None:  # type: ignore[no-untyped-def]
    _, _, bundle = exported
    (consent,) = _of(bundle, "Consent")
    assert consent["status"] == "active" and "Marie D." in consent["performer"][0]["display"]
    audits = _of(bundle, "AuditEvent")
    assert audits and all(a["entity"][0]["what"]["reference"] for a in audits)


def test_no_identity_without_a_physician(exported) -> None:  # type: ignore[no-untyped-def]
    _, _, bundle = exported
    (patient,) = _of(bundle, "Patient")
    assert "name" not in patient and "birthDate" not in patient


def test_records_compte_rendu_formats(exported, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db, case_id, _ = exported
    assert main(["records", "compte-rendu", case_id, "--db", str(db), "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    assert check_references(bundle) == set()
    assert main(["records", "compte-rendu", case_id, "--db", str(db), "--format", "rs-eda"]) == 0
    message = json.loads(capsys.readouterr().out)
    assert load_schemas(default_dir().resolve()).validate(message).ok


def test_fhir_export_errors(exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db, _, _ = exported
    out = tmp_path / "b.json"
    assert (
        main(["fhir", "export", "--db", str(db), "--case", "fr.health.samu075.X", "-o", str(out)])
        == EXIT_USAGE
    )
    assert "no case" in capsys.readouterr().err and not out.exists()
