"""Hub Santé messages into the records: RS-EDA opens or updates a case, RS-BPV attaches a
received bilan.

Everything is checked before anything is written: JSON, then the official schemas (the
errors with their JSON paths), then the console's own rules (a case id the cases table
can hold, a status it knows). Then one transaction writes the message (sealed, like
every received message, in ``ingest_messages`` with kind ``hubsante:<model>``), the
case, its patients, the timeline event and the audit event — all or nothing.

Re-importing the same message (same distributionID, or the same bytes) adds nothing:
the database's unique envelope id refuses it, and the summary says ``unchanged``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from console.cases import CASE_ID
from console.ingest import Ingest, iso
from console.interop._case import PATIENT_ID
from console.interop._envelope import distribution_of, sender_of
from console.interop._models import CreateCaseHealth, InterventionReport
from console.interop._rs_eda import CASE_KEY
from console.interop._schemas import HubSanteSchemas, SchemaIssue
from console.records import AuditContext, Store
from protocols import KeyRing, Observation, has_control
from protocols.vocab import is_valid_id

_STATUS = {"CLASSE": "CLOTURE", "ARCHIVE": "CLOTURE"}
_SOURCES = ("bilan", "implant", "vitals", "call", "video")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
#: RS-BPV evaluation parameter → (LOINC code, UCUM unit) of the console's observations.
BPV_LOINC = {
    "SATURATION_OXYGENE": ("59408-5", "%"),
    "FREQUENCE_CARDIAQUE": ("8867-4", "/min"),
    "FREQUENCE_RESPIRATOIRE": ("9279-1", "/min"),
    "TEMPERATURE": ("8310-5", "Cel"),
    "HEMOGLOCOTEST": ("41653-7", "mg/dL"),
}


class HubSanteImportError(ValueError):
    """The message cannot be imported; ``issues`` lists schema errors when there are."""

    def __init__(self, message: str, issues: list[SchemaIssue] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


@dataclass
class ImportSummary:
    """What an import did (printed as one JSON object)."""

    case_id: str
    status: str  # created | updated | unchanged
    model: str
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "created": self.status == "created",
            "updated": self.status == "updated",
            "model": self.model,
            "counts": self.counts,
        }


def parse_json(raw: bytes) -> object:
    """Strict JSON (UTF-8, no NaN, no duplicate keys).

    Raises:
        HubSanteImportError: not JSON.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError as exc:
        raise HubSanteImportError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise HubSanteImportError(f"not JSON: {exc}") from None
    except RecursionError:
        raise HubSanteImportError("not JSON: nested too deeply") from None


_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"
_Line = Annotated[str, Field(max_length=500)]


class _CaseExtension(BaseModel):
    """The console's own ``samu.case`` customMap entry (what our RS-EDA export writes so
    that a round trip keeps the board's fields). It comes from another system, so every
    value is checked as strictly as a device's message: a score outside its range, a
    resident at another site, a control character is a refused message, not data."""

    model_config = ConfigDict(extra="ignore")

    site: Annotated[str, Field(pattern=_ID)] | None = None
    patients: dict[str, Annotated[str, Field(max_length=130)]] = Field(
        default_factory=dict, max_length=64
    )
    sources: list[str] = Field(default_factory=list, max_length=8)
    suggested_priority: Literal["P0", "P1", "P2", "P3", "NR"] | None = None
    decided_priority: Literal["P0", "P1", "P2", "P3"] | None = None
    news2: Annotated[int, Field(ge=0, le=20)] | None = None
    qsofa: Annotated[int, Field(ge=0, le=3)] | None = None
    reasons: list[_Line] = Field(default_factory=list, max_length=32)
    implant_alerts: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]] = Field(
        default_factory=list, max_length=32
    )

    @model_validator(mode="after")
    def _checked(self) -> _CaseExtension:
        for text in [*self.reasons, *self.patients.values(), *self.patients]:
            if has_control(text):
                raise ValueError(f"a control character in {text[:40]!r}")
        for rid in self.patients.values():
            site, _, ref = rid.partition("/")
            if not (re.match(_ID, site) and re.match(_ID, ref)):
                raise ValueError(f"patients: {rid!r} is not a site/resident id")
            if self.site is not None and site != self.site:
                raise ValueError(f"patients: {rid!r} is not at the case's site {self.site!r}")
        return self


def _custom(content: dict[str, Any]) -> dict[str, Any]:
    """The checked ``samu.case`` extension (empty when absent).

    Raises:
        HubSanteImportError: it is there but not what our export writes.
    """
    for entry in content.get("additionalInformation", {}).get("customMap", []) or []:
        if entry.get("key") == CASE_KEY:
            try:
                value = json.loads(entry.get("value", ""))
                return _CaseExtension.model_validate(value).model_dump(exclude_none=True)
            except (ValueError, ValidationError) as exc:
                raise HubSanteImportError(f"customMap {CASE_KEY}: {_first(exc)}") from None
    return {}


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        return f"{where}: {e['msg']}" if where else str(e["msg"])
    return str(exc)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _centre(case_id: str) -> str:
    parts = case_id.split(".")
    return parts[2] if len(parts) > 3 else parts[0]


class HubSanteImporter:
    """Imports RS-EDA and RS-BPV messages into one store (see the module docstring)."""

    def __init__(self, store: Store, master_key: bytes, schemas: HubSanteSchemas) -> None:
        self._store = store
        self._schemas = schemas
        self._seal = Ingest(store, KeyRing(), master_key).seal_raw

    def check(self, raw: bytes) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(model, content, whole message) of a valid RS-EDA or RS-BPV message.

        Raises:
            HubSanteImportError: not JSON, not valid, or not a model this import takes.
        """
        return self.check_only(self._schemas, raw)

    @staticmethod
    def check_only(
        schemas: HubSanteSchemas, raw: bytes
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """:meth:`check` without a store (before the database is opened)."""
        data = parse_json(raw)
        result = schemas.validate(data)
        if not result.ok:
            raise HubSanteImportError(
                f"{len(result.issues)} schema error(s) ({result.kind or 'Hub Santé message'})",
                result.issues,
            )
        if result.kind not in ("RS-EDA", "RS-BPV") or result.content is None:
            raise HubSanteImportError(
                f"a {result.kind} message is valid but not importable: import takes RS-EDA "
                "(createCaseHealth) and RS-BPV (interventionReport)"
            )
        assert isinstance(data, dict)
        case_id = result.content.get("caseId", "")
        if not CASE_ID.fullmatch(case_id) or len(case_id) > 200:
            raise HubSanteImportError(f"caseId {case_id!r} does not match the RS-EDA pattern")
        _custom(result.content)  # our own extension, checked before anything is written
        return result.kind, result.content, data

    def import_message(self, raw: bytes, *, source: str, who: AuditContext) -> ImportSummary:
        """Check, then write in one transaction (see the module docstring)."""
        model, content, whole = self.check(raw)
        now = datetime.now(UTC).timestamp()
        sender = sender_of(whole) or content.get("owner") or "hub-sante"
        ident = distribution_of(whole) or "sha256:" + hashlib.sha256(raw).hexdigest()
        try:
            if model == "RS-EDA":
                case = CreateCaseHealth.model_validate(content)
                write = self._eda(case, content)
            else:
                report = InterventionReport.model_validate(content)
                write = self._bpv(report, content)
        except ValidationError as exc:
            raise HubSanteImportError(f"{model}: {exc.errors()[0]['msg']}") from None
        with self._store.transaction() as conn:
            summary: ImportSummary = write(
                conn,
                raw,
                kind=f"hubsante:{model}",
                sender=sender,
                ident=ident,
                source=source,
                now=now,
            )
            conn_audit = who.event(
                "hubsante.import",
                f"case:{summary.case_id}",
                detail={"model": model, "status": summary.status, "sender": sender,
                        "distribution": ident, "source": source[:200]},
            )  # fmt: skip
            self._store.append_audit(conn_audit, conn=conn)
        return summary

    # ----------------------------------------------------------------- shared writes

    def _message(
        self,
        conn: sqlite3.Connection,
        raw: bytes,
        *,
        kind: str,
        site: str,
        sender: str,
        ident: str,
        source: str,
        now: float,
    ) -> int | None:
        device = sender if is_valid_id(sender) else "hub-sante"
        cur = conn.execute(
            "INSERT OR IGNORE INTO ingest_messages (envelope_id, site, device, seq, kind,"
            " source, received_at, sent_at, raw) VALUES (?, ?, ?, NULL, ?, ?, ?, NULL, ?)",
            (f"hubsante:{ident}"[:300], site, device, kind, source[:512], iso(now),
             self._seal(raw)),
        )  # fmt: skip
        return int(cur.lastrowid or 0) if cur.rowcount else None

    def _case(
        self,
        conn: sqlite3.Connection,
        case_id: str,
        *,
        site: str,
        opened: str,
        by: str,
        status: str,
        sources: list[str],
        custom: dict[str, Any],
        priority: str | None,
        now: float,
    ) -> bool:
        """Open the case or update it; True when opened now."""
        row = conn.execute("SELECT sources FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        suggested = custom.get("suggested_priority")
        decided = custom.get("decided_priority", priority if priority != "NR" else None)
        if row is None:
            conn.execute(
                "INSERT INTO cases (case_id, centre, site, status, opened_at, opened_ts,"
                " updated_at, opened_by, sources, suggested_priority, decided_priority, news2,"
                " qsofa, reasons, implant_alerts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)",
                (
                    case_id, _centre(case_id), site, status, iso(_ts(opened)), _ts(opened),
                    iso(now), by, json.dumps(sources),
                    suggested if suggested in ("P0", "P1", "P2", "P3", "NR") else "NR",
                    decided, custom.get("news2"), custom.get("qsofa"),
                    json.dumps(custom.get("reasons", []), ensure_ascii=False),
                    json.dumps(custom.get("implant_alerts", [])),
                ),
            )  # fmt: skip
            self._timeline(conn, case_id, now, "opened", {"source": sources[0], "by": by})
            return True
        merged = [s for s in _SOURCES if s in {*json.loads(row[0]), *sources}]
        conn.execute(
            "UPDATE cases SET status = ?, sources = ?, updated_at = ?,"
            " decided_priority = coalesce(?, decided_priority) WHERE case_id = ?",
            (status, json.dumps(merged), iso(now), decided, case_id),
        )
        return False

    def _resident(self, conn: sqlite3.Connection, case_id: str, rid: str, now: float) -> None:
        site, _, ref = rid.partition("/")
        conn.execute(
            "INSERT OR IGNORE INTO residents (resident_id, site, ref, first_seen)"
            " VALUES (?, ?, ?, ?)",
            (rid, site, ref, iso(now)),
        )
        conn.execute(
            "INSERT OR IGNORE INTO case_residents (case_id, resident_id) VALUES (?, ?)",
            (case_id, rid),
        )

    @staticmethod
    def _timeline(
        conn: sqlite3.Connection, case_id: str, now: float, kind: str, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO case_timeline (case_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            (case_id, iso(now), kind, json.dumps(detail, ensure_ascii=False,
                                                   separators=(",", ":"))),
        )  # fmt: skip

    # ----------------------------------------------------------------- RS-EDA

    def _eda(self, case: CreateCaseHealth, content: dict[str, Any]) -> Any:
        custom = _custom(content)
        given = custom.get("site")
        site = given if isinstance(given, str) and is_valid_id(given) else None
        site = site or (case.owner if is_valid_id(case.owner) else "hub-sante")
        given_map = custom.get("patients")
        mapping: dict[str, Any] = given_map if isinstance(given_map, dict) else {}
        residents = []
        for p in case.patient or []:
            rid = mapping.get(p.patientId)
            if not (isinstance(rid, str) and "/" in rid):
                rid = f"{site}/{p.patientId}"
            residents.append(rid)
        details = case.qualification.details
        status = details.status if details and details.status else "ACTIF"
        status = _STATUS.get(status, status)
        priority = details.priority if details else None
        sources = [s for s in custom.get("sources", []) if s in _SOURCES] or ["call"]

        def write(
            conn: sqlite3.Connection, raw: bytes, *, kind: str, sender: str, ident: str,
            source: str, now: float,
        ) -> ImportSummary:  # fmt: skip
            msg_id = self._message(
                conn,
                raw,
                kind=kind,
                site=site,
                sender=sender,
                ident=ident,
                source=source,
                now=now,
            )
            if msg_id is None:
                return ImportSummary(case.caseId, "unchanged", "RS-EDA", {"patients": 0})
            opened = self._case(
                conn, case.caseId, site=site, opened=case.creation, by=f"hub-sante:{sender}",
                status=status, sources=sources, custom=custom, priority=priority, now=now,
            )  # fmt: skip
            for rid in residents:
                self._resident(conn, case.caseId, rid, now)
            self._timeline(
                conn, case.caseId, now, "hub_sante",
                {"message": msg_id, "direction": "received", "model": "RS-EDA",
                 "sender": sender, "distribution": ident},
            )  # fmt: skip
            return ImportSummary(
                case.caseId,
                "created" if opened else "updated",
                "RS-EDA",
                {
                    "patients": len(residents),
                    "decisions": len(case.decision or []),
                    "medical_notes": len(case.medicalNote or []),
                },
            )

        return write

    # ----------------------------------------------------------------- RS-BPV

    def _bpv(self, report: InterventionReport, content: dict[str, Any]) -> Any:
        pid = report.patient.patientId
        observations = bpv_observations(report)

        def write(
            conn: sqlite3.Connection, raw: bytes, *, kind: str, sender: str, ident: str,
            source: str, now: float,
        ) -> ImportSummary:  # fmt: skip
            row = conn.execute(
                "SELECT site FROM cases WHERE case_id = ?", (report.caseId,)
            ).fetchone()
            site = row[0] if row else (sender if is_valid_id(sender) else "hub-sante")
            found = conn.execute(
                "SELECT r.resident_id FROM case_residents c JOIN residents r"
                " ON r.resident_id = c.resident_id WHERE c.case_id = ? AND r.ref = ?",
                (report.caseId, pid),
            ).fetchone()
            rid = found[0] if found else _resident_of(conn, report.caseId, pid, site)
            msg_id = self._message(
                conn,
                raw,
                kind=kind,
                site=site,
                sender=sender,
                ident=ident,
                source=source,
                now=now,
            )
            if msg_id is None:
                return ImportSummary(report.caseId, "unchanged", "RS-BPV", {"observations": 0})
            opened = self._case(
                conn, report.caseId, site=site, opened=report.creation,
                by=f"hub-sante:{sender}", status="ACTIF", sources=["bilan"], custom={},
                priority=None, now=now,
            )  # fmt: skip
            self._resident(conn, report.caseId, rid, now)
            r_site, _, ref = rid.partition("/")
            for o in observations:
                value = None if isinstance(o.value, str) else float(o.value)
                coded = o.value if isinstance(o.value, str) else None
                conn.execute(
                    "INSERT INTO observations (msg_id, site, resident, device, code, value,"
                    " coded, unit, method, measured_at, observed_ts, clock_skew)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'manual', ?, ?, 0)",
                    (msg_id, r_site, ref, "hub-sante", o.code, value, coded, o.unit,
                     o.time.isoformat(), o.time.timestamp()),
                )  # fmt: skip
            self._timeline(
                conn, report.caseId, now, "bilan",
                {"message": msg_id, "format": "RS-BPV", "received_from": sender,
                 "report": report.reportId, "observations": len(observations), "flags": []},
            )  # fmt: skip
            return ImportSummary(
                report.caseId,
                "created" if opened else "updated",
                "RS-BPV",
                {"observations": len(observations),
                 "parameters": len(report.evaluation.parameter or []) if report.evaluation
                 else 0},
            )  # fmt: skip

        return write


def _resident_of(conn: sqlite3.Connection, case_id: str, pid: str, site: str) -> str:
    """The resident a received bilan names: the case's own patient whose exported
    patientId it is, else a new resident under that patientId."""
    from console.interop._case import patient_id

    for (rid,) in conn.execute(
        "SELECT resident_id FROM case_residents WHERE case_id = ?", (case_id,)
    ).fetchall():
        if patient_id(_centre(case_id), rid) == pid:
            return str(rid)
    ref = pid if PATIENT_ID.fullmatch(pid) else pid[:200]
    return f"{site}/{ref}"


def bpv_observations(report: InterventionReport) -> list[Observation]:
    """The evaluation parameters that are plain measurements, as observations.

    A value the console cannot read as one number in its unit (``110-120``, a range; a
    glycaemia without unit) stays in the stored message, never guessed.
    """
    out: list[Observation] = []
    when = report.creation
    for p in (report.evaluation.parameter if report.evaluation else None) or []:
        text = p.value.strip()
        if p.type == "PRESSION_ARTERIELLE":
            m = re.fullmatch(r"(\d{2,3})\s*/\s*(\d{2,3})(?:\s*mm ?Hg)?", text)
            if m:
                for code, v in (("8480-6", m.group(1)), ("8462-4", m.group(2))):
                    _add(out, code, float(v), "mm[Hg]", when)
            continue
        target = BPV_LOINC.get(p.type)
        if target is None:
            continue
        numbers = _NUMBER.findall(text)
        if len(numbers) != 1 or "-" in text.lstrip("-+"):
            continue
        value = float(numbers[0].replace(",", "."))
        code, unit = target
        if code == "41653-7":
            said = f"{text} {p.precision or ''}"
            if "g/L" in said and "mg/dL" not in said:
                value *= 100.0
            elif "mg/dL" not in said:
                continue
        _add(out, code, value, unit, when)
    return out


def _add(out: list[Observation], code: str, value: float, unit: str, when: str) -> None:
    try:
        out.append(
            Observation.model_validate(
                {"code": code, "value": value, "unit": unit, "time": when, "method": "manual"}
            )
        )
    except ValidationError:
        return  # implausible: kept in the message, not scored
