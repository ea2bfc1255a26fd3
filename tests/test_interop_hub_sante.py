"""``samu hub-sante export|import|validate`` as interop.md runs them, on the official schemas.

Every export is validated with jsonschema against the official files of
../shared/reference/hub-sante (never copied here); the official examples validate and
import; the official samples that must be refused are refused; round trips keep the
fields; malformed input is one clear error with nothing written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from argon2 import PasswordHasher

import scenarios
from console.auth import AccountService, LocalOperator, code_at
from console.cases import (
    DecisionRequest,
    Decisions,
    build_compte_rendu,
    default_dir,
    sign_compte_rendu,
)
from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.ingest import raw_opener
from console.interop import load_schemas
from console.services import open_services
from console.settings import Settings

REFERENCE = default_dir()
pytestmark = pytest.mark.skipif(
    not (REFERENCE / "schemas").is_dir(),
    reason=f"Hub Santé reference files absent ({REFERENCE}): ../shared/reference is not here",
)
EXAMPLES = sorted((REFERENCE / "examples").glob("*.json"))
FAILING = sorted((REFERENCE / "failing").glob("*.json"))
PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
#: Tables an import writes: their row counts must not move when an import is refused.
WRITTEN = (
    "cases",
    "case_residents",
    "residents",
    "case_timeline",
    "ingest_messages",
    "observations",
)


def build_db(db: Path) -> tuple[str, dict[str, str]]:
    """A database after the stroke scenario (a nurse's bilan, vitals), with a physician's
    signed decision and signed compte rendu, and a video consent; returns the case id
    and the TOTP secrets of ``drmartin`` (regulateur) and ``arm1`` (ARM)."""
    secrets: dict[str, str] = {}
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("stroke-video-fast"), services).run()
        accounts = AccountService(services.store, services.master_key, hasher=FAST)
        for user, role in (("drmartin", "regulateur"), ("arm1", "arm")):
            enrolment = accounts.create_user(OP, user, [role], PW)
            secrets[user] = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
        case_id, suggested = services.store.fetchone(
            "SELECT case_id, suggested_priority FROM cases"
        )
        session = accounts.login(
            "drmartin", PW, code_at(secrets["drmartin"], time.time() - 30), "t1"
        )
        decisions = Decisions(services.store, accounts, services.master_key, codes_dir=REFERENCE)
        decisions.decide(
            session,
            DecisionRequest(
                case_id=case_id,
                priority=suggested,
                care_level="R2",
                decision_type="INTER",
                resource="SMUR.ADULT",
                orientation="URGENCES",
            ),
            now=datetime.now(UTC),
        )
        report = build_compte_rendu(
            services.store,
            decisions,
            case_id,
            open_raw=raw_opener(services.master_key),
            now=datetime.now(UTC),
        )
        sign_compte_rendu(services.store, accounts, services.master_key, session, report)
        accounts.logout(session)
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO video_events (session, case_ref, msg_id, event, at, consent_by, relation,"
        " how, recorded_by) VALUES ('s1', ?, 0, 'consent_granted', ?, 'Marie D.', 'fille',"
        " 'oral', 'operator:drmartin')",
        (case_id, datetime.now(UTC).isoformat()),
    )
    conn.commit()
    conn.close()
    return case_id, secrets


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, str]]]:
    db = tmp_path_factory.mktemp("hub") / "samu.db"
    case_id, secrets = build_db(db)
    yield db, case_id, secrets


def counts(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in WRITTEN}
    finally:
        conn.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def schemas():  # type: ignore[no-untyped-def]
    return load_schemas(REFERENCE.resolve())


# --- validate -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_official_example_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "hub-sante", "validate", str(path))
    assert code == EXIT_OK, out + err
    assert "valid" in out and "invalid" not in out


@pytest.mark.parametrize("path", FAILING, ids=lambda p: p.name)
def test_every_official_failing_sample_is_refused_with_json_paths(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "hub-sante", "validate", str(path))
    assert code == EXIT_CHECK_FAILED
    errors = [line.strip() for line in out.splitlines()[1:]]
    assert errors and all(e.startswith("$") for e in errors)
    # The official validator's findings ("- $.x: is missing…") are among ours.
    expected = (path.parent / (path.name + ".errors")).read_text(encoding="utf-8")
    for raw in expected.splitlines():
        line = raw.strip()
        if line.startswith("- $.") and "is missing but it is required" in line:
            assert line[2:].split(":")[0] in out, line


def test_validate_exit_codes_for_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not.json").write_text("{not json", encoding="utf-8")
    code, _, err = run(capsys, "hub-sante", "validate", str(tmp_path / "not.json"))
    assert code == EXIT_USAGE and "not JSON" in err
    code, _, err = run(capsys, "hub-sante", "validate", str(tmp_path / "missing.json"))
    assert code == EXIT_USAGE and "no such file" in err
    # Unreadable wins over invalid, invalid over valid.
    code, _, _ = run(capsys, "hub-sante", "validate", str(EXAMPLES[0]), str(FAILING[0]))
    assert code == EXIT_CHECK_FAILED


def test_validate_rs_url_and_rc_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = {
        "documentLink": {
            "caseId": "fr.health.samu075.DRFR150752633700001",
            "document": [{"url": "https://example.org/b.pdf"}],
        }
    }
    ref = {"reference": {"distributionID": "fr.health.samu075_1", "step": "INTEGRE"}}
    bad = {"reference": {"distributionID": "x", "step": "LU"}}
    for name, data in (("url.json", url), ("ref.json", ref), ("bad.json", bad)):
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    code, out, _ = run(
        capsys,
        "hub-sante",
        "validate",
        str(tmp_path / "url.json"),
        str(tmp_path / "ref.json"),
        "--json",
    )
    assert code == EXIT_OK
    assert [json.loads(x)["model"] for x in out.splitlines()] == ["RS-URL", "RC-REF"]
    code, out, _ = run(capsys, "hub-sante", "validate", str(tmp_path / "bad.json"))
    assert code == EXIT_CHECK_FAILED and "$.reference.step" in out


# --- export --------------------------------------------------------------------------------


def test_export_bare_and_enveloped_validate_with_official_codes(
    built: tuple[Path, str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, case_id, _ = built
    bare, env = tmp_path / "eda.json", tmp_path / "edxl.json"
    assert (
        run(capsys, "hub-sante", "export", "--db", str(db), "--case", case_id, "-o", str(bare))[0]
        == EXIT_OK
    )
    assert (
        run(
            capsys,
            "hub-sante",
            "export",
            "--db",
            str(db),
            "--case",
            case_id,
            "--envelope",
            "--to",
            "fr.health.samu076",
            "-o",
            str(env),
        )[0]
        == EXIT_OK
    )
    for path in (bare, env):
        assert schemas().validate(json.loads(path.read_text())).ok
        assert path.stat().st_mode & 0o777 == 0o600
    case = json.loads(bare.read_text())["createCaseHealth"]
    assert case["caseId"] == case_id and case["owner"] == "fr.health.samu075"
    q = case["qualification"]
    assert q["locationKind"]["code"] == "L04.09.01"
    assert q["healthMotive"]["code"] == "M03.08"  # FAST positive: signs of stroke
    assert (
        q["details"]["priority"] in ("P0", "P1", "P2", "P3") and q["details"]["careLevel"] == "R2"
    )
    assert case["initialAlert"]["caller"]["type"] == "SANTE.INF"
    (decision,) = case["decision"]
    assert (decision["decisionType"], decision["resourceType"], decision["orientationType"]) == (
        "INTER",
        "SMUR.ADULT",
        "URGENCES",
    )
    (patient,) = case["patient"]
    assert "identity" not in patient and patient["patientId"].startswith(
        "fr.health.samu075.patient."
    )
    keys = [e["key"] for e in case["additionalInformation"]["customMap"]]
    assert keys == ["samu.case", "samu.devices", "samu.video"]
    wrapped = json.loads(env.read_text())
    assert wrapped["senderID"] == "fr.health.samu075"
    assert wrapped["descriptor"]["explicitAddress"]["explicitAddressValue"] == "fr.health.samu076"
    message = wrapped["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]
    assert message["createCaseHealth"]["caseId"] == case_id
    # Reading the case for an export is audited.
    conn = sqlite3.connect(db)
    actions = [
        r[0]
        for r in conn.execute(
            "SELECT action FROM audit_events WHERE object = ?", (f"case:{case_id}",)
        )
    ]
    assert actions.count("case.export") >= 2


def test_identity_only_for_a_signed_in_physician_and_audited(
    built: tuple[Path, str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, case_id, secrets = built
    out = tmp_path / "id.json"
    code, _, err = run(
        capsys, "hub-sante", "export", "--db", str(db), "--case", case_id, "--identity"
    )
    assert code == EXIT_USAGE and "--as USER" in err
    monkeypatch.setenv("SAMU_PASSWORD", PW)
    monkeypatch.setenv("SAMU_TOTP", code_at(secrets["arm1"], time.time()))
    code, _, err = run(
        capsys,
        "hub-sante",
        "export",
        "--db",
        str(db),
        "--case",
        case_id,
        "--identity",
        "--as",
        "arm1",
        "-o",
        str(out),
    )
    assert code == EXIT_CHECK_FAILED and "refused" in err and not out.exists()
    monkeypatch.setenv("SAMU_TOTP", code_at(secrets["drmartin"], time.time()))
    code, _, err = run(
        capsys,
        "hub-sante",
        "export",
        "--db",
        str(db),
        "--case",
        case_id,
        "--identity",
        "--as",
        "drmartin",
        "-o",
        str(out),
    )
    assert code == EXIT_OK, err
    (patient,) = json.loads(out.read_text())["createCaseHealth"]["patient"]
    assert patient["identity"]["strictFeatures"]["birthName"]
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT actor, outcome FROM audit_events WHERE action = 'identity.export'"
    ).fetchall()
    assert ("arm1", "denied") in rows and ("drmartin", "success") in rows


def test_bilan_as_rs_bpv(
    built: tuple[Path, str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, case_id, _ = built
    for extra in ((), ("--envelope",)):
        code, out, err = run(
            capsys, "hub-sante", "export", "--db", str(db), "--case", case_id, "--bilan", *extra
        )
        assert code == EXIT_OK, err
        lines = out.splitlines()
        assert lines
        for line in lines:
            result = schemas().validate(json.loads(line))
            assert result.ok and result.kind == "RS-BPV", result.issues
    report = json.loads(out.splitlines()[0])["content"][0]["jsonContent"]["embeddedJsonContent"][
        "message"
    ]["interventionReport"]
    assert report["redactor"]["role"] == "INFIRMIER"
    assert report["patient"]["lastName"] == "ANONYME"
    kinds = {p["type"]: p for p in report["evaluation"]["parameter"]}
    assert {"SATURATION_OXYGENE", "PRESSION_ARTERIELLE", "FREQUENCE_CARDIAQUE"} <= set(kinds)
    assert all(p["precision"].split(";")[0] in ("device", "manual") for p in kinds.values())


def test_export_refuses_a_stranger_cleanly(
    built: tuple[Path, str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, case_id, _ = built
    out = tmp_path / "x.json"
    code, _, err = run(
        capsys, "hub-sante", "export", "--db", str(db), "--case", "nope", "-o", str(out)
    )
    assert code == EXIT_USAGE and "no case 'nope'" in err and len(err.splitlines()) == 1
    assert not out.exists()
    code, _, err = run(
        capsys, "hub-sante", "export", "--db", str(tmp_path / "none.db"), "--case", case_id
    )
    assert code == EXIT_USAGE and not (tmp_path / "none.db").exists()
    code, _, err = run(
        capsys,
        "hub-sante",
        "export",
        "--db",
        str(db),
        "--case",
        case_id,
        "-o",
        str(tmp_path / "no" / "dir.json"),
    )
    assert code == EXIT_USAGE and "no such directory" in err


# --- import --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_official_example_imports(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "in.db"
    code, out, err = run(capsys, "hub-sante", "import", str(path), "--db", str(db))
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert summary["created"] is True and summary["updated"] is False
    content = json.loads(path.read_text())
    assert summary["case_id"] in json.dumps(content)
    # Again: nothing new (the same distribution or the same bytes).
    code, out, _ = run(capsys, "hub-sante", "import", str(path), "--db", str(db))
    assert code == EXIT_OK and json.loads(out)["status"] == "unchanged"
    code, out, _ = run(capsys, "records", "show", summary["case_id"], "--db", str(db), "--json")
    assert code == EXIT_OK
    shown = json.loads(out)
    assert any(e["kind"] in ("hub_sante", "bilan") for e in shown["timeline"])


def test_official_case_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Official RS-EDA → import → export: every field survives (identity aside, which
    needs a physician's export)."""
    db = tmp_path / "rt.db"
    source = REFERENCE / "examples" / "RS-EDA_Secondaire_RobertVermande.01.json"
    assert run(capsys, "hub-sante", "import", str(source), "--db", str(db))[0] == EXIT_OK
    original = json.loads(source.read_text())["createCaseHealth"]
    out = tmp_path / "back.json"
    assert (
        run(
            capsys,
            "hub-sante",
            "export",
            "--db",
            str(db),
            "--case",
            original["caseId"],
            "-o",
            str(out),
        )[0]
        == EXIT_OK
    )
    back = json.loads(out.read_text())["createCaseHealth"]
    assert schemas().validate({"createCaseHealth": back}).ok
    for key in (
        "caseId",
        "senderCaseId",
        "creation",
        "qualification",
        "location",
        "initialAlert",
        "owner",
        "interventionType",
        "decision",
    ):
        assert back[key] == original[key], key
    assert [p["patientId"] for p in back["patient"]] == [
        p["patientId"] for p in original["patient"]
    ]
    assert "identity" not in back["patient"][0]


def test_own_export_round_trip(
    built: tuple[Path, str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, case_id, _ = built
    first = tmp_path / "first.json"
    assert (
        run(
            capsys,
            "hub-sante",
            "export",
            "--db",
            str(db),
            "--case",
            case_id,
            "--envelope",
            "-o",
            str(first),
        )[0]
        == EXIT_OK
    )
    other = tmp_path / "other.db"
    code, out, err = run(capsys, "hub-sante", "import", str(first), "--db", str(other))
    assert code == EXIT_OK, err
    assert json.loads(out)["case_id"] == case_id
    second = tmp_path / "second.json"
    assert (
        run(
            capsys, "hub-sante", "export", "--db", str(other), "--case", case_id, "-o", str(second)
        )[0]
        == EXIT_OK
    )
    a = json.loads(first.read_text())["content"][0]["jsonContent"]["embeddedJsonContent"][
        "message"
    ]["createCaseHealth"]
    b = json.loads(second.read_text())["createCaseHealth"]
    for key in (
        "caseId",
        "creation",
        "qualification",
        "location",
        "owner",
        "initialAlert",
        "patient",
        "decision",
        "medicalNote",
        "additionalInformation",
    ):
        assert a[key] == b[key], key
    code, out, _ = run(capsys, "records", "cases", "--db", str(other), "--json")
    (case,) = [json.loads(x) for x in out.splitlines()]
    assert case["sources"] == ["bilan", "vitals"] and case["site"] == "ehpad-les-tilleuls"


def _bad_messages() -> dict[str, bytes]:
    good = json.loads(
        (REFERENCE / "examples" / "RS-EDA_Secondaire_RobertVermande.01.json").read_text()
    )

    def variant(change) -> bytes:  # type: ignore[no-untyped-def]
        data = json.loads(json.dumps(good))
        change(data["createCaseHealth"])
        return json.dumps(data).encode()

    def custom(case: dict) -> Callable[[dict], None]:  # type: ignore[type-arg]
        def change(c: dict) -> None:  # type: ignore[type-arg]
            entry = {"key": "samu.case", "label": "Dossier", "value": json.dumps(case)}
            c["additionalInformation"] = {"customMap": [entry]}

        return change

    pid = good["createCaseHealth"]["patient"][0]["patientId"]
    return {
        # The console's own customMap entry is checked like any message from outside.
        "custom_impossible_news2": variant(custom({"news2": -7, "suggested_priority": "P0"})),
        "custom_other_site_resident": variant(
            custom({"site": "ehpad-les-lilas", "patients": {pid: "ehpad-les-tilleuls/res-0142"}})
        ),
        "custom_control_characters": variant(custom({"reasons": ["ok \x1b]0;T\x07\x1b[2J"]})),
        "wrong_code": variant(lambda c: c["qualification"]["details"].update(priority="P9")),
        "wrong_decision": variant(lambda c: c["decision"][0].update(decisionType="VITE")),
        "missing_required": variant(lambda c: c.pop("owner")),
        "bad_pattern": variant(lambda c: c.update(caseId="pas un id")),
        "bad_patient_id": variant(lambda c: c["patient"][0].update(patientId="68263")),
        "unknown_field": variant(lambda c: c.update(colour="blue")),
        "not_json": b'{"createCaseHealth": ',
        "not_utf8": b"\xff\xfe{}",
        "not_hub_sante": b'{"hello": "world"}',
        "rs_url_not_importable": json.dumps(
            {
                "documentLink": {
                    "caseId": "fr.health.samu075.DRFR1507526337",
                    "document": [{"url": "https://x"}],
                }
            }
        ).encode(),
    }


@pytest.mark.parametrize("name", sorted(_bad_messages()) if EXAMPLES else [])
def test_malformed_imports_write_nothing(
    name: str,
    built: tuple[Path, str, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, _, _ = built
    path = tmp_path / f"{name}.json"
    path.write_bytes(_bad_messages()[name])
    before = counts(db)
    code, out, err = run(capsys, "hub-sante", "import", str(path), "--db", str(db))
    assert code == EXIT_USAGE and out == ""
    assert err.strip().splitlines()[-1].startswith("samu hub-sante: error:")
    assert "nothing written" in err
    assert counts(db) == before
    # Into a database that does not exist: it is not even created.
    fresh = tmp_path / "fresh.db"
    assert run(capsys, "hub-sante", "import", str(path), "--db", str(fresh))[0] == EXIT_USAGE
    assert not fresh.exists()


def test_schema_errors_are_printed_with_their_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(_bad_messages()["wrong_code"])
    code, _, err = run(capsys, "hub-sante", "import", str(path), "--db", str(tmp_path / "d.db"))
    assert code == EXIT_USAGE
    assert "$.createCaseHealth.qualification.details.priority" in err


def test_rs_bpv_import_attaches_a_received_bilan(
    built: tuple[Path, str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, case_id, _ = built
    code, out, _ = run(capsys, "hub-sante", "export", "--db", str(db), "--case", case_id, "--bilan")
    assert code == EXIT_OK
    report = json.loads(out.splitlines()[0])
    report["interventionReport"]["reportId"] = "SMUR-77-1"
    report["interventionReport"]["redactor"] = {"role": "MEDECIN", "label": "Dr SMUR"}
    path = tmp_path / "bpv.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    before = counts(db)
    code, out, err = run(capsys, "hub-sante", "import", str(path), "--db", str(db))
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert summary == {**summary, "case_id": case_id, "status": "updated", "model": "RS-BPV"}
    assert summary["counts"]["observations"] >= 4
    after = counts(db)
    assert after["observations"] == before["observations"] + summary["counts"]["observations"]
    assert after["case_residents"] == before["case_residents"]  # the same resident
    code, out, _ = run(capsys, "hub-sante", "export", "--db", str(db), "--case", case_id, "--bilan")
    reports = [json.loads(x)["interventionReport"] for x in out.splitlines()]
    assert "SMUR-77-1" in [r["reportId"] for r in reports]
