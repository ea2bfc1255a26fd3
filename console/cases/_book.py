"""Cases: the opening rules, the triage tick over every monitored resident, the timeline.

:class:`CaseBook` is fed what ingest accepted (:meth:`apply`) and ticked on a fixed period
(:meth:`tick`); both write through the store's single writer and return the
:class:`CaseEvent` s the hub logs and the board streams. It keeps, per monitored resident,
the latest value of each NEWS2 parameter with the time it was observed and the
observation it came from — from devices *and* from the nurse's bilan — plus the bilan
flags and implant conditions, so one vectorised :func:`console.triage.triage` call scores
everyone at once. A restart rebuilds that state from the database (:meth:`restore`).

Opening rules (cases.md): a bilan, an implant alert, or a suggested priority of P0/P1
from vitals alone opens a case; an open case for the same resident is reused, never
duplicated. Open means status ``PROGRAM`` or ``ACTIF``; a case opens ``ACTIF``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from console.cases._ids import CaseIdMaker
from console.ingest import Accepted, iso
from console.records import Store
from console.triage import (
    ALL_PRESENT,
    PRIORITY_NAMES,
    ImplantAlertName,
    ImplantStatus,
    News2History,
    Policy,
    TriageInputs,
    VitalsArrays,
    bilan_flags,
    default_policy,
    implant_severity,
    triage,
)
from console.triage import PARAMETERS as TRIAGE_PARAMETERS
from protocols import BilanBody, ImplantBody, VideoBody

OPEN_STATUSES = ("PROGRAM", "ACTIF")  # spelled out in restore()'s SQL too
#: LOINC code → NEWS2 parameter (``console.triage.PARAMETERS`` names).
PARAMETER_OF_CODE = {
    "9279-1": "resp_rate",
    "59408-5": "spo2",
    "2708-6": "spo2",
    "8480-6": "systolic_bp",
    "8867-4": "heart_rate",
    "8310-5": "temperature",
    "67775-7": "consciousness",
}
_NUMERIC = ("resp_rate", "spo2", "systolic_bp", "heart_rate", "temperature")
SOURCES = ("bilan", "implant", "vitals", "call", "video")
#: Packet loss from which a video stream is degraded enough to be on the timeline.
DEGRADED_LOSS_PCT = 10.0
_RANK = {name: i for i, name in enumerate(PRIORITY_NAMES)}


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """Something the hub logs and the board streams (``event`` as in cases.md's log)."""

    event: str
    case_id: str | None
    resident_id: str | None
    at: float
    detail: dict[str, Any] = field(default_factory=dict)

    def as_log(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "at": iso(self.at),
            "case_id": self.case_id,
            "resident": self.resident_id,
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class ResidentView:
    """A monitored resident as the board shows it."""

    resident_id: str
    site: str
    priority: str
    news2: int | None
    news2_complete: bool
    qsofa: int | None
    reasons: tuple[str, ...]
    case_id: str | None
    implant_alerts: tuple[str, ...]


@dataclass(slots=True)
class _Latest:
    value: float | str | bool
    ts: float
    obs_id: int | None


@dataclass(slots=True)
class _Param:
    """One parameter of one resident: recent device samples and the latest manual one.

    Triage reads :meth:`value`: a value typed by the nurse when it is the newest; else
    the median of the device samples within ``smoothing_s`` of the newest one, so one
    artefact (a probe moving, a fall) neither opens a case nor flaps the board, while a
    real change moves the median within half the window.

    The tick reads every parameter of every resident each second, so the value is
    cached until the next :meth:`add`, and the observation ids it rests on are listed
    only when a result is recorded (:meth:`ids`), not on every tick.
    """

    device: deque[_Latest] = field(default_factory=deque)
    manual: _Latest | None = None
    newest: float | None = None  # newest device sample time (kept, not recomputed)
    cached: tuple[float | str | bool, float, bool] | None = None  # (value, at, manual)

    def add(self, sample: _Latest, manual: bool, smoothing_s: float) -> None:
        self.cached = None
        if manual:
            if self.manual is None or sample.ts >= self.manual.ts:
                self.manual = sample
            return
        self.device.append(sample)
        if self.newest is None or sample.ts > self.newest:
            self.newest = sample.ts
        floor = self.newest - smoothing_s
        while self.device and self.device[0].ts < floor:
            self.device.popleft()

    def value(self) -> tuple[float | str | bool, float, bool] | None:
        """(value, observed at, whether it is the manual one), or None."""
        cached = self.cached
        if cached is not None:
            return cached
        newest_device = self.newest if self.device else None
        m = self.manual
        if m is not None and (newest_device is None or m.ts >= newest_device):
            self.cached = (m.value, m.ts, True)
            return self.cached
        if newest_device is None:
            return None
        samples = self.device
        last = samples[-1].value
        if isinstance(last, str | bool):
            self.cached = (last, newest_device, False)
        else:
            self.cached = (_median([float(x.value) for x in samples]), newest_device, False)
        return self.cached

    def ids(self) -> list[int]:
        """The observation ids :meth:`value` rests on (its provenance)."""
        got = self.value()
        if got is None:
            return []
        if got[2]:
            m = self.manual
            assert m is not None
            return [m.obs_id] if m.obs_id is not None else []
        ids = [x.obs_id for x in self.device if x.obs_id is not None]
        return ids[-1:] if isinstance(got[0], str | bool) else ids


def _median(values: list[float]) -> float:
    """``float(numpy.median(values))``, exactly, without numpy's per-call overhead.

    The tick takes ~1 500 medians of at most a minute of samples every second; numpy
    spends ~20 µs on each such small call, a sort of 60 floats ~2 µs. Same result: the
    middle value, or the two middle ones' ``(a + b) / 2`` (what ``np.mean`` of two
    float64 computes); NaN anywhere gives NaN as numpy does.
    """
    n = len(values)
    isnan = math.isnan
    if any(isnan(v) for v in values):
        return math.nan
    ordered = sorted(values)
    half = n // 2
    if n % 2:
        return ordered[half]
    return (ordered[half - 1] + ordered[half]) / 2


@dataclass(slots=True)
class _Suggestion:
    priority: str
    news2: int | None
    complete: bool
    qsofa: int | None
    reasons: tuple[str, ...]


@dataclass(slots=True)
class _Resident:
    resident_id: str
    site: str
    row: int
    spo2_scale: int = 1
    params: dict[str, _Param] = field(default_factory=dict)
    bilan_flags: int = 0
    implant_bits: int = 0
    implant_alerts: tuple[str, ...] = ()
    case_id: str | None = None
    last: _Suggestion | None = None
    lower_since: float | None = None


_BATTERY: dict[str, Literal["OK", "ERI", "RRT", "EOS"]] = {
    "BOS": "OK",
    "MOS": "OK",
    "ERI": "ERI",
    "RRT": "RRT",
    "EOS": "EOS",
}
_PACING = (
    "MDC_IDC_MSMT_LEADCHNL_RA_IMPEDANCE_VALUE",
    "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE",
    "MDC_IDC_MSMT_LEADCHNL_LV_IMPEDANCE_VALUE",
)


def implant_status(body: ImplantBody, now: float) -> ImplantStatus:
    """What triage reads of a transmission: alerts *and* measurements.

    Measured values count as well as the device's alerts: an alert can be missed or
    disabled, and a later scheduled transmission no longer repeats an alert raised
    before while its battery still reads RRT.
    """
    names = {x.value for x in ImplantAlertName}
    values: dict[str, float | str] = {str(o.term): o.value for o in body.observations}
    battery = values.get("MDC_IDC_MSMT_BATTERY_STATUS")
    pacing = tuple(float(v) for t in _PACING if isinstance(v := values.get(t), int | float))
    hv = values.get("MDC_IDC_MSMT_LEADHVCHNL_IMPEDANCE")
    day_ago = now - 86400.0
    vt_vf = [e for e in body.episodes if e.type in ("VT", "VF") and e.time.timestamp() >= day_ago]
    atp = sum(1 for e in body.episodes if e.therapy in ("atp", "atp_shock"))
    latest = max((e.time.timestamp() for e in vt_vf), default=None)
    return ImplantStatus(
        alerts=frozenset(ImplantAlertName(a.code) for a in body.alerts if a.code in names),
        battery=_BATTERY.get(str(battery)) if battery is not None else None,
        pacing_impedance_ohm=pacing,
        high_voltage_impedance_ohm=(float(hv),) if isinstance(hv, int | float) else (),
        vt_vf_episodes_24h=len(vt_vf),
        shocks_24h=sum(e.shocks for e in vt_vf),
        atp_24h=atp,
        last_vt_vf_age_s=None if latest is None else max(0.0, now - latest),
    )


def resident_id(site: str, ref: str) -> str:
    return f"{site}/{ref}"


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class CaseBook:
    """Open cases and monitored residents (see the module docstring).

    Args:
        store: the records store.
        centre: the SAMU id (``samu075``): case ids are ``fr.health.<centre>.DRFR15…``.
        policy: the triage policy (the shipped one by default).
        freshness_s: the installation's freshness window (the policy's when None).
        deescalate_after_s: a suggestion lowers only once the lower one held this long;
            escalation is immediate. Noisy bedside readings otherwise make a priority
            flap between two levels every few seconds, and a board that flaps teaches
            people to ignore it.
        smoothing_s: device streams enter triage as their median over this window
            (see ``_Param``); values a nurse typed enter as they are.
    """

    def __init__(
        self,
        store: Store,
        *,
        centre: str = "samu075",
        policy: Policy | None = None,
        freshness_s: float | None = None,
        deescalate_after_s: float = 120.0,
        smoothing_s: float = 60.0,
    ) -> None:
        self._store = store
        self.smoothing_s = smoothing_s
        self.deescalate_after_s = deescalate_after_s
        self.centre = centre
        self.policy = policy or default_policy()
        self.freshness_s = freshness_s
        self._ids = CaseIdMaker(centre)
        #: case id → sources already recorded (what _add_source would read back).
        self._sources: dict[str, frozenset[str]] = {}
        self._residents: dict[str, _Resident] = {}
        self._order: list[_Resident] = []
        self._history = News2History(64)

    # ------------------------------------------------------------------ residents

    def _resident(self, conn: sqlite3.Connection, site: str, ref: str, now: float) -> _Resident:
        rid = resident_id(site, ref)
        found = self._residents.get(rid)
        if found is not None:
            return found
        conn.execute(
            "INSERT OR IGNORE INTO residents (resident_id, site, ref, first_seen)"
            " VALUES (?, ?, ?, ?)",
            (rid, site, ref, iso(now)),
        )
        return self._add_resident(rid, site)

    def _add_resident(self, rid: str, site: str) -> _Resident:
        res = _Resident(rid, site, row=len(self._order))
        self._residents[rid] = res
        self._order.append(res)
        if len(self._order) > self._history.capacity:
            self._history.grow(max(2 * self._history.capacity, len(self._order)))
        return res

    # ------------------------------------------------------------------ cases

    def _still_open(self, conn: sqlite3.Connection, res: _Resident) -> str | None:
        """The resident's case if it is still open in the database, else None (and the
        resident is released from it).

        A case finishes outside the book — its compte rendu signed, validated or closed
        through the service or ``samu records``, possibly in another process — and
        what arrives afterwards must open a new case, never land on a finished one
        (which is off the board: its alarms would reach nobody). Read on the rare
        paths only (a bilan, an implant alert, a recorded triage result); the tick
        catches up with the rest (:meth:`sync_cases`).
        """
        if res.case_id is None:
            return None
        row = conn.execute("SELECT status FROM cases WHERE case_id = ?", (res.case_id,)).fetchone()
        if row is not None and row[0] in OPEN_STATUSES:
            return res.case_id
        self._release(res)
        return None

    def _release(self, res: _Resident) -> None:
        assert res.case_id is not None
        self._sources.pop(res.case_id, None)
        res.case_id = None

    def _open_case(
        self, conn: sqlite3.Connection, res: _Resident, source: str, now: float, by: str
    ) -> tuple[str, bool]:
        """The resident's open case, or a new one; returns (case id, opened now)."""
        if res.case_id is None or self._still_open(conn, res) is None:
            # Opened by hand since (a call: console.cases._lifecycle)? Join it.
            res.case_id = open_case_of(conn, res.resident_id)
        if res.case_id is not None:
            self._add_source(conn, res.case_id, source, now)
            return res.case_id, False
        case_id = self._ids.next(conn, now)
        conn.execute(
            "INSERT INTO cases (case_id, centre, site, status, opened_at, opened_ts, updated_at,"
            " opened_by, sources) VALUES (?, ?, ?, 'ACTIF', ?, ?, ?, ?, ?)",
            (case_id, self.centre, res.site, iso(now), now, iso(now), by, _dumps([source])),
        )
        conn.execute(
            "INSERT INTO case_residents (case_id, resident_id) VALUES (?, ?)",
            (case_id, res.resident_id),
        )
        self._timeline(conn, case_id, now, "opened", {"source": source, "by": by})
        res.case_id = case_id
        return case_id, True

    def _add_source(self, conn: sqlite3.Connection, case_id: str, source: str, now: float) -> None:
        known = self._sources.get(case_id)
        if known is not None and source in known:
            return  # every vitals message of an open case lands here: no read per message
        (text,) = conn.execute("SELECT sources FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        sources = json.loads(text)
        self._sources[case_id] = frozenset(sources) | {source}
        if source not in sources:
            sources = [s for s in SOURCES if s in {*sources, source}]
            conn.execute(
                "UPDATE cases SET sources = ?, updated_at = ? WHERE case_id = ?"
                " AND status IN ('PROGRAM', 'ACTIF')",
                (_dumps(sources), iso(now), case_id),
            )

    def _timeline(
        self, conn: sqlite3.Connection, case_id: str, now: float, kind: str, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO case_timeline (case_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            (case_id, iso(now), kind, _dumps(detail)),
        )

    # ------------------------------------------------------------------ ingest → cases

    def apply(self, accepted: Iterable[Accepted], now: float) -> list[CaseEvent]:
        """Take what ingest committed: latest values, bilans, implant transmissions."""
        events: list[CaseEvent] = []
        with self._store.transaction() as conn:
            for a in accepted:
                if isinstance(a.body, VideoBody):
                    events += self._video(conn, a, a.body, now)
                    continue
                if a.resident is None:
                    continue
                res = self._resident(conn, a.site, a.resident, now)
                for o in a.observations:
                    param = PARAMETER_OF_CODE.get(o.code)
                    if param is None:
                        continue
                    value: float | str | None = o.coded if o.coded is not None else o.value
                    if value is None:
                        continue
                    res.params.setdefault(param, _Param()).add(
                        _Latest(value, o.observed_ts, o.obs_id),
                        o.method == "manual",
                        self.smoothing_s,
                    )
                body = a.body
                if isinstance(body, BilanBody):
                    events += self._bilan(conn, res, a, body, now)
                elif isinstance(body, ImplantBody):
                    events += self._implant(conn, res, a, body, now)
                elif isinstance(body, VideoBody):
                    continue  # video events name no resident: handled below
                elif a.observations and res.case_id is not None:
                    self._add_source(conn, res.case_id, "vitals", now)
        return events

    def _bilan(
        self, conn: sqlite3.Connection, res: _Resident, a: Accepted, body: BilanBody, now: float
    ) -> list[CaseEvent]:
        f = body.flags
        res.bilan_flags = bilan_flags(
            fall=f.fall,
            chest_pain=f.chest_pain,
            fast_positive=bool(f.fast and f.fast.positive),
            new_confusion=f.new_confusion,
            cardiac_arrest=f.cardiac_arrest,
            pain=f.pain,
        )
        if body.on_oxygen is not None:  # NEWS2's "air or oxygen", from the nurse
            res.params.setdefault("oxygen", _Param()).add(
                _Latest(body.on_oxygen, a.received_ts, None), True, self.smoothing_s
            )
        if body.dlu is not None and body.dlu.hypercapnic_respiratory_failure:
            res.spo2_scale = 2  # set for this resident by their DLU: never inferred
        conn.execute(
            "UPDATE residents SET bilan_flags = ?, bilan_at = ?, spo2_scale = ?"
            " WHERE resident_id = ?",
            (res.bilan_flags, now, res.spo2_scale, res.resident_id),
        )
        case_id, opened = self._open_case(conn, res, "bilan", now, f"bilan:{a.device}")
        flags = [
            name
            for name in ("fall", "chest_pain", "new_confusion", "cardiac_arrest")
            if getattr(f, name)
        ]
        if f.fast is not None and f.fast.positive:
            flags.append("fast_positive")
        if f.pain:
            flags.append(f"pain:{f.pain}")
        detail = {"message": a.msg_id, "flags": flags, "observations": len(a.observations)}
        self._timeline(conn, case_id, now, "bilan", detail)
        events = [CaseEvent("case_opened", case_id, res.resident_id, now, {"source": "bilan"})]
        return events if opened else []

    def _implant(
        self, conn: sqlite3.Connection, res: _Resident, a: Accepted, body: ImplantBody, now: float
    ) -> list[CaseEvent]:
        codes = tuple(sorted({al.code for al in body.alerts}))
        severity = implant_severity(implant_status(body, now), self.policy)
        res.implant_bits = severity.bits
        res.implant_alerts = codes
        conn.execute(
            "UPDATE residents SET implant_bits = ?, implant_alerts = ?, implant_at = ?"
            " WHERE resident_id = ?",
            (res.implant_bits, _dumps(list(codes)), now, res.resident_id),
        )
        if not codes:
            return []
        case_id, opened = self._open_case(conn, res, "implant", now, f"implant:{a.device}")
        conn.execute(
            "UPDATE cases SET implant_alerts = ?, updated_at = ? WHERE case_id = ?",
            (_dumps(list(codes)), iso(now), case_id),
        )
        self._timeline(
            conn,
            case_id,
            now,
            "implant_alert",
            {"message": a.msg_id, "device": a.device, "alerts": list(codes)},
        )
        events = [
            CaseEvent("implant_alert", case_id, res.resident_id, now, {"alerts": list(codes)})
        ]
        if opened:
            events.insert(
                0, CaseEvent("case_opened", case_id, res.resident_id, now, {"source": "implant"})
            )
        return events

    def _video(
        self, conn: sqlite3.Connection, a: Accepted, body: VideoBody, now: float
    ) -> list[CaseEvent]:
        """A video-link event: kept per session; on the case's timeline when the link
        was sent for one of ours (the console sends links with its case id)."""
        consent = body.consent
        loss = body.quality.loss_pct if body.quality is not None else None
        conn.execute(
            "INSERT INTO video_events (session, case_ref, msg_id, event, at, consent_by,"
            " relation, how, loss_pct, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body.session,
                body.case,
                a.msg_id,
                body.event,
                body.time.isoformat(),
                consent.by if consent else None,
                consent.relation if consent else None,
                consent.how if consent else None,
                loss,
                f"gateway:{a.device}",
            ),
        )
        detail: dict[str, Any] = {"session": body.session, "event": body.event}
        if consent is not None:
            detail.update(by=consent.by, relation=consent.relation, how=consent.how)
        if loss is not None:
            detail["loss_pct"] = loss
        if body.event == "stream_quality" and (loss is None or loss < DEGRADED_LOSS_PCT):
            return []  # kept in video_events; not worth a line on the timeline
        known = conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (body.case,)).fetchone()
        case_id = body.case if known else None
        if case_id is not None:
            self._timeline(conn, case_id, now, "video", detail)
            self._add_source(conn, case_id, "video", now)
        return [CaseEvent("video", case_id, None, now, detail)]

    # ------------------------------------------------------------------ the tick

    def _inputs(self, residents: Sequence[_Resident]) -> tuple[TriageInputs, list[list[_Param]]]:
        """The triage arrays of ``residents``, and per resident the parameters that
        gave a value (their observation ids are read only for results recorded)."""
        n = len(residents)
        values: dict[str, list[Any]] = {
            p: [None] * n for p in (*_NUMERIC, "consciousness", "oxygen")
        }
        at = np.full((len(TRIAGE_PARAMETERS), n), np.nan)
        used: list[list[_Param]] = [[] for _ in range(n)]
        scale = np.ones(n, np.uint8)
        row_of = {p: k for k, p in enumerate(TRIAGE_PARAMETERS)}
        for i, res in enumerate(residents):
            scale[i] = res.spo2_scale
            for param, p in res.params.items():
                got = p.value()
                if got is None:
                    continue
                value, ts, _ = got
                values[param][i] = value
                k = row_of.get(param)
                if k is not None:
                    at[k, i] = ts
                used[i].append(p)
        vitals = VitalsArrays.from_values(
            resp_rate=np.array([np.nan if v is None else v for v in values["resp_rate"]], float),
            spo2=np.array([np.nan if v is None else v for v in values["spo2"]], float),
            on_oxygen=np.array(
                [np.nan if v is None else float(bool(v)) for v in values["oxygen"]], float
            ),
            systolic_bp=np.array(
                [np.nan if v is None else v for v in values["systolic_bp"]], float
            ),
            heart_rate=np.array([np.nan if v is None else v for v in values["heart_rate"]], float),
            consciousness=values["consciousness"],
            temperature=np.array(
                [np.nan if v is None else v for v in values["temperature"]], float
            ),
            spo2_scale=scale,
        )
        inputs = TriageInputs(
            vitals=vitals,
            observed_at=at,
            implant=np.array([r.implant_bits for r in residents], np.uint16),
            bilan=np.array([r.bilan_flags for r in residents], np.uint8),
        )
        return inputs, used

    def tick(self, now: float) -> list[CaseEvent]:
        """Score every monitored resident at once; open, update and log what changed."""
        self.sync_cases()
        return self._score(self._order, np.arange(len(self._order)), now)

    def sync_cases(self) -> None:
        """Catch up with cases changed outside the book: a case finished (its compte rendu
        signed, validated, closed) releases its residents, and a case opened by hand
        (a call) is joined, so the next results land on the right case. One indexed
        query over the open cases (``cases_status``), once a tick."""
        open_now = dict(
            self._store.fetchall(
                "SELECT r.resident_id, c.case_id FROM cases c JOIN case_residents r"
                " ON r.case_id = c.case_id WHERE c.status IN ('PROGRAM', 'ACTIF')"
                " ORDER BY c.opened_ts"
            )
        )
        for res in self._order:
            if res.case_id is not None and open_now.get(res.resident_id) != res.case_id:
                self._release(res)
        for rid, case_id in open_now.items():
            known = self._residents.get(rid)
            if known is None:  # a call about a resident not monitored yet
                (site,) = self._store.fetchone(
                    "SELECT site FROM residents WHERE resident_id = ?", (rid,)
                ) or (rid.split("/", 1)[0],)
                known = self._add_resident(rid, str(site))
            if known.case_id is None:
                known.case_id = case_id

    def triage_residents(self, rids: Iterable[str], now: float) -> list[CaseEvent]:
        """Score only the residents ``rids`` (those a committed batch just touched), now.

        The same scoring and hold as :meth:`tick`, restricted to those rows, so a value
        crossing into P1/P0 reaches the board right after the batch that carried it was
        committed instead of at the next tick (up to ``tick_s`` later). Only rises are
        recorded here (see :meth:`_score`); each rise is its own result and its own
        ``priority_changed`` event, as on the tick. The tick still scores everyone every
        period: that is what records the other changes, ages values out of the
        freshness window and lowers a held priority, none of which a message triggers.
        The NEWS2 history is kept per minute (lowest and highest), so extra samples
        inside a minute change nothing. Unknown ids are ignored; rows are scored in the
        board's order (first seen first).
        """
        wanted = {self._residents[r].row for r in set(rids) if r in self._residents}
        if not wanted:
            return []
        rows = np.array(sorted(wanted), dtype=np.intp)
        return self._score([self._order[i] for i in rows.tolist()], rows, now, rises_only=True)

    def _score(
        self,
        residents: Sequence[_Resident],
        rows: np.ndarray,
        now: float,
        *,
        rises_only: bool = False,
    ) -> list[CaseEvent]:
        """Score ``residents`` (their history rows ``rows``) and record what changed.

        ``rises_only`` (after a batch): record a resident's result only when its
        priority rises (or it is the resident's first); every other change — a NEWS2
        point up or down at the same priority, a lowering under its hold — is left to
        the tick, which records it within ``tick_s``. A busy bedside stream changes its
        NEWS2 by a point every few messages: recorded after every batch, that would be
        several results a second per resident where the tick writes one.
        """
        if not residents:
            return []
        inputs, used = self._inputs(residents)
        result = triage(
            inputs,
            self.policy,
            now=now,
            history=_RowView(self._history, rows),  # type: ignore[arg-type]
            freshness_s=self.freshness_s,
        )
        names = result.priority_names()
        news2 = result.vitals.news2.tolist()
        complete = result.vitals.complete.tolist()
        qsofa = result.vitals.qsofa.tolist()
        # No fresh vital sign at all: NEWS2 and qSOFA are unknown, not 0.
        no_vitals = (result.scored.missing_mask() == ALL_PRESENT).tolist()
        events: list[CaseEvent] = []
        with self._store.transaction() as conn:
            for i, res in enumerate(residents):
                has_score = names[i] != "NR" and not no_vitals[i]
                suggestion = _Suggestion(
                    names[i],
                    int(news2[i]) if has_score else None,
                    bool(complete[i]),
                    int(qsofa[i]) if has_score else None,
                    (),
                )
                last = res.last
                held = False
                if last is not None and _RANK[suggestion.priority] > _RANK[last.priority]:
                    if res.lower_since is None:
                        res.lower_since = now
                    if now - res.lower_since < self.deescalate_after_s:
                        held = True
                        suggestion.priority = last.priority
                else:
                    res.lower_since = None
                if last is not None and (
                    last.priority,
                    last.news2,
                    last.complete,
                    last.qsofa,
                ) == (suggestion.priority, suggestion.news2, suggestion.complete, suggestion.qsofa):
                    continue
                if last is None and suggestion.priority == "NR" and res.case_id is None:
                    res.last = suggestion
                    continue
                if (
                    rises_only
                    and last is not None
                    and _RANK[suggestion.priority] >= _RANK[last.priority]
                ):
                    continue
                reasons = result.reasons(i)
                if held:
                    reasons.append(
                        f"held at {suggestion.priority}: {names[i]} not yet stable for "
                        f"{self.deescalate_after_s:g} s"
                    )
                suggestion.reasons = tuple(reasons)
                ids = [o for p in used[i] for o in p.ids()]
                events += self._record(conn, res, suggestion, ids, now)
        return events

    def _record(
        self,
        conn: sqlite3.Connection,
        res: _Resident,
        s: _Suggestion,
        used: Sequence[int | None],
        now: float,
    ) -> list[CaseEvent]:
        events: list[CaseEvent] = []
        before = res.last.priority if res.last is not None else "NR"
        res.last = s
        self._still_open(conn, res)
        # Vitals open a case when the suggestion *becomes* P0/P1 (cases.md): a rise into
        # or within them. A resident still P1 when the physician ended the régulation
        # does not reopen one at every point of NEWS2; a further rise does.
        rises = s.priority in ("P0", "P1") and _RANK[s.priority] < _RANK[before]
        if res.case_id is None and rises:
            case_id, opened = self._open_case(conn, res, "vitals", now, "triage")
            if opened:  # else joined: a case opened by hand since the last tick
                events.append(
                    CaseEvent("case_opened", case_id, res.resident_id, now, {"source": "vitals"})
                )
        cur = conn.execute(
            "INSERT INTO triage_results (resident_id, case_id, at, priority, news2,"
            " news2_complete, qsofa, reasons, policy_version, policy_sha256, observations)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                res.resident_id,
                res.case_id,
                iso(now),
                s.priority,
                s.news2,
                int(s.complete),
                s.qsofa,
                _dumps(list(s.reasons)),
                self.policy.version,
                self.policy.sha256,
                _dumps(sorted(o for o in used if o is not None)),
            ),
        )
        if res.case_id is None:
            return events
        conn.execute(
            "UPDATE cases SET suggested_priority = ?, news2 = ?, news2_complete = ?, qsofa = ?,"
            " reasons = ?, last_result = ?, updated_at = ? WHERE case_id = ?",
            (
                s.priority,
                s.news2,
                int(s.complete),
                s.qsofa,
                _dumps(list(s.reasons)),
                cur.lastrowid,
                iso(now),
                res.case_id,
            ),
        )
        detail = {
            "result": cur.lastrowid,
            "priority": s.priority,
            "news2": s.news2,
            "qsofa": s.qsofa,
            "reasons": list(s.reasons),
        }
        self._timeline(conn, res.case_id, now, "triage", detail)
        if s.priority != before:
            change = {"from": before, "to": s.priority, "reasons": list(s.reasons)}
            self._timeline(conn, res.case_id, now, "priority_changed", change)
            events.append(CaseEvent("priority_changed", res.case_id, res.resident_id, now, change))
        return events

    # ------------------------------------------------------------------ restart

    def restore(self, now: float) -> None:
        """Rebuild the in-memory state after a restart: residents, open cases, the
        latest observations inside the freshness window, bilan and implant state."""
        self._residents.clear()
        self._order.clear()
        self._sources.clear()
        # The NEWS2 history is kept by row; rows are renumbered below, and a failed batch
        # may have written into it already: start it afresh, as a restart does, rather
        # than give one resident another's (or a rolled-back) past.
        self._history = News2History(max(64, self._history.capacity))
        window = (
            self.freshness_s if self.freshness_s is not None else self.policy.freshness.window_s
        )
        for rid, site, scale, bflags, ibits, ialerts in self._store.fetchall(
            "SELECT resident_id, site, spo2_scale, bilan_flags, implant_bits, implant_alerts"
            " FROM residents ORDER BY rowid"
        ):
            res = self._add_resident(rid, site)
            res.spo2_scale, res.bilan_flags, res.implant_bits = int(scale), int(bflags), int(ibits)
            res.implant_alerts = tuple(json.loads(ialerts))
        for case_id, rid in self._store.fetchall(
            "SELECT c.case_id, r.resident_id FROM cases c JOIN case_residents r"
            " ON r.case_id = c.case_id WHERE c.status IN ('PROGRAM', 'ACTIF')"
            " ORDER BY c.opened_ts"
        ):
            if rid in self._residents:
                self._residents[rid].case_id = case_id
        for rid, priority, news2, complete, qsofa, reasons in self._store.fetchall(
            "SELECT resident_id, priority, news2, news2_complete, qsofa, reasons"
            " FROM triage_results WHERE result_id IN"
            " (SELECT max(result_id) FROM triage_results GROUP BY resident_id)"
        ):
            if rid in self._residents:
                self._residents[rid].last = _Suggestion(
                    priority, news2, bool(complete), qsofa, tuple(json.loads(reasons))
                )
        for obs_id, site, ref, code, value, coded, ts, method in self._store.fetchall(
            "SELECT obs_id, site, resident, code, value, coded, observed_ts, method"
            " FROM observations"
            " WHERE observed_ts >= ? AND resident IS NOT NULL ORDER BY observed_ts, obs_id",
            (now - window,),
        ):
            known = self._residents.get(resident_id(site, ref))
            param = PARAMETER_OF_CODE.get(code)
            if known is None or param is None:
                continue
            v = coded if coded is not None else value
            if v is not None:
                sample = _Latest(v, float(ts), int(obs_id))
                known.params.setdefault(param, _Param()).add(
                    sample, method == "manual", self.smoothing_s
                )

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> dict[str, ResidentView]:
        """Every monitored resident's latest suggestion and open case (no I/O)."""
        return {r.resident_id: _view(r) for r in self._order}

    def view(self, rid: str) -> ResidentView | None:
        """One resident's :meth:`snapshot` entry (None when not monitored): what a
        follower of a few residents reads each tick without copying the whole board."""
        r = self._residents.get(rid)
        return None if r is None else _view(r)

    def add_timeline(self, case_id: str, now: float, kind: str, detail: dict[str, Any]) -> None:
        """One timeline event on a case (an incident, a video event) in its own commit."""
        with self._store.transaction() as conn:
            self._timeline(conn, case_id, now, kind, detail)

    def open_cases(self) -> dict[str, str]:
        """resident id → open case id."""
        return {r.resident_id: r.case_id for r in self._order if r.case_id is not None}


def open_case_of(conn: sqlite3.Connection, rid: str) -> str | None:
    """The resident's open case in the database, if any (the newest)."""
    row = conn.execute(
        "SELECT c.case_id FROM cases c JOIN case_residents r ON r.case_id = c.case_id"
        " WHERE r.resident_id = ? AND c.status IN ('PROGRAM', 'ACTIF')"
        " ORDER BY c.opened_ts DESC LIMIT 1",
        (rid,),
    ).fetchone()
    return None if row is None else str(row[0])


def _view(r: _Resident) -> ResidentView:
    s = r.last
    return ResidentView(
        r.resident_id,
        r.site,
        s.priority if s else "NR",
        s.news2 if s else None,
        s.complete if s else False,
        s.qsofa if s else None,
        s.reasons if s else (),
        r.case_id,
        r.implant_alerts,
    )


class _RowView:
    """``News2History`` restricted to the first ``len(rows)`` rows, grown as residents come."""

    def __init__(self, history: News2History, rows: np.ndarray) -> None:
        self._h = history
        self._rows = rows

    def rise(self, now: float, current: np.ndarray) -> np.ndarray:
        return self._h.rise(now, current, self._rows)

    def record(self, now: float, news2: np.ndarray) -> None:
        self._h.record(now, news2, self._rows)
