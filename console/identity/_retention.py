"""Retention of patient records, and crypto-shredding when it ends.

The rule is the Code de la santé publique's for medical records (art. R1112-7), as
records-security.md summarises it:

* a record is kept **20 years after the last contact**;
* if the patient was a **minor** at the last contact and those 20 years end before
  their **28th birthday**, it is kept until that birthday;
* if the patient **died less than 10 years after the last contact**, it is kept
  **10 years after the death** (the CSP's "dans tous les cas": this also shortens a
  minor's retention). A death 10 or more years after the last contact changes nothing:
  the 20-year rule then ends no later than 10 years after the death anyway
  unless the minor rule extends it;
* a **legal hold** suspends everything: a held record is never shredded.

Anniversaries of 29 February fall on 1 March in common years (keeping one day longer
is the safe side of a retention rule).

Ending retention = **crypto-shredding**: the patient's wrapped data key, blind-index
tokens and clear metadata that could link them are deleted (with SQLite's
``secure_delete`` so the freed pages are zeroed, then a WAL checkpoint so no copy
lingers in the WAL). The sealed identity, history and records stay in place but can
never be decrypted again; the patient row remains as a tombstone with status
``shredded`` so ids referenced from the audit trail still resolve to "erased on …".
The audit trail itself is an access log, kept separately and not purged here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.auth import Actor
    from console.identity._patients import PatientService


def add_years(d: date, years: int) -> date:
    """``d`` plus whole years; 29 Feb becomes 1 Mar in a common year."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February in a common year
        return date(d.year + years, 3, 1)


RETENTION_YEARS = 20
MINOR_UNTIL_AGE = 28
ADULT_AGE = 18
DECEASED_YEARS = 10


def retention_end(last_contact: date, birth_date: date | None, death_date: date | None) -> date:
    """The first day the record may be erased (kept through the day before)."""
    if death_date is not None and death_date < add_years(last_contact, DECEASED_YEARS):
        return add_years(death_date, DECEASED_YEARS)
    end = add_years(last_contact, RETENTION_YEARS)
    if birth_date is not None and last_contact < add_years(birth_date, ADULT_AGE):
        end = max(end, add_years(birth_date, MINOR_UNTIL_AGE))
    return end


@dataclass(frozen=True)
class RetentionDecision:
    """What the policy says about one patient on one day.

    ``action`` is ``keep`` (retention running), ``shred`` (ended, no hold), ``held``
    (ended but under legal hold) or ``shredded`` (already erased earlier).
    """

    patient_id: str
    action: str
    retention_end: date | None
    reason: str


def decide(
    patient_id: str,
    today: date,
    *,
    last_contact: date,
    birth_date: date | None,
    death_date: date | None,
    held: bool,
    already_shredded: bool = False,
) -> RetentionDecision:
    """Apply the policy to one patient (pure: the runner gathers the facts)."""
    if already_shredded:
        return RetentionDecision(patient_id, "shredded", None, "erased earlier")
    end = retention_end(last_contact, birth_date, death_date)
    if death_date is not None and death_date < add_years(last_contact, DECEASED_YEARS):
        why = f"deceased: 10 years after death, until {end.isoformat()}"
    elif end != add_years(last_contact, RETENTION_YEARS):
        why = f"minor at last contact: until the 28th birthday, {end.isoformat()}"
    else:
        why = f"20 years after last contact ({last_contact.isoformat()}), until {end.isoformat()}"
    if today < end:
        return RetentionDecision(patient_id, "keep", end, why)
    if held:
        return RetentionDecision(
            patient_id, "held", end, "retention ended but a legal hold is active"
        )
    return RetentionDecision(patient_id, "shred", end, why.replace("until", "ended"))


@dataclass(frozen=True)
class RetentionReport:
    """What a retention run decided and did."""

    today: date
    dry_run: bool
    decisions: tuple[RetentionDecision, ...]

    def count(self, action: str) -> int:
        return sum(1 for d in self.decisions if d.action == action)

    @property
    def shredded_now(self) -> tuple[str, ...]:
        """Ids erased by this run (none in a dry run)."""
        if self.dry_run:
            return ()
        return tuple(d.patient_id for d in self.decisions if d.action == "shred")

    @property
    def errors(self) -> tuple[RetentionDecision, ...]:
        return tuple(d for d in self.decisions if d.action == "error")

    def summary(self) -> dict[str, int]:
        return {a: self.count(a) for a in ("keep", "shred", "held", "shredded", "error")}


class RetentionRunner:
    """Applies the policy to every patient; the local operator's ``samu retention run``.

    Args:
        patients: the :class:`~console.identity.PatientService`.
    """

    def __init__(self, patients: PatientService) -> None:
        self._patients = patients
        self._store = patients.store
        self._accounts = patients.accounts

    def place_hold(self, actor: Actor, patient_id: str, reason: str) -> str:
        """Suspend retention for a patient (litigation, inquiry); returns the hold id."""
        from console.auth import Action

        if not reason.strip():
            raise ValueError("a legal hold needs a reason")
        auth = self._accounts.authorize(actor, Action.RETENTION_MANAGE, f"patient:{patient_id}")
        hold_id = "hold_" + secrets.token_hex(8)
        now = self._patients.now().isoformat()
        with self._store.transaction() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM patients WHERE patient_id = ?", (patient_id,)
                ).fetchone()
                is None
            ):
                raise KeyError(f"no patient with id {patient_id!r}")
            conn.execute(
                "INSERT INTO retention_holds (hold_id, patient_id, reason, placed_at, placed_by)"
                " VALUES (?, ?, ?, ?, ?)",
                (hold_id, patient_id, reason.strip(), now, actor.user_id),
            )
            self._accounts.audit(
                actor,
                "retention.hold",
                f"patient:{patient_id}",
                role=auth.role,
                detail={"hold": hold_id},
                conn=conn,
            )
        return hold_id

    def release_hold(self, actor: Actor, hold_id: str) -> None:
        """Lift a legal hold (retention resumes at the next run)."""
        from console.auth import Action

        auth = self._accounts.authorize(actor, Action.RETENTION_MANAGE, f"hold:{hold_id}")
        now = self._patients.now().isoformat()
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT patient_id FROM retention_holds WHERE hold_id = ? AND released_at IS NULL",
                (hold_id,),
            ).fetchone()
            if row is None:
                raise KeyError(f"no active legal hold {hold_id!r}")
            conn.execute(
                "UPDATE retention_holds SET released_at = ?, released_by = ? WHERE hold_id = ?",
                (now, actor.user_id, hold_id),
            )
            self._accounts.audit(
                actor,
                "retention.release",
                f"patient:{row[0]}",
                role=auth.role,
                detail={"hold": hold_id},
                conn=conn,
            )

    def _decision(self, patient_id: str, today: date) -> RetentionDecision:
        from console.crypto import CryptoError

        row = self._store.fetchone(
            "SELECT status, last_contact, (SELECT count(*) FROM retention_holds h WHERE"
            " h.patient_id = p.patient_id AND h.released_at IS NULL) FROM patients p"
            " WHERE patient_id = ?",
            (patient_id,),
        )
        status, last_contact, holds = row
        if status == "shredded":
            return decide(
                patient_id,
                today,
                last_contact=date.fromisoformat(last_contact),
                birth_date=None,
                death_date=None,
                held=False,
                already_shredded=True,
            )
        try:
            record = self._patients._load(patient_id)
        except (CryptoError, ValueError) as exc:
            return RetentionDecision(patient_id, "error", None, f"cannot read: {exc}")
        return decide(
            patient_id,
            today,
            last_contact=record.last_contact,
            birth_date=record.traits.birth_date if record.traits else None,
            death_date=record.death_date,
            held=bool(holds),
        )

    def run(
        self, actor: Actor, *, dry_run: bool = False, today: date | None = None
    ) -> RetentionReport:
        """Decide for every patient and, unless ``dry_run``, crypto-shred the expired.

        Each erasure is its own transaction with its audit event (an interrupted run
        leaves every patient either intact or fully erased); the run and its counts
        are audited too, dry runs included (they read birth and death dates).
        """
        from console.auth import Action

        auth = self._accounts.authorize(actor, Action.RETENTION_MANAGE, "retention")
        day = today or self._patients.now().date()
        decisions = tuple(self._decision(pid, day) for pid in self._patients.patient_ids())
        report = RetentionReport(day, dry_run, decisions)
        if not dry_run and report.count("shred"):
            self._store.secure_delete()
            for d in decisions:
                if d.action == "shred":
                    self._shred(actor, auth.role, d)
            # Fold the WAL back and truncate it so no pre-erasure page lingers there (busy
            # readers: the next checkpoint does it).
            self._store.truncate_wal()
        self._accounts.audit(
            actor,
            "retention.run",
            "retention",
            role=auth.role,
            detail={"dry_run": dry_run, "date": day.isoformat(), **report.summary()},
        )
        return report

    def _shred(self, actor: Actor, role: str, decision: RetentionDecision) -> None:
        pid = decision.patient_id
        now = self._patients.now().isoformat()
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM patient_keys WHERE patient_id = ?", (pid,))
            conn.execute("DELETE FROM identity_blind_index WHERE patient_id = ?", (pid,))
            conn.execute(
                "UPDATE patients SET status = 'shredded', shredded_at = ?, site = NULL"
                " WHERE patient_id = ?",
                (now, pid),
            )
            self._accounts.audit(
                actor,
                "retention.shred",
                f"patient:{pid}",
                role=role,
                detail={
                    "retention_end": decision.retention_end.isoformat()
                    if decision.retention_end
                    else None,
                },
                conn=conn,
            )
