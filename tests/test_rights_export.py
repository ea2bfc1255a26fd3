"""Rights export: everything held on a patient, and who accessed it and when."""

from __future__ import annotations

import json
from datetime import date

import pytest

from console.auth import Denied
from console.crypto import verify_bundle
from console.identity import (
    EXPORT_FORMAT,
    PatientService,
    RetentionRunner,
    RightsService,
    UnknownPatientError,
)
from tests.support.accounts import OP, make_env
from tests.support.patients import TRAITS


def test_export_holds_identity_history_records_and_accesses(tmp_path) -> None:
    env = make_env(tmp_path / "samu.db")
    env.add("drmartin", "regulateur")
    env.add("arm1", "arm")
    patients = PatientService(env.accounts, env.key)
    arm = env.login("arm1")
    doctor = env.login("drmartin")
    pid = patients.register(arm, TRAITS, site="ehpad-bellevue")
    other = patients.register(arm, TRAITS.model_copy(update={"birth_name": "Autre"}))
    patients.read(doctor, pid)
    patients.read(doctor, other)
    patients.rectify(arm, pid, {"first_names": "Jean"}, "patient's request (art. 16)")
    patients.set_opposition(arm, pid, True)
    rid = patients.sign_record(doctor, pid, "decision", {"priority": "P2"})

    doc = RightsService(patients).export(OP, pid)
    assert json.loads(json.dumps(doc)) == doc  # plain JSON
    assert doc["format"] == EXPORT_FORMAT and not doc["erased"]
    assert doc["identity"]["birth_name"] == "Lefèvre-Dupontel"
    assert doc["identity"]["first_names"] == "Jean"
    assert doc["patient"]["opposition"] is True  # the patient's own export is not filtered
    assert doc["rectifications"][0]["old_value"] == "Jean-Baptiste Marcel"
    (record,) = doc["signed_records"]
    assert record["record"]["record_id"] == rid and verify_bundle(record["bundle"])
    who = [(a["actor"], a["action"]) for a in doc["accesses"]]
    assert ("arm1", "identity.create") in who and ("drmartin", "identity.read") in who
    assert ("drmartin", "record.sign.decision") in who
    assert all(a["time"] and a["terminal"] for a in doc["accesses"])
    # Nothing about the other patient.
    assert other not in json.dumps(doc)
    # The export is itself audited, and opposition is honoured by secondary uses.
    assert env.events("rights.export")[-1][5] == f"patient:{pid}"
    assert pid not in patients.secondary_use_ids() and other in patients.secondary_use_ids()
    # Erased: identity gone, accesses kept.
    env.store.db.execute(
        "UPDATE patients SET last_contact = '2000-01-01' WHERE patient_id = ?", (pid,)
    )  # type: ignore[attr-defined]
    RetentionRunner(patients).run(OP, today=date(2025, 1, 1))
    erased = RightsService(patients).export(OP, pid)
    assert erased["erased"] and erased["identity"] is None
    assert len(erased["accesses"]) > len(doc["accesses"])
    with pytest.raises(UnknownPatientError):
        RightsService(patients).export(OP, "pat_nope")
    with pytest.raises(Denied):
        RightsService(patients).export(doctor, pid)
    env.store.close()  # type: ignore[attr-defined]
