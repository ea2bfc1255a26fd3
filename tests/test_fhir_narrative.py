"""``samu fhir export`` of a case whose text from outside holds control characters and markup.

A nurse's bilan (name, complaint, notes, DLU, identity traits), an implant's serial and
model (as a vendor's HL7 ``\\X1B\\`` escape delivers them), the case's reasons and a video
consent's performer go through the exporter end to end. Every narrative ``div`` must be
well-formed XHTML showing control characters as visible escapes and markup as text; every
other string must be a valid FHIR ``string`` (no C0 control but tab, CR, LF), otherwise as
received; structured values are untouched; the bundle still parses with ``fhir.resources``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st

import scenarios
from console.cli import EXIT_OK, main
from console.interop import check_references, fhir_bundle, load_case
from console.interop._fhir import fhir_string, narrative
from console.services import open_services
from console.settings import Settings
from protocols import has_control, printable

XHTML = "{http://www.w3.org/1999/xhtml}"
#: What neither a FHIR string nor XML 1.0 may hold.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
REASON = "<script>alert(1)</script> \x1b]0;PWNED\x07\x1b[2J\x00\x0b \u202eevil\r\nsuite"
PERFORMER = "Marie\x1b[31m D.\x00"

# The stroke scenario, its free text laced with control characters and markup (TOML
# escapes), plus an implant for the same resident whose serial and model carry them too.
_EDITS = {
    'complaint = "Hémiplégie': 'complaint = "<script>x</script>\\u001b[31m\\u0000 Hémiplégie',
    'text = "Dernière': 'text = "\\u001b]0;PWNED\\u0007\\u000b Dernière',
    'history = ["HTA"': 'history = ["HTA\\u001b[2J"',
    'name = "Sophie GARNIER"': 'name = "Sophie\\u001b[5m GARNIER"',
    'birth_name = "BERNARD"': 'birth_name = "BER\\u0007NARD"',
    "[[video]]": """[[implants]]
id = "icd-0311"
type = "icd"
patient = "res-0311"
model = "<b>VR</b>\\u0007 200\\u202e"
serial = "S\\u001b[31m-1\\u0000"
transmissions = { every = "24h", first_at = "1m" }

[[implants.events]]
at = "3m"
kind = "vt_episode"
therapy = "shock"
duration = 20

[[video]]""",
}


def _scenario() -> str:
    text = (scenarios.LIBRARY_DIR / "stroke-video-fast.toml").read_text(encoding="utf-8")
    for old, new in _EDITS.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("fhir-narrative")
    db = tmp / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.loads_scenario(_scenario()), services).run()
        (case_id,) = services.store.fetchone("SELECT case_id FROM cases")
        with services.store.transaction() as conn:
            # A reason as another centre's samu.case entry or a future rule could word it.
            conn.execute(
                "UPDATE cases SET reasons = ? WHERE case_id = ?",
                (json.dumps([REASON, "bilan: FAST positive"]), case_id),
            )
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO video_events (session, case_ref, msg_id, event, at, consent_by, relation,"
        " how, recorded_by) VALUES ('s1', ?, 0, 'consent_granted', ?, ?, 'fille', 'oral',"
        " 'operator:drmartin')",
        (case_id, datetime.now(UTC).isoformat(), PERFORMER),
    )
    conn.commit()
    conn.close()
    out = tmp / "bundle.json"
    argv = ["fhir", "export", "--db", str(db), "--case", case_id, "--audit", "-o", str(out)]
    assert main(argv) == EXIT_OK
    yield db, case_id, json.loads(out.read_text(encoding="utf-8"))


def _strings(node: object, path: str = "$") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def _of(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _sections(bundle: dict[str, Any]) -> dict[str, ElementTree.Element]:
    (composition,) = _of(bundle, "Composition")
    return {s["title"]: ElementTree.fromstring(s["text"]["div"]) for s in composition["section"]}


def test_the_case_carries_the_hostile_text(exported: tuple[Path, str, dict[str, Any]]) -> None:
    db, case_id, _ = exported
    with open_services(Settings(db=db)) as services:
        data = load_case(services.store, services.accounts, services.master_key, case_id)
    (_, bilan), *_ = data.bilans
    assert "\x1b[31m" in bilan.complaint and bilan.dlu is not None
    assert "\x1b" in bilan.nurse.name and "\x07" in (bilan.notes or "")
    assert next(i.device.serial for _, i in data.implants) == "S\x1b[31m-1\x00"
    assert REASON in data.reasons


def test_the_bundle_still_parses_and_resolves(exported: tuple[Path, str, dict[str, Any]]) -> None:
    _, _, bundle = exported
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    assert check_references(bundle) == set()


def test_every_narrative_is_well_formed_xhtml_without_control_characters(
    exported: tuple[Path, str, dict[str, Any]],
) -> None:
    _, _, bundle = exported
    divs = [(p, s) for p, s in _strings(bundle) if p.endswith(".div")]
    assert len(divs) >= 3
    for path, div in divs:
        assert not has_control(div), path
        root = ElementTree.fromstring(div)  # well-formed XML, or this raises
        assert root.tag == f"{XHTML}div", path
        assert {e.tag for e in root.iter()} <= {f"{XHTML}{t}" for t in ("div", "p", "ul", "li")}
        assert not has_control("".join(root.itertext())), path


def test_narrative_shows_controls_as_escapes_and_markup_as_text(
    exported: tuple[Path, str, dict[str, Any]],
) -> None:
    _, _, bundle = exported
    sections = _sections(bundle)
    reasons = [li.text for li in sections["Suggestion du tri"].iter(f"{XHTML}li")]
    assert reasons == [
        "<script>alert(1)</script> \\x1b]0;PWNED\\x07\\x1b[2J\\x00\\x0b \\u202eevil\nsuite",
        "bilan: FAST positive",
    ]
    (devices,) = sections["Objets connectés et implants"].iter(f"{XHTML}p")
    assert "implant:S\\x1b[31m-1\\x00" in (devices.text or "")


def test_strings_keep_what_was_received_except_what_fhir_forbids(
    exported: tuple[Path, str, dict[str, Any]],
) -> None:
    _, _, bundle = exported
    for path, text in _strings(bundle):
        assert not FORBIDDEN.search(text), path
    (implant,) = [d for d in _of(bundle, "Device") if "serialNumber" in d]
    assert implant["serialNumber"] == "S\\x1b[31m-1\\x00"
    # Markup and a bidirectional mark are valid FHIR text: kept as the vendor sent them.
    assert implant["modelNumber"] == "<b>VR</b>\\x07 200\u202e"
    names = [p["name"][0]["text"] for p in _of(bundle, "Practitioner")]
    assert "Sophie\\x1b[5m GARNIER" in names
    (consent,) = _of(bundle, "Consent")
    assert consent["performer"][0]["display"].startswith("Marie\\x1b[31m D.\\x00")


def test_structured_values_are_untouched(exported: tuple[Path, str, dict[str, Any]]) -> None:
    db, _, bundle = exported
    conn = sqlite3.connect(db)
    stored = {(c, v, u) for c, v, u in conn.execute("SELECT code, value, unit FROM observations")}
    conn.close()
    observations = _of(bundle, "Observation")
    assert observations
    for o in observations:
        loinc = [c["code"] for c in o["code"]["coding"] if c["system"] == "http://loinc.org"]
        if "valueQuantity" in o:
            q = o["valueQuantity"]
            assert q["code"] == q["unit"] and q["system"] == "http://unitsofmeasure.org"
            assert any((c, q["value"], q["unit"]) in stored for c in loinc), o["code"]


def test_identity_traits_with_a_control_character(
    exported: tuple[Path, str, dict[str, Any]],
) -> None:
    db, case_id, _ = exported
    with open_services(Settings(db=db)) as services:
        data = load_case(services.store, services.accounts, services.master_key, case_id)
    bundle = json.loads(fhir_bundle(data, identity=True))
    (patient,) = _of(bundle, "Patient")
    assert patient["name"][0]["family"] == "BER\\x07NARD"
    assert not any(FORBIDDEN.search(text) for _, text in _strings(bundle))
    Bundle.model_validate(bundle)


# --- the two helpers ------------------------------------------------------------------------


@given(st.text())
def test_narrative_is_xml_text_with_no_control_character(text: str) -> None:
    out = narrative(text)
    assert not has_control(out) and "<" not in out
    root = ElementTree.fromstring(f'<div xmlns="http://www.w3.org/1999/xhtml">{out}</div>')
    shown = root.text or ""
    assert not has_control(shown)
    if not re.search("[\r\ud800-\udfff\ufffe\uffff]", text):
        assert shown == printable(text)  # what the console's screens show


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Cn"))))
def test_narrative_keeps_printable_text(text: str) -> None:
    root = ElementTree.fromstring(f"<div>{narrative(text)}</div>")
    assert (root.text or "") == text


@given(st.text())
def test_fhir_string_removes_only_what_fhir_forbids(text: str) -> None:
    out = fhir_string(text)
    assert not FORBIDDEN.search(out)
    if not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", text):
        assert out == text
