"""Identities through the service: encrypted at rest, qualified, searched, signed, shredded."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from console.auth import AccountService, Denied
from console.crypto import PatientShreddedError, WrongMasterKeyError, verify_bundle
from console.identity import IdentityTraits, PatientService, RetentionRunner
from tests.support.accounts import FAST, OP, Env, make_env
from tests.support.patients import BODY, INS, TRAITS

SITE = "ehpad-bellevue"


@dataclass
class World:
    env: Env
    patients: PatientService

    def raw_bytes(self) -> bytes:
        data = self.env.path.read_bytes()
        wal = self.env.path.with_name(self.env.path.name + "-wal")
        return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    env = make_env(tmp_path / "samu.db")
    env.add("drmartin", "regulateur")
    env.add("arm1", "arm")
    env.add("nurse1", "ide_ehpad", site=SITE)
    try:
        yield World(env, PatientService(env.accounts, env.key))
    finally:
        env.store.close()  # type: ignore[attr-defined]


def test_identities_never_in_clear_in_the_database_file(world: World) -> None:
    arm = world.env.login("arm1")
    pid = world.patients.register(arm, TRAITS, site=SITE)
    world.patients.rectify(arm, pid, {"first_names": "Jean-Baptiste Marcellin"}, "typo on the card")
    world.patients.record_death(arm, pid, date(2024, 12, 24))
    raw = world.raw_bytes()
    assert SITE.encode() in raw  # clear metadata is found: the search itself works
    for needle in (
        "Lefèvre",
        "Lefevre",
        "LEFEVRE",
        "Dupontel",
        "DUPONTEL",
        "Jean-Baptiste",
        "Marcel",
        "1937-04-12",
        "19370412",
        "12/04/1937",
        INS,
        BODY,
        "2024-12-24",
    ):
        for encoding in ("utf-8", "utf-16-le"):
            assert needle.encode(encoding) not in raw, needle
    record = world.patients.read(arm, pid)
    assert record.traits is not None and record.traits.birth_name == "Lefèvre-Dupontel"
    assert record.death_date == date(2024, 12, 24)


def test_reads_are_audited_by_record_id_only(world: World) -> None:
    doctor = world.env.login("drmartin")
    pid = world.patients.register(doctor, TRAITS, site=SITE)
    world.patients.read(doctor, pid)
    (event,) = world.env.events("identity.read")
    assert event[1] == "drmartin" and event[5] == f"patient:{pid}" and event[7] == "success"
    trail = repr(world.env.events())
    assert "Lefèvre" not in trail and INS not in trail


def test_nurse_sees_own_residents_only(world: World) -> None:
    arm = world.env.login("arm1")
    mine = world.patients.register(arm, TRAITS, site=SITE)
    other = world.patients.register(arm, TRAITS, site="ehpad-other")
    nurse = world.env.login("nurse1")
    assert world.patients.read(nurse, mine).patient_id == mine
    with pytest.raises(Denied):
        world.patients.read(nurse, other)
    assert world.env.events()[-1][7] == "denied"
    assert world.patients.search(nurse, "LEFEVRE DUPONTEL") == [mine]


def test_wrong_master_key_fails_clearly(world: World) -> None:
    arm = world.env.login("arm1")
    world.patients.register(arm, TRAITS)
    with pytest.raises(WrongMasterKeyError, match="wrong master key"):
        AccountService(world.env.store, os.urandom(32), hasher=FAST)
    with pytest.raises(WrongMasterKeyError, match="SAMU_MASTER_KEY"):
        PatientService(world.env.accounts, os.urandom(32))


def test_search_by_blind_index_tolerates_spelling(world: World) -> None:
    arm = world.env.login("arm1")
    pid = world.patients.register(arm, TRAITS)
    world.patients.register(arm, TRAITS.model_copy(update={"birth_name": "Martin"}))
    assert world.patients.search(arm, "lefevre dupontel") == [pid]
    assert world.patients.search(arm, "LEFÈVRE  DUPONTEL", first_name="marcel") == [pid]
    assert world.patients.search(arm, "Lefèvre-Dupontel", first_name="Pierre") == []
    events = world.env.events("identity.search")
    assert len(events) == 3 and "upontel" not in repr(events)


def test_rectification_keeps_history_and_requalification(world: World) -> None:
    arm = world.env.login("arm1")
    pid = world.patients.register(arm, TRAITS)
    report = world.patients.qualify(arm, pid, document_checked=True, insi_verified=True)
    assert report.qualified and world.patients.read(arm, pid).status == "qualified"
    world.patients.rectify(arm, pid, {"birth_name": "Lefebvre-Dupontel"}, "birth certificate")
    assert world.patients.read(arm, pid).status == "unqualified"
    (change,) = world.patients.history(arm, pid)
    assert (change["field"], change["old_value"], change["new_value"], change["reason"]) == (
        "birth_name",
        "Lefèvre-Dupontel",
        "Lefebvre-Dupontel",
        "birth certificate",
    )
    assert world.patients.search(arm, "Lefebvre Dupontel") == [pid]
    assert world.patients.search(arm, "Lefèvre Dupontel") == []
    store = world.env.store
    with pytest.raises(sqlite3.DatabaseError, match="append-only"), store.transaction() as conn:  # type: ignore[attr-defined]
        conn.execute("DELETE FROM identity_history")


@pytest.mark.parametrize(
    ("update", "document", "insi", "failure"),
    [
        ({"ins": None}, True, True, "no INS"),
        ({"sex": "F"}, True, True, "sex"),
        ({"birth_date": date(1938, 4, 12)}, True, True, "birth year"),
        ({"birth_date": date(1937, 5, 12)}, True, True, "birth month"),
        ({"birthplace_code": "75113"}, True, True, "birthplace"),
        ({}, False, True, "identity document"),
        ({}, True, False, "INSi"),
    ],
)
def test_qualification_checks(
    world: World, update: dict, document: bool, insi: bool, failure: str
) -> None:
    arm = world.env.login("arm1")
    pid = world.patients.register(arm, TRAITS.model_copy(update=update))
    report = world.patients.qualify(arm, pid, document_checked=document, insi_verified=insi)
    assert not report.qualified and any(failure in f for f in report.failures)
    assert world.patients.read(arm, pid).status == "unqualified"


def test_invalid_ins_refused_at_the_boundary() -> None:
    with pytest.raises(ValueError, match="control key"):
        IdentityTraits(**{**TRAITS.model_dump(), "ins": BODY + "00"})


def test_signed_decision_verifies_offline_and_only_the_physician_signs(world: World) -> None:
    doctor = world.env.login("drmartin")
    pid = world.patients.register(doctor, TRAITS)
    rid = world.patients.sign_record(doctor, pid, "decision", {"priority": "P1", "type": "INTER"})
    assert world.patients.verify_record(rid)
    exported = world.patients.export_record(doctor, rid)
    assert (
        exported["record"]["author"] == "drmartin"
        and exported["record"]["payload"]["priority"] == "P1"
    )
    assert verify_bundle(exported["bundle"])
    arm = world.env.login("arm1")
    with pytest.raises(Denied):
        world.patients.sign_record(arm, pid, "decision", {"priority": "P3"})
    # The author's public key is in the trail.
    key_events = [e for e in world.env.events("key.create") if doctor.signer_key_id in e[8]]
    assert key_events and '"public_key"' in key_events[0][8]
    store = world.env.store
    with pytest.raises(sqlite3.DatabaseError, match="append-only"), store.transaction() as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE signed_records SET author = 'arm1'")


def test_crypto_shredded_patient_is_unreadable(world: World) -> None:
    doctor = world.env.login("drmartin")
    pid = world.patients.register(doctor, TRAITS, last_contact=date(2001, 1, 1))
    world.patients.sign_record(doctor, pid, "compte_rendu", {"acts": ["ECG"]})
    (wrapped,) = world.env.store.db.execute(  # type: ignore[attr-defined]
        "SELECT wrapped_key FROM patient_keys WHERE patient_id = ?", (pid,)
    ).fetchone()
    assert bytes(wrapped) in world.raw_bytes()
    report = RetentionRunner(world.patients).run(OP, today=date(2025, 3, 1))
    assert report.shredded_now == (pid,)
    with pytest.raises(PatientShreddedError, match="erased"):
        world.patients.read(doctor, pid)
    assert world.patients.search(doctor, "Lefèvre-Dupontel") == []
    key_rows = world.env.store.db.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM patient_keys WHERE patient_id = ?", (pid,)
    ).fetchone()[0]
    assert key_rows == 0
    assert bytes(wrapped) not in world.raw_bytes()  # secure_delete + WAL truncation
