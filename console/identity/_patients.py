"""Patient identities: five traits + INS, encrypted; qualification.

(Signed records live in :mod:`._signed_records`, reached as ``PatientService.records``.)

**Traits** (the INS reference set): birth name, first names (as on the identity
document, space-separated), birth date, sex (``M``/``F``/``I`` — INS allows an
undetermined sex), birthplace code (INSEE commune code, ``2A``/``2B`` Corsica, ``99xxx``
abroad), plus the INS number (NIR or NIA) when known.

**Qualification** — an identity is ``qualified`` only after all the documented checks:

1. an INS number is recorded and its control key is right (:func:`parse_nir`);
2. the traits agree with the INS: sex digit (1/7 ↔ ``M``, 2/8 ↔ ``F``), birth year,
   birth month (when the NIR month is a real month), and birthplace code;
3. a professional checked the identity against a high-trust identity document
   (passport, ID card, residence permit) — ``document_checked``;
4. the INS was confirmed by the national INSi teleservice — ``insi_verified`` (the call
   itself is outside this system; the professional records its result).

Any rectification of a trait or of the INS drops a qualified identity back to
``unqualified`` (the checks must be done again), and is kept in history.

All traits are sealed per cell (see :mod:`console.crypto`); the blind index holds keyed tokens of
the birth name and of each first name for search. Every read of an identity or a
record and every change appends an audit event whose object is ``patient:<id>`` —
never a name — which is also what the rights export uses to list who accessed it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from console.auth import AccountService, Action, Actor, Session, Target
from console.crypto import (
    Cell,
    MasterKeyRing,
    PatientShreddedError,
    ensure_master_key,
    open_field,
    seal_field,
)
from console.identity._ids import new_id
from console.identity._ins import NirError, month_is_date, parse_nir
from console.identity._signed_records import SignedRecords

if TYPE_CHECKING:
    from console.records import Store

TRAITS: tuple[str, ...] = ("birth_name", "first_names", "birth_date", "sex", "birthplace_code")
RECTIFIABLE: tuple[str, ...] = (*TRAITS, "ins")
_ID_TABLE = "patient_identities"


class IdentityTraits(BaseModel):
    """The five traits and the INS, validated at the boundary."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    birth_name: str = Field(min_length=1, max_length=100)
    first_names: str = Field(min_length=1, max_length=200)
    birth_date: date
    sex: Literal["M", "F", "I"]
    birthplace_code: str = Field(pattern=r"^(\d{5}|2[AB]\d{3})$")
    ins: str | None = None

    @field_validator("ins")
    @classmethod
    def _check_ins(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return parse_nir(value).value  # raises NirError (a ValueError) with the reason

    @field_validator("birthplace_code", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


@dataclass(frozen=True)
class PatientRecord:
    """A patient as read through the service: clear metadata + decrypted traits."""

    patient_id: str
    status: str
    site: str | None
    created_at: str
    last_contact: date
    opposition: bool
    deceased: bool
    traits: IdentityTraits | None
    death_date: date | None = None


@dataclass(frozen=True)
class QualificationReport:
    """Outcome of :meth:`PatientService.qualify`: ``failures`` empty means qualified."""

    patient_id: str
    qualified: bool
    failures: tuple[str, ...]


def check_qualification(
    traits: IdentityTraits, *, document_checked: bool, insi_verified: bool
) -> tuple[str, ...]:
    """The documented checks (module docstring); returns what failed, empty if none."""
    failures: list[str] = []
    if traits.ins is None:
        failures.append("no INS recorded")
    else:
        try:
            nir = parse_nir(traits.ins)
        except NirError as exc:
            failures.append(f"INS invalid: {exc}")
        else:
            sex_ok = {"M": (1, 3, 7), "F": (2, 4, 8)}.get(traits.sex, ())
            if nir.sex not in sex_ok:
                failures.append("sex does not match the INS")
            if nir.year != traits.birth_date.year % 100:
                failures.append("birth year does not match the INS")
            if month_is_date(nir.month) and nir.month != traits.birth_date.month:
                failures.append("birth month does not match the INS")
            if nir.birthplace_code != traits.birthplace_code:
                failures.append("birthplace code does not match the INS")
    if not document_checked:
        failures.append("identity not checked against a high-trust identity document")
    if not insi_verified:
        failures.append("INS not confirmed by the INSi teleservice")
    return tuple(failures)


class UnknownPatientError(KeyError):
    """No patient with this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown patient"


class PatientService:
    """Identities and signed records, behind the habilitation check.

    Args:
        accounts: the :class:`console.auth.AccountService` (authorisation, audit, clock).
        master_key: the installation master key.
    """

    def __init__(self, accounts: AccountService, master_key: bytes) -> None:
        self._accounts = accounts
        self._store = accounts.store
        self._clock = accounts.clock
        self._ring = MasterKeyRing(master_key)
        ensure_master_key(self._store, self._ring, self._clock)
        #: Decisions, bilans and comptes rendus signed by their author.
        self.records = SignedRecords(self)

    @property
    def accounts(self) -> AccountService:
        return self._accounts

    @property
    def store(self) -> Store:
        return self._store

    # ------------------------------------------------------------ keys and cells

    def _data_key(self, patient_id: str, conn: Any = None) -> bytes:
        row = self._store.fetchone(
            "SELECT p.status, p.shredded_at, k.key_version, k.wrapped_key FROM patients p"
            " LEFT JOIN patient_keys k ON k.patient_id = p.patient_id WHERE p.patient_id = ?",
            (patient_id,),
            conn=conn,
        )
        if row is None:
            raise UnknownPatientError(f"no patient with id {patient_id!r}")
        _status, shredded_at, version, wrapped = row
        if wrapped is None:
            when = f" on {shredded_at}" if shredded_at else ""
            raise PatientShreddedError(
                f"patient {patient_id} was erased{when} (crypto-shredded): "
                "their data can no longer be read"
            )
        return self._ring.unwrap(patient_id, int(version), bytes(wrapped))

    def seal(self, patient_id: str, table: str, column: str, row_id: str, text: str) -> bytes:
        """Encrypt free text belonging to a patient for another table's cell.

        For other modules storing clinical free text (bilans, notes): the ciphertext is
        bound to ``table``/``column``/``row_id`` and dies with the patient's key.
        Authorisation is the caller's service's job.
        """
        return seal_field(self._data_key(patient_id), Cell(table, column, row_id), text)

    def open(self, patient_id: str, table: str, column: str, row_id: str, blob: bytes) -> str:
        """Decrypt what :meth:`seal` produced (raises ``PatientShreddedError`` once erased)."""
        return open_field(self._data_key(patient_id), Cell(table, column, row_id), blob)

    def _target(self, patient_id: str) -> Target:
        row = self._store.fetchone("SELECT site FROM patients WHERE patient_id = ?", (patient_id,))
        if row is None:
            raise UnknownPatientError(f"no patient with id {patient_id!r}")
        return Target(f"patient:{patient_id}", site=row[0])

    @contextlib.contextmanager
    def _audited_change(
        self,
        actor: Actor,
        permission: Action,
        patient_id: str,
        event: str,
        detail: dict[str, Any] | None = None,
    ) -> Iterator[sqlite3.Connection]:
        """Authorise, then one transaction holding the change and its audit event.

        Authorisation comes first, outside the transaction: a refusal's own audit event
        must commit although the change does not happen.
        """
        auth = self._accounts.authorize(actor, permission, self._target(patient_id))
        with self._store.transaction() as conn:
            yield conn
            self._accounts.audit(
                actor,
                event,
                f"patient:{patient_id}",
                role=auth.role,
                purpose=auth.purpose,
                detail=detail,
                conn=conn,
            )

    def _index_rows(self, patient_id: str, traits: IdentityTraits) -> list[tuple[str, str, bytes]]:
        rows = [(patient_id, "birth_name", self._ring.blind_index(traits.birth_name))]
        for first in traits.first_names.split():
            rows.append((patient_id, "first_name", self._ring.blind_index(first)))
        return sorted(set(rows))

    def _seal_traits(
        self, key: bytes, patient_id: str, traits: IdentityTraits
    ) -> dict[str, bytes | None]:
        values: dict[str, str | None] = {
            "birth_name": traits.birth_name,
            "first_names": traits.first_names,
            "birth_date": traits.birth_date.isoformat(),
            "sex": traits.sex,
            "birthplace_code": traits.birthplace_code,
            "ins": traits.ins,
        }
        return {
            col: None if v is None else seal_field(key, Cell(_ID_TABLE, col, patient_id), v)
            for col, v in values.items()
        }

    # ------------------------------------------------------------ identities

    def register(
        self,
        actor: Actor,
        traits: IdentityTraits,
        *,
        site: str | None = None,
        last_contact: date | None = None,
    ) -> str:
        """Create a patient (unqualified) with a fresh data key; returns its id."""
        auth = self._accounts.authorize(
            actor, Action.IDENTITY_WRITE, Target("patient:new", site=site)
        )
        patient_id = new_id("pat")
        key = MasterKeyRing.new_data_key()
        now = self._clock()
        sealed = self._seal_traits(key, patient_id, traits)
        contact = (last_contact or now.date()).isoformat()
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO patients (patient_id, site, status, created_at, last_contact)"
                " VALUES (?, ?, 'unqualified', ?, ?)",
                (patient_id, site, now.isoformat(), contact),
            )
            conn.execute(
                "INSERT INTO patient_keys (patient_id, key_version, wrapped_key, created_at)"
                " VALUES (?, 1, ?, ?)",
                (patient_id, self._ring.wrap(patient_id, 1, key), now.isoformat()),
            )
            conn.execute(
                "INSERT INTO patient_identities (patient_id, birth_name, first_names,"
                " birth_date, sex, birthplace_code, ins, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    patient_id,
                    sealed["birth_name"],
                    sealed["first_names"],
                    sealed["birth_date"],
                    sealed["sex"],
                    sealed["birthplace_code"],
                    sealed["ins"],
                    now.isoformat(),
                ),
            )
            conn.executemany(
                "INSERT INTO identity_blind_index (patient_id, kind, token) VALUES (?, ?, ?)",
                self._index_rows(patient_id, traits),
            )
            self._accounts.audit(
                actor,
                "identity.create",
                f"patient:{patient_id}",
                role=auth.role,
                purpose=auth.purpose,
                detail={"site": site, "ins": traits.ins is not None},
                conn=conn,
            )
        return patient_id

    def _load(self, patient_id: str, conn: Any = None) -> PatientRecord:
        row = self._store.fetchone(
            "SELECT p.status, p.site, p.created_at, p.last_contact, p.opposition, p.deceased,"
            " i.birth_name, i.first_names, i.birth_date, i.sex, i.birthplace_code, i.ins,"
            " i.death_date FROM patients p LEFT JOIN patient_identities i"
            " ON i.patient_id = p.patient_id WHERE p.patient_id = ?",
            (patient_id,),
            conn=conn,
        )
        if row is None:
            raise UnknownPatientError(f"no patient with id {patient_id!r}")
        key = self._data_key(patient_id, conn)

        def cell(col: str, blob: Any) -> str | None:
            return None if blob is None else open_field(key, Cell(_ID_TABLE, col, patient_id), blob)

        traits = IdentityTraits(
            birth_name=cell("birth_name", row[6]) or "",
            first_names=cell("first_names", row[7]) or "",
            birth_date=date.fromisoformat(cell("birth_date", row[8]) or ""),
            sex=cell("sex", row[9]) or "I",
            birthplace_code=cell("birthplace_code", row[10]) or "",
            ins=cell("ins", row[11]),
        )
        death = cell("death_date", row[12])
        return PatientRecord(
            patient_id=patient_id,
            status=row[0],
            site=row[1],
            created_at=row[2],
            last_contact=date.fromisoformat(row[3]),
            opposition=bool(row[4]),
            deceased=bool(row[5]),
            traits=traits,
            death_date=date.fromisoformat(death) if death else None,
        )

    def read(self, actor: Actor, patient_id: str) -> PatientRecord:
        """Read a patient's identity (``clinical.read``; audited, break-glass flagged)."""
        auth = self._accounts.authorize(actor, Action.CLINICAL_READ, self._target(patient_id))
        try:
            record = self._load(patient_id)
        except PatientShreddedError:
            self._accounts.audit(
                actor,
                "identity.read",
                f"patient:{patient_id}",
                role=auth.role,
                purpose=auth.purpose,
                outcome="failure",
                detail={"reason": "shredded"},
            )
            raise
        self._accounts.audit(
            actor,
            "identity.read",
            f"patient:{patient_id}",
            role=auth.role,
            purpose=auth.purpose,
            detail={"break_glass_grant": auth.break_glass_grant} if auth.break_glass else {},
        )
        return record

    def search(self, actor: Actor, name: str, *, first_name: str | None = None) -> list[str]:
        """Patient ids whose birth name (and first name, if given) match, spelling-tolerant.

        Only patients the actor may read are returned (an EHPAD nurse sees their own
        residents). The searched name is not written to the trail; the count is.
        """
        site = actor.site if hasattr(actor, "site") else None
        auth = self._accounts.authorize(
            actor, Action.CLINICAL_READ, Target("patient:search", site=site)
        )
        sql = (
            "SELECT DISTINCT b.patient_id, p.site FROM identity_blind_index b"
            " JOIN patients p ON p.patient_id = b.patient_id"
            " WHERE b.kind = 'birth_name' AND b.token = ? AND p.status != 'shredded'"
        )
        params: list[Any] = [self._ring.blind_index(name)]
        if first_name:
            sql += (
                " AND EXISTS (SELECT 1 FROM identity_blind_index f WHERE f.patient_id ="
                " b.patient_id AND f.kind = 'first_name' AND f.token = ?)"
            )
            params.append(self._ring.blind_index(first_name))
        rows = self._store.fetchall(sql + " ORDER BY b.patient_id", params)
        ids = [
            r[0]
            for r in rows
            if self._accounts.permits(
                actor, Action.CLINICAL_READ, Target(f"patient:{r[0]}", site=r[1])
            )
        ]
        self._accounts.audit(
            actor, "identity.search", "patient:search", role=auth.role, detail={"matches": len(ids)}
        )
        return ids

    def rectify(
        self, actor: Actor, patient_id: str, changes: dict[str, Any], reason: str
    ) -> PatientRecord:
        """Change traits/INS, keeping the old and new values (sealed) in history.

        A qualified identity whose traits change returns to ``unqualified``.

        Raises:
            ValueError: unknown field, blank reason, or an invalid new value.
        """
        unknown = set(changes) - set(RECTIFIABLE)
        if unknown:
            raise ValueError(
                f"cannot rectify {', '.join(sorted(unknown))}: fields are {', '.join(RECTIFIABLE)}"
            )
        if not reason.strip():
            raise ValueError("a rectification needs a reason")
        auth = self._accounts.authorize(actor, Action.IDENTITY_WRITE, self._target(patient_id))
        current = self._load(patient_id)
        assert current.traits is not None
        updated = IdentityTraits.model_validate({**current.traits.model_dump(), **changes})
        old_values = current.traits.model_dump(mode="json")
        new_values = updated.model_dump(mode="json")
        changed = [f for f in RECTIFIABLE if old_values[f] != new_values[f]]
        if not changed:
            return current
        key = self._data_key(patient_id)
        now = self._clock().isoformat()
        sealed = self._seal_traits(key, patient_id, updated)
        with self._store.transaction() as conn:
            for f in changed:
                change_id = new_id("chg")

                def h(col: str, v: Any, cid: str = change_id) -> bytes | None:
                    return (
                        None
                        if v is None
                        else seal_field(key, Cell("identity_history", col, cid), str(v))
                    )

                conn.execute(
                    "INSERT INTO identity_history (change_id, patient_id, field, old_value,"
                    " new_value, reason, changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        change_id,
                        patient_id,
                        f,
                        h("old_value", old_values[f]),
                        h("new_value", new_values[f]),
                        h("reason", reason.strip()),
                        now,
                        actor.user_id,
                    ),
                )
            sets = ", ".join(f"{c} = ?" for c in changed)
            conn.execute(
                f"UPDATE patient_identities SET {sets}, updated_at = ?,"  # noqa: S608 - fixed names
                " qualified_at = NULL, qualified_by = NULL WHERE patient_id = ?",
                (*(sealed[c] for c in changed), now, patient_id),
            )
            conn.execute(
                "UPDATE patients SET status = 'unqualified' WHERE patient_id = ?"
                " AND status = 'qualified'",
                (patient_id,),
            )
            conn.execute("DELETE FROM identity_blind_index WHERE patient_id = ?", (patient_id,))
            conn.executemany(
                "INSERT INTO identity_blind_index (patient_id, kind, token) VALUES (?, ?, ?)",
                self._index_rows(patient_id, updated),
            )
            self._accounts.audit(
                actor,
                "identity.rectify",
                f"patient:{patient_id}",
                role=auth.role,
                purpose=auth.purpose,
                detail={"fields": changed, "was_qualified": current.status == "qualified"},
                conn=conn,
            )
        return self._load(patient_id)

    def history(self, actor: Actor, patient_id: str) -> list[dict[str, Any]]:
        """Rectification history, decrypted (``clinical.read``; audited)."""
        auth = self._accounts.authorize(actor, Action.CLINICAL_READ, self._target(patient_id))
        out = self._history(patient_id)
        self._accounts.audit(
            actor, "identity.history", f"patient:{patient_id}", role=auth.role, purpose=auth.purpose
        )
        return out

    def _history(self, patient_id: str) -> list[dict[str, Any]]:
        key = self._data_key(patient_id)
        rows = self._store.fetchall(
            "SELECT change_id, field, old_value, new_value, reason, changed_at, changed_by"
            " FROM identity_history WHERE patient_id = ? ORDER BY changed_at, change_id",
            (patient_id,),
        )

        def o(col: str, cid: str, blob: Any) -> str | None:
            return (
                None if blob is None else open_field(key, Cell("identity_history", col, cid), blob)
            )

        return [
            {
                "change_id": r[0],
                "field": r[1],
                "old_value": o("old_value", r[0], r[2]),
                "new_value": o("new_value", r[0], r[3]),
                "reason": o("reason", r[0], r[4]),
                "changed_at": r[5],
                "changed_by": r[6],
            }
            for r in rows
        ]

    def qualify(
        self, actor: Actor, patient_id: str, *, document_checked: bool, insi_verified: bool
    ) -> QualificationReport:
        """Run the qualification checks; mark ``qualified`` only if all pass (audited)."""
        auth = self._accounts.authorize(actor, Action.IDENTITY_WRITE, self._target(patient_id))
        record = self._load(patient_id)
        assert record.traits is not None
        failures = check_qualification(
            record.traits, document_checked=document_checked, insi_verified=insi_verified
        )
        now = self._clock().isoformat()
        with self._store.transaction() as conn:
            if not failures:
                conn.execute(
                    "UPDATE patients SET status = 'qualified' WHERE patient_id = ?", (patient_id,)
                )
                conn.execute(
                    "UPDATE patient_identities SET qualified_at = ?, qualified_by = ?"
                    " WHERE patient_id = ?",
                    (now, actor.user_id, patient_id),
                )
            self._accounts.audit(
                actor,
                "identity.qualify",
                f"patient:{patient_id}",
                role=auth.role,
                purpose=auth.purpose,
                outcome="success" if not failures else "failure",
                detail={"failures": list(failures)},
                conn=conn,
            )
        return QualificationReport(patient_id, not failures, failures)

    def set_opposition(self, actor: Actor, patient_id: str, opposed: bool) -> None:
        """Record (or lift) the patient's opposition to secondary uses (audited)."""
        now = self._clock().isoformat()
        with self._audited_change(
            actor, Action.IDENTITY_WRITE, patient_id, "identity.opposition", {"opposed": opposed}
        ) as conn:
            conn.execute(
                "UPDATE patients SET opposition = ?, opposition_at = ? WHERE patient_id = ?",
                (int(opposed), now, patient_id),
            )

    def secondary_use_ids(self) -> list[str]:
        """Patients whose data may go into exports and research extracts.

        Opposition is honoured here: exporters (FHIR, research) must take their
        population from this list; erased patients are excluded too.
        """
        rows = self._store.fetchall(
            "SELECT patient_id FROM patients WHERE opposition = 0 AND status != 'shredded'"
            " ORDER BY patient_id"
        )
        return [r[0] for r in rows]

    def record_contact(self, actor: Actor, patient_id: str, when: date) -> None:
        """Note a contact (call, bilan, decision): retention counts from the last one."""
        with self._audited_change(
            actor, Action.CASE_CREATE, patient_id, "patient.contact", {"date": when.isoformat()}
        ) as conn:
            conn.execute(
                "UPDATE patients SET last_contact = max(last_contact, ?) WHERE patient_id = ?",
                (when.isoformat(), patient_id),
            )

    def record_death(self, actor: Actor, patient_id: str, death_date: date) -> None:
        """Record the date of death (sealed; it sets the 10-year retention)."""
        with self._audited_change(
            actor, Action.IDENTITY_WRITE, patient_id, "identity.death"
        ) as conn:
            key = self._data_key(patient_id, conn)
            cell = Cell(_ID_TABLE, "death_date", patient_id)
            conn.execute("UPDATE patients SET deceased = 1 WHERE patient_id = ?", (patient_id,))
            conn.execute(
                "UPDATE patient_identities SET death_date = ? WHERE patient_id = ?",
                (seal_field(key, cell, death_date.isoformat()), patient_id),
            )

    # ------------------------------------------------------------ signed records

    def sign_record(
        self, session: Session, patient_id: str, kind: str, payload: dict[str, Any]
    ) -> str:
        """Sign and store a decision, bilan or compte rendu (see :class:`SignedRecords`)."""
        return self.records.sign(session, patient_id, kind, payload)

    def export_record(self, actor: Actor, record_id: str) -> dict[str, Any]:
        """A signed record with its offline-verifiable bundle (``clinical.read``; audited)."""
        return self.records.export(actor, record_id)

    def verify_record(self, record_id: str) -> bool:
        """Check a stored record's signature against its author's public key."""
        return self.records.verify(record_id)

    def patient_ids(self) -> list[str]:
        """Every patient id, erased ones included (for the retention runner)."""
        return [
            r[0]
            for r in self._store.fetchall("SELECT patient_id FROM patients ORDER BY patient_id")
        ]

    def now(self) -> datetime:
        """The service's clock (shared with the account service)."""
        now: datetime = self._clock()
        return now
