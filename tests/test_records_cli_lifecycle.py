"""`samu records call|validate|close`: a case by hand on a call, and the steps of a
finished case, from the command line — the same rules and refusals as the service."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from argon2 import PasswordHasher

import scenarios
from console.auth import AccountService, LocalOperator, code_at
from console.cases import default_dir
from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.services import open_services
from console.settings import Settings

pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")
SITE, RESIDENT = "ehpad-saint-joseph", "res-0077"


class Logins:
    """A TOTP code is accepted once: each login uses the next step's (at most three
    logins per user: the verifier accepts one step either side of now)."""

    def __init__(self, secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.secrets, self.mp = secrets, monkeypatch
        self.offset = dict.fromkeys(secrets, -30.0)

    def as_(self, user: str) -> list[str]:
        self.mp.setenv("SAMU_PASSWORD", PW)
        self.mp.setenv("SAMU_TOTP", code_at(self.secrets[user], time.time() + self.offset[user]))
        self.offset[user] += 30.0
        return ["--as", user]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Logins]]:
    db = tmp_path / "samu.db"
    secrets: dict[str, str] = {}
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("sepsis-ehpad"), services).run()
        accounts = AccountService(
            services.store,
            services.master_key,
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        for user, role in (
            ("drmartin", "regulateur"),
            ("drdupont", "regulateur"),
            ("arm1", "arm"),
            ("arm2", "arm"),
            ("audit1", "auditeur"),
        ):
            enrolment = accounts.create_user(OP, user, [role], PW)
            secrets[user] = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
    yield db, Logins(secrets, monkeypatch)


def records(db: Path, *args: str) -> int:
    return main(["records", *args, "--db", str(db)])


def test_a_call_joins_the_open_case_then_the_case_is_validated_and_closed(
    world: tuple[Path, Logins], capsys: pytest.CaptureFixture[str]
) -> None:
    db, logins = world
    (case_id,) = [
        json.loads(line)["case_id"]
        for line in _out(capsys, records(db, "cases", "--open", "--json")).splitlines()
    ]
    call = ["call", "--site", SITE, "--resident", RESIDENT, "--motif", "M03.06"]
    assert records(db, *call, "--caller", "SANTE.INF", *logins.as_("arm1"), "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"case_id": case_id, "opened": False}
    # Not finished yet: neither step can be taken.
    assert records(db, "validate", case_id, *logins.as_("drmartin")) == EXIT_CHECK_FAILED
    assert "compte rendu must be signed first" in capsys.readouterr().err
    decide = ["decide", case_id, "--priority", "P0", "--care-level", "R1", "--decision", "INTER"]
    assert records(db, *decide, *logins.as_("drmartin")) == EXIT_OK
    assert records(db, "compte-rendu", case_id, "--sign", *logins.as_("drmartin")) == EXIT_OK
    capsys.readouterr()
    assert records(db, "validate", case_id, *logins.as_("arm1")) == EXIT_CHECK_FAILED
    assert "refused" in capsys.readouterr().err  # a medical act: not the ARM's
    assert records(db, "validate", case_id, *logins.as_("drdupont")) == EXIT_OK
    assert records(db, "close", case_id, *logins.as_("arm1")) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [f"{case_id}: VALIDE", f"{case_id}: CLOTURE"]
    assert records(db, "show", case_id, "--json") == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "CLOTURE" and "call" in shown["sources"]
    kinds = [e["kind"] for e in shown["timeline"]]
    assert "call" in kinds and kinds.count("status") == 2
    # A new call about the resident now opens a new case.
    assert records(db, *call, *logins.as_("arm2")) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("opened ") and case_id not in out


@pytest.mark.parametrize(
    ("resident", "codes", "exit_code", "message"),
    [
        (RESIDENT, ["--motif", "M99.99"], EXIT_USAGE, "'M99.99' is not a motif code"),
        (RESIDENT, ["--motif", "M03.06", "--caller", "X"], EXIT_USAGE, "not a typeAppelant code"),
        ("a b", ["--motif", "M03.06"], EXIT_USAGE, "--resident"),
        ("res-404", ["--motif", "M03.06"], EXIT_CHECK_FAILED, "no resident 'res-404'"),
    ],
)
def test_a_call_that_cannot_be_a_case_says_why(
    world: tuple[Path, Logins],
    capsys: pytest.CaptureFixture[str],
    resident: str,
    codes: list[str],
    exit_code: int,
    message: str,
) -> None:
    db, logins = world
    call = ["call", "--site", SITE, "--resident", resident, *codes, *logins.as_("arm1")]
    assert records(db, *call) == exit_code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_auditor_cannot_open_a_case(
    world: tuple[Path, Logins], capsys: pytest.CaptureFixture[str]
) -> None:
    db, logins = world
    call = ["call", "--site", SITE, "--resident", RESIDENT, "--motif", "M03.06"]
    assert records(db, *call, *logins.as_("audit1")) == EXIT_CHECK_FAILED
    assert "call refused" in capsys.readouterr().err


def _out(capsys: pytest.CaptureFixture[str], code: int) -> str:
    assert code == EXIT_OK
    return capsys.readouterr().out
