"""Retention runs over the store: dry run, erasure, legal hold, minors, deceased."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from console.auth import Denied
from console.identity import IdentityTraits, PatientService, RetentionRunner
from tests.support.accounts import OP, Env, make_env

TODAY = date(2025, 3, 1)


def traits(name: str, born: date) -> IdentityTraits:
    return IdentityTraits(
        birth_name=name, first_names="Anne", birth_date=born, sex="F", birthplace_code="69123"
    )


@pytest.fixture
def setup(tmp_path) -> Iterator[tuple[Env, PatientService, RetentionRunner, dict[str, str]]]:
    env = make_env(tmp_path / "samu.db")
    patients = PatientService(env.accounts, env.key)
    p = {
        # 20 years after last contact: 2004-06-01 + 20 = 2024-06-01 -> erase.
        "old": patients.register(
            OP, traits("Ancien", date(1940, 1, 1)), last_contact=date(2004, 6, 1)
        ),
        # 2006-01-01 + 20 = 2026-01-01 -> keep.
        "recent": patients.register(
            OP, traits("Recent", date(1940, 1, 1)), last_contact=date(2006, 1, 1)
        ),
        # Seen at 3 in 2000: 20 years -> 2020, but 28th birthday is 2025-09-01 -> keep.
        "minor": patients.register(
            OP, traits("Enfant", date(1997, 9, 1)), last_contact=date(2000, 5, 1)
        ),
        # Died 2014-02-01, a year after last contact: 10 years after death -> 2024-02-01 -> erase.
        "deceased": patients.register(
            OP, traits("Defunt", date(1930, 1, 1)), last_contact=date(2013, 1, 1)
        ),
        # Expired, but under legal hold.
        "held": patients.register(
            OP, traits("Litige", date(1950, 1, 1)), last_contact=date(2000, 1, 1)
        ),
    }
    patients.record_death(OP, p["deceased"], date(2014, 2, 1))
    runner = RetentionRunner(patients)
    runner.place_hold(OP, p["held"], "litigation 2024-117")
    try:
        yield env, patients, runner, p
    finally:
        env.store.close()  # type: ignore[attr-defined]


def test_dry_run_reports_and_changes_nothing(setup) -> None:
    env, patients, runner, p = setup
    report = runner.run(OP, dry_run=True, today=TODAY)
    actions = {d.patient_id: d.action for d in report.decisions}
    assert actions == {
        p["old"]: "shred",
        p["recent"]: "keep",
        p["minor"]: "keep",
        p["deceased"]: "shred",
        p["held"]: "held",
    }
    assert report.shredded_now == ()
    for pid in p.values():
        assert patients.read(OP, pid).traits is not None
    (run,) = env.events("retention.run")
    assert '"dry_run":true' in run[8] and run[1] == "local:tester"


def test_run_erases_expired_and_is_idempotent(setup) -> None:
    env, _, runner, p = setup
    report = runner.run(OP, today=TODAY)
    assert sorted(report.shredded_now) == sorted([p["old"], p["deceased"]])
    assert {e[5] for e in env.events("retention.shred")} == {
        f"patient:{p['old']}",
        f"patient:{p['deceased']}",
    }
    again = runner.run(OP, today=TODAY)
    assert again.shredded_now == () and again.count("shredded") == 2
    # Lifting the hold lets retention resume.
    (hold_id,) = [r[0] for r in env.store.db.execute("SELECT hold_id FROM retention_holds")]  # type: ignore[attr-defined]
    runner.release_hold(OP, hold_id)
    assert runner.run(OP, today=TODAY).shredded_now == (p["held"],)
    # The minor is erased after the 28th birthday.
    assert runner.run(OP, today=date(2025, 9, 1)).shredded_now == (p["minor"],)


def test_later_contact_extends_retention(setup) -> None:
    _, patients, runner, p = setup
    patients.record_contact(OP, p["old"], date(2010, 1, 1))
    patients.record_contact(OP, p["old"], date(2008, 1, 1))  # an older date never shortens
    decisions = {d.patient_id: d for d in runner.run(OP, dry_run=True, today=TODAY).decisions}
    assert decisions[p["old"]].action == "keep"
    assert decisions[p["old"]].retention_end == date(2030, 1, 1)


def test_only_the_local_operator_runs_retention(setup) -> None:
    env, _, runner, _ = setup
    env.add("boss", "admin")
    with pytest.raises(Denied):
        runner.run(env.login("boss"), dry_run=True, today=TODAY)
    assert env.events()[-1][7] == "denied"
