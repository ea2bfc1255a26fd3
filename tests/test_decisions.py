"""``samu records decide`` and ``provenance`` as cases.md runs them: Hub Santé codes, a
reason on override, the signature, the chain back to the frames, refusals audited."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from argon2 import PasswordHasher

import scenarios
from console.auth import AccountService, LocalOperator, code_at
from console.cases import CASE_ID, default_dir, load_codes
from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.services import open_services
from console.settings import Settings

#: Decisions read the official Hub Santé code lists, which live outside the repository.
pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")


@pytest.fixture(scope="module")
def replayed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """A database after the ICD storm, with a régulateur and an auditor enrolled."""
    db = tmp_path_factory.mktemp("dec") / "samu.db"
    secrets: dict[str, str] = {}
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("icd-shock-storm"), services).run()
        # Cheap Argon2 for the test accounts (a login hashes once).
        accounts = AccountService(
            services.store,
            services.master_key,
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        for user, role in (("drmartin", "regulateur"), ("audit1", "auditeur")):
            enrolment = accounts.create_user(OP, user, [role], PW)
            secrets[user] = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
        (case_id,) = services.store.fetchone("SELECT case_id FROM cases")
    yield db, case_id, secrets


class Logins:
    """TOTP codes of successive steps: a code is accepted once, steps only go forward."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.offset = {u: -30.0 for u in secrets}

    def env(self, monkeypatch: pytest.MonkeyPatch, user: str) -> None:
        monkeypatch.setenv("SAMU_PASSWORD", PW)
        monkeypatch.setenv(
            "SAMU_TOTP", code_at(self.secrets[user], time.time() + self.offset[user])
        )
        self.offset[user] += 30.0


def decide(db: Path, case_id: str, *extra: str) -> int:
    return main(["records", "decide", case_id, "--db", str(db), *extra])


def test_codes_come_from_the_official_lists() -> None:
    codes = load_codes()
    assert codes["priority"].label("P0") == "Urgence vitale"
    assert codes["care_level"].label("R1") == "Urgence Vitale"
    assert codes["decision_type"].label("INTER") == "Décision d’intervention"
    assert codes["resource"].label("SMUR.ADULT") == "Smur Généraliste"
    with pytest.raises(ValueError, match="not a typeOrientation code"):
        codes["orientation"].label("HOPITAL")


def test_decide_sign_and_trace_back_to_the_frames(
    replayed: tuple[Path, str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, case_id, secrets = replayed
    assert CASE_ID.fullmatch(case_id)
    logins = Logins(secrets)
    logins.env(monkeypatch, "drmartin")
    code = decide(
        db, case_id, "--as", "drmartin", "--priority", "P0", "--care-level", "R1",
        "--decision", "INTER", "--resource", "SMUR.ADULT", "--orientation", "URGENCES", "--json",
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    decision = json.loads(out)
    assert decision["intention"] == 1 and decision["author"] == "drmartin"
    assert decision["suggested_priority"] == "P0" and decision["triage_result"] is not None
    # The case now shows the decided priority and the decision on its timeline.
    assert main(["records", "show", case_id, "--db", str(db), "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["decided_priority"] == "P0"
    assert [d["decision_id"] for d in shown["decisions"]] == [decision["decision_id"]]
    assert shown["timeline"][-1]["kind"] == "decision"
    # Provenance: decision -> triage result (policy) -> observations -> messages (raw).
    assert (
        main(
            [
                "records",
                "provenance",
                "--db",
                str(db),
                "--decision",
                decision["decision_id"],
                "--json",
            ]
        )
        == EXIT_OK
    )
    chain = json.loads(capsys.readouterr().out)
    assert chain["complete"] and chain["decision"]["signature_valid"]
    assert chain["triage_result"]["policy_version"] == "1"
    assert len(chain["triage_result"]["policy_sha256"]) == 64
    # An implant-only case: the triage rested on the transmission, not on vitals.
    assert chain["triage_result"]["priority"] == "P0"


def test_an_override_needs_a_reason_and_the_refusal_is_audited(
    replayed: tuple[Path, str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, case_id, secrets = replayed
    logins = Logins(secrets)
    logins.offset["drmartin"] = 0.0
    logins.env(monkeypatch, "drmartin")
    args = ("--as", "drmartin", "--priority", "P2", "--care-level", "R3", "--decision", "CONSEIL")
    assert decide(db, case_id, *args) == EXIT_CHECK_FAILED
    assert "a reason is required" in capsys.readouterr().err
    logins.env(monkeypatch, "drmartin")
    assert decide(db, case_id, *args, "--reason", "seen by the cardiologist on call") == EXIT_OK
    capsys.readouterr()
    conn = sqlite3.connect(db)
    refused = conn.execute(
        "SELECT outcome, detail FROM audit_events WHERE action = 'decision.take' ORDER BY seq"
    ).fetchall()
    assert [r[0] for r in refused].count("denied") >= 1
    assert any("a reason is required" in r[1] for r in refused)
    # The reason is clinical free text: never in clear in the database.
    assert b"cardiologist" not in db.read_bytes()


def test_refusals_and_bad_codes(
    replayed: tuple[Path, str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, case_id, secrets = replayed
    logins = Logins(secrets)
    logins.env(monkeypatch, "audit1")
    args = ("--priority", "P0", "--care-level", "R1", "--decision", "INTER")
    assert decide(db, case_id, "--as", "audit1", *args) == EXIT_CHECK_FAILED  # no such right
    assert "decision refused" in capsys.readouterr().err
    monkeypatch.setenv("SAMU_TOTP", "000000")
    assert decide(db, case_id, "--as", "drmartin", *args) == EXIT_CHECK_FAILED  # wrong code
    assert "login refused" in capsys.readouterr().err
    logins.offset["drmartin"] = 30.0
    logins.env(monkeypatch, "drmartin")
    bad = ("--priority", "P9", "--care-level", "R1", "--decision", "INTER")
    assert decide(db, case_id, "--as", "drmartin", *bad) == EXIT_USAGE
    assert "not a priorite code" in capsys.readouterr().err


def test_a_tampered_decision_breaks_the_chain(
    replayed: tuple[Path, str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cases._schema import PROTECTIVE_TRIGGERS

    db, _, _ = replayed
    conn = sqlite3.connect(db)
    (decision_id,) = conn.execute("SELECT decision_id FROM decisions LIMIT 1").fetchone()
    conn.execute("DROP TRIGGER decisions_no_update")
    conn.execute(
        "UPDATE decisions SET signature = zeroblob(64) WHERE decision_id = ?", (decision_id,)
    )
    conn.execute(PROTECTIVE_TRIGGERS["decisions_no_update"])  # hide the tamper
    conn.commit()
    conn.close()
    assert (
        main(["records", "provenance", "--db", str(db), "--decision", decision_id])
        == EXIT_CHECK_FAILED
    )
    assert "signature does not verify" in capsys.readouterr().out
    assert (
        main(["records", "provenance", "--db", str(db), "--decision", "dec_nope"])
        == EXIT_CHECK_FAILED
    )


def test_compte_rendu_previews_then_signs_and_closes_the_act(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the sepsis case (a bilan from a nurse, vitals, an override with its reason)."""
    db = tmp_path / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("sepsis-ehpad"), services).run()
        accounts = AccountService(
            services.store,
            services.master_key,
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        enrolment = accounts.create_user(OP, "drmartin", ["regulateur"], PW)
        (case_id,) = services.store.fetchone("SELECT case_id FROM cases")
    logins = Logins({"drmartin": parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]})
    logins.env(monkeypatch, "drmartin")
    assert decide(
        db, case_id, "--as", "drmartin", "--priority", "P1", "--care-level", "R2",
        "--decision", "INTER", "--resource", "LIBERAL.MG", "--reason", "GP already on site",
    ) == EXIT_OK  # fmt: skip
    capsys.readouterr()
    assert main(["records", "compte-rendu", case_id, "--db", str(db)]) == EXIT_OK
    preview = capsys.readouterr().out
    assert preview.startswith(f"# Compte rendu de régulation — {case_id}")
    assert "Politique de tri : version 1, SHA-256" in preview
    assert "Écart avec la suggestion (P0) : GP already on site" in preview
    assert "Médecin Généraliste" in preview and "drmartin — médecin régulateur" in preview
    assert "infirmier·e EHPAD" in preview  # the nurse of the bilan, from the signed message
    logins.env(monkeypatch, "drmartin")
    code = main(
        ["records", "compte-rendu", case_id, "--db", str(db), "--as", "drmartin", "--sign",
         "--format", "json"]
    )  # fmt: skip
    assert code == EXIT_OK
    signed = json.loads(capsys.readouterr().out)
    assert signed["report_id"].startswith("cr_") and signed["acts"][0]["signature_valid"]
    assert main(["records", "cases", "--db", str(db), "--json"]) == EXIT_OK
    (case,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert case["status"] == "ACHEVE" and case["decided_priority"] == "P1"
    assert main(["records", "compte-rendu", case_id, "--db", str(db), "--sign"]) == EXIT_USAGE
    assert main(["records", "compte-rendu", "nope", "--db", str(db)]) == EXIT_CHECK_FAILED
