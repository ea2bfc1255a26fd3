"""Patients' rights: access (export everything held, and who accessed it), rectification,
opposition.

``samu rights list`` says which ids there are (:meth:`RightsService.patients`: ids and
metadata, optionally found by birth name; audited): a patient's id (``pat_…``) is given
when their identity is registered, and appears nowhere a requester could read it.
``samu rights export --patient ID`` answers a RGPD art. 15 request: one JSON document
with the clear metadata, the decrypted identity, every rectification with its old and
new values, every signed record (with its offline-verifiable signature bundle), legal
holds, break-glass grants on the record, and — from the audit trail — every access and
change: when, who, with which role, from which terminal, for which purpose, with what
outcome. Audit ``detail`` is left out: it is the system's bookkeeping and may mention
other patients' record ids.

Rectification (art. 16) is :meth:`PatientService.rectify` (history kept); opposition
(art. 21) is :meth:`PatientService.set_opposition`, honoured by
:meth:`PatientService.secondary_use_ids`. The patient's own export is never filtered by
their opposition: opposing secondary uses does not waive the right of access.

An erased (crypto-shredded) patient's export says so and still lists the accesses: the
trail outlives the record, as the law asks of access logs.

The export is produced by the local operator (the data protection officer's process
runs on the server), and is itself audited (``rights.export``), as any read of the trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from console.auth import Action
from console.crypto import PatientShreddedError

if TYPE_CHECKING:
    from console.auth import Actor
    from console.identity._patients import PatientService

EXPORT_FORMAT = "samu-rights-export/1"


class RightsService:
    """Builds rights exports; see the module docstring."""

    def __init__(self, patients: PatientService) -> None:
        self._patients = patients
        self._store = patients.store
        self._accounts = patients.accounts

    def patients(
        self,
        actor: Actor,
        *,
        site: str | None = None,
        name: str | None = None,
        first_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """The patients whose rights can be exported (``samu rights list``), by id.

        Ids and metadata only (site, status, dates, flags), never an identity trait: a
        list is not a read of anyone's identity. ``name`` (and ``first_name``) narrows it
        to a birth name, spelling-tolerant through the blind index
        (:meth:`PatientService.search`: the name is not written to the trail, erased
        patients cannot be found by name). Erased patients are listed otherwise: their
        export still lists who accessed their record. Audited (``rights.list``).

        Raises:
            Denied: the actor is not the local operator (audited).
        """
        auth = self._accounts.authorize(actor, Action.RIGHTS_EXPORT, "patients")
        keys = (
            "patient_id",
            "site",
            "status",
            "created_at",
            "last_contact",
            "deceased",
            "opposition",
            "shredded_at",
        )
        where = "" if site is None else " WHERE site = ?"
        rows = self._store.fetchall(
            f"SELECT {', '.join(keys)} FROM patients{where} ORDER BY created_at, patient_id",  # noqa: S608
            () if site is None else (site,),
        )
        found = [dict(zip(keys, r, strict=True)) for r in rows]
        if name is not None:
            matches = set(self._patients.search(actor, name, first_name=first_name))
            found = [p for p in found if p["patient_id"] in matches]
        for p in found:
            p["deceased"] = bool(p["deceased"])
            p["opposition"] = bool(p["opposition"])
        self._accounts.audit(
            actor,
            "rights.list",
            "patients",
            role=auth.role,
            detail={"count": len(found), "site": site, "by_name": name is not None},
        )
        return found

    def patient_count(self) -> int:
        """How many patients are registered (a count, not a read: not audited)."""
        (count,) = self._store.fetchone("SELECT count(*) FROM patients")
        return int(count)

    def accesses(self, patient_id: str) -> list[dict[str, Any]]:
        """Every audit event about this patient, oldest first (no ``detail``)."""
        rows = self._store.fetchall(
            "SELECT seq, time, actor, role, terminal, action, purpose, outcome"
            " FROM audit_events WHERE object = ? ORDER BY seq",
            (f"patient:{patient_id}",),
        )
        keys = ("seq", "time", "actor", "role", "terminal", "action", "purpose", "outcome")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def export(self, actor: Actor, patient_id: str) -> dict[str, Any]:
        """Everything held on ``patient_id`` (see the module docstring).

        Raises:
            UnknownPatientError: no such patient.
            Denied: the actor is not the local operator (audited).
        """
        from console.identity._patients import UnknownPatientError

        meta = self._store.fetchone(
            "SELECT patient_id, status, site, created_at, last_contact, deceased, opposition,"
            " opposition_at, shredded_at FROM patients WHERE patient_id = ?",
            (patient_id,),
        )
        if meta is None:
            raise UnknownPatientError(f"no patient with id {patient_id!r}")
        auth = self._accounts.authorize(actor, Action.RIGHTS_EXPORT, f"patient:{patient_id}")
        keys = (
            "patient_id",
            "status",
            "site",
            "created_at",
            "last_contact",
            "deceased",
            "opposition",
            "opposition_at",
            "shredded_at",
        )
        patient = dict(zip(keys, meta, strict=True))
        patient["deceased"] = bool(patient["deceased"])
        patient["opposition"] = bool(patient["opposition"])
        identity: dict[str, Any] | None
        history: list[dict[str, Any]]
        records: list[dict[str, Any]]
        try:
            record = self._patients._load(patient_id)
            identity = record.traits.model_dump(mode="json") if record.traits else None
            if identity is not None and record.death_date is not None:
                identity["death_date"] = record.death_date.isoformat()
            if identity is not None:
                identity["status"] = record.status
            history = self._patients._history(patient_id)
            records = self._patients.records.of_patient(patient_id)
            erased = False
        except PatientShreddedError:
            identity, history, records, erased = None, [], [], True
        holds = [
            dict(
                zip(
                    ("hold_id", "reason", "placed_at", "placed_by", "released_at", "released_by"),
                    r,
                    strict=True,
                )
            )
            for r in self._store.fetchall(
                "SELECT hold_id, reason, placed_at, placed_by, released_at, released_by"
                " FROM retention_holds WHERE patient_id = ? ORDER BY placed_at",
                (patient_id,),
            )
        ]
        grants = [
            dict(
                zip(
                    (
                        "grant_id",
                        "user_id",
                        "reason",
                        "granted_at",
                        "expires_at",
                        "terminal",
                        "reviewed_by",
                        "reviewed_at",
                    ),
                    r,
                    strict=True,
                )
            )
            for r in self._store.fetchall(
                "SELECT grant_id, user_id, reason, granted_at, expires_at, terminal,"
                " reviewed_by, reviewed_at FROM breakglass_grants WHERE object = ?"
                " ORDER BY granted_at",
                (f"patient:{patient_id}",),
            )
        ]
        accesses = self.accesses(patient_id)
        generated = self._patients.now().isoformat()
        self._accounts.audit(
            actor,
            "rights.export",
            f"patient:{patient_id}",
            role=auth.role,
            detail={"accesses": len(accesses), "records": len(records), "erased": erased},
        )
        return {
            "format": EXPORT_FORMAT,
            "generated_at": generated,
            "generated_by": actor.user_id,
            "patient": patient,
            "erased": erased,
            "identity": identity,
            "rectifications": history,
            "signed_records": records,
            "legal_holds": holds,
            "break_glass": grants,
            "accesses": accesses,
        }
