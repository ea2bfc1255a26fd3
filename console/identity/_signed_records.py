"""Signed records: decisions, bilans and comptes rendus, signed by their author.

Signed with the author's own Ed25519 key, unlocked at login (the server cannot sign on
anyone's behalf); the signed bytes are stored sealed under the patient's key, so they
die with it on erasure, and the signature is over the plaintext so an exported record
verifies offline (:mod:`console.crypto` bundles).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from console.auth import Action, Actor, Session
from console.crypto import Cell, make_bundle, open_field, seal_field, sign, signed_content, verify
from console.identity._ids import new_id

if TYPE_CHECKING:
    from console.identity._patients import PatientService

#: Record kind → the habilitation needed to sign it.
KIND_ACTION = {
    "decision": Action.DECISION_TAKE,
    "compte_rendu": Action.REPORT_SIGN,
    "bilan": Action.BILAN_SEND,
}


class SignedRecords:
    """The ``signed_records`` table, behind the habilitation check."""

    def __init__(self, patients: PatientService) -> None:
        self._patients = patients
        self._accounts = patients.accounts
        self._store = patients.store
        self._clock = patients.accounts.clock

    def sign(self, session: Session, patient_id: str, kind: str, payload: dict[str, Any]) -> str:
        """Sign and store a decision, bilan or compte rendu; returns the record id.

        Needs a session unlocked at login (its private key in memory): the server
        cannot sign on anyone's behalf. The signed bytes are stored sealed under the
        patient's key; the signature is over the plaintext so it verifies offline once
        exported (:meth:`export`).
        """
        action = KIND_ACTION.get(kind)
        if action is None:
            raise ValueError(f"unknown record kind {kind!r} (one of {', '.join(KIND_ACTION)})")
        auth = self._accounts.authorize(session, action, self._patients._target(patient_id))
        signer, key_id = session.signer, session.signer_key_id
        if signer is None or key_id is None:
            raise PermissionError(
                "this session has no unlocked signing key: log in again with your password"
            )
        record_id = new_id("rec")
        now = self._clock()
        content = signed_content(
            record_id=record_id,
            kind=kind,
            subject=f"patient:{patient_id}",
            author=session.user_id,
            key_id=key_id,
            signed_at=now,
            payload=payload,
        )
        signature = sign(signer, content)
        key = self._patients._data_key(patient_id)
        sealed = seal_field(
            key, Cell("signed_records", "content", record_id), content.decode("utf-8")
        )
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO signed_records (record_id, patient_id, kind, author, key_id,"
                " signed_at, content, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record_id,
                    patient_id,
                    kind,
                    session.user_id,
                    key_id,
                    now.isoformat(),
                    sealed,
                    signature,
                ),
            )
            self._accounts.audit(
                session,
                f"record.sign.{kind}",
                f"patient:{patient_id}",
                role=auth.role,
                purpose=auth.purpose,
                detail={"record": record_id, "key_id": key_id},
                conn=conn,
            )
        return record_id

    def _bundle(self, record_id: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        row = self._store.fetchone(
            "SELECT patient_id, key_id, content, signature FROM signed_records WHERE record_id = ?",
            (record_id,),
        )
        if row is None:
            raise KeyError(f"no signed record {record_id!r}")
        patient_id, key_id, sealed, signature = row
        content = open_field(
            self._patients._data_key(patient_id),
            Cell("signed_records", "content", record_id),
            sealed,
        ).encode("utf-8")
        _, public, _ = self._accounts.public_key(key_id)
        return patient_id, json.loads(content), make_bundle(content, bytes(signature), public)

    def export(self, actor: Actor, record_id: str) -> dict[str, Any]:
        """A signed record with its offline-verifiable bundle (``clinical.read``; audited)."""
        row = self._store.fetchone(
            "SELECT patient_id FROM signed_records WHERE record_id = ?", (record_id,)
        )
        if row is None:
            raise KeyError(f"no signed record {record_id!r}")
        auth = self._accounts.authorize(actor, Action.CLINICAL_READ, self._patients._target(row[0]))
        patient_id, content, bundle = self._bundle(record_id)
        self._accounts.audit(
            actor,
            "record.read",
            f"patient:{patient_id}",
            role=auth.role,
            purpose=auth.purpose,
            detail={"record": record_id},
        )
        return {"record": content, "bundle": bundle}

    def verify(self, record_id: str) -> bool:
        """Check a stored record's signature against its author's public key."""
        _, content, bundle = self._bundle(record_id)
        return (
            verify(
                base64.b64decode(bundle["public_key"]),
                base64.b64decode(bundle["content"]),
                base64.b64decode(bundle["signature"]),
            )
            and content.get("key_id") == bundle["key_id"]
        )

    def of_patient(self, patient_id: str) -> list[dict[str, Any]]:
        """Every record of a patient with its bundle (the rights export; not audited
        here: the export is)."""
        ids = [
            r[0]
            for r in self._store.fetchall(
                "SELECT record_id FROM signed_records WHERE patient_id = ? ORDER BY signed_at",
                (patient_id,),
            )
        ]
        out = []
        for rid in ids:
            _, content, bundle = self._bundle(rid)
            out.append({"record": content, "bundle": bundle})
        return out
