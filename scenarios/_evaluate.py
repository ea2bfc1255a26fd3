"""Checking a replay's expectations and writing the report (scenarios.md, a contract).

Each expectation is judged against what the core concluded at each step of the replay
(suggested priority, NEWS2, qSOFA per patient; the events: cases opened, implant alerts,
video, quarantine, incidents) and against the store at the end (``no_loss``,
``audit_verifies``). A met expectation says when (simulated seconds) and the margin to
its deadline; a missed one says the last state seen. ``store_sha256`` digests the stored
observations and decisions without ids or wall-clock times, so equal seeds give equal
digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from console.records import Store, verify_trail
from scenarios._expect import PRIORITIES
from scenarios._model import Expectation
from scenarios._replay import ReplayResult

_RANK = {p: i for i, p in enumerate(PRIORITIES)}


@dataclass
class Verdict:
    index: int
    expect: Expectation
    met: bool
    at: float | None = None
    margin_s: float | None = None
    detail: str = ""

    def as_dict(self, scenario: str) -> dict[str, Any]:
        return {
            "scenario": scenario,
            "index": self.index,
            "id": self.expect.id,
            "what": self.expect.what,
            "met": self.met,
            "at": None if self.at is None else round(self.at, 3),
            "margin_s": None if self.margin_s is None else round(self.margin_s, 3),
            "detail": self.detail,
        }


@dataclass
class ScenarioReport:
    scenario: str
    seed: int
    verdicts: list[Verdict] = field(default_factory=list)
    store_sha256: str = ""

    @property
    def met(self) -> int:
        return sum(1 for v in self.verdicts if v.met)

    @property
    def missed(self) -> int:
        return len(self.verdicts) - self.met

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "expectations": len(self.verdicts),
            "met": self.met,
            "missed": self.missed,
            "seed": self.seed,
            "store_sha256": self.store_sha256,
        }


def _deadline(e: Expectation, duration: float) -> tuple[float, float]:
    start = float(e.after or 0.0)
    end = start + float(e.within) if e.within is not None else duration
    return start, min(end, duration)


def _window(e: Expectation, duration: float) -> tuple[float, float]:
    if e.window is None:
        return 0.0, duration
    return float(e.window[0]), min(float(e.window[1]), duration)


def _met(index: int, e: Expectation, at: float, end: float, detail: str) -> Verdict:
    return Verdict(index, e, True, at, end - at, detail)


def _first_event(
    result: ReplayResult, start: float, end: float, match: Any
) -> tuple[float, Any] | None:
    for step in result.steps:
        if step.t < start or step.t > end:
            continue
        for event in step.events:
            if match(event):
                return step.t, event
    return None


def evaluate(result: ReplayResult, store: Store, db_path: Any) -> ScenarioReport:
    """Judge every expectation of ``result``'s scenario (see the module docstring)."""
    sc = result.scenario
    head = sc.scenario
    duration = float(head.duration)
    implants = {imp.id: imp.patient for imp in sc.implants}
    report = ScenarioReport(head.name, int(head.seed))
    for i, e in enumerate(sc.expect):
        report.verdicts.append(
            _judge(
                i,
                e,
                result=result,
                store=store,
                db_path=db_path,
                duration=duration,
                site=sc.patient_site,
                implants=implants,
            )
        )
    report.store_sha256 = store_digest(store)
    return report


def _judge(
    i: int,
    e: Expectation,
    *,
    result: ReplayResult,
    store: Store,
    db_path: Any,
    duration: float,
    site: Callable[[str], str],
    implants: dict[str, str],
) -> Verdict:
    extra = e.model_extra or {}
    what = e.what
    if what in ("priority", "news2_at_least", "qsofa"):
        start, end = _deadline(e, duration)
        last = None
        for step in result.steps:
            state = step.patients.get(str(e.patient))
            if state is None or step.t < start:
                continue
            if step.t > end:
                break
            last = state
            if what == "priority" and _RANK[state.priority] <= _RANK[str(e.value)]:
                return _met(i, e, step.t, end, f"{e.patient} suggested {state.priority}")
            if what == "news2_at_least" and state.news2 is not None and state.news2 >= int(e.value):  # type: ignore[arg-type]
                return _met(i, e, step.t, end, f"{e.patient} NEWS2 {state.news2}")
            if what == "qsofa" and state.qsofa is not None and state.qsofa >= int(e.value):  # type: ignore[arg-type]
                return _met(i, e, step.t, end, f"{e.patient} qSOFA {state.qsofa}")
        seen = (
            "nothing"
            if last is None
            else (f"priority {last.priority}, NEWS2 {last.news2}, qSOFA {last.qsofa}")
        )
        return Verdict(i, e, False, detail=f"{e.patient}: not reached by {end:g} s (last: {seen})")
    if what == "max_priority":
        start, end = _window(e, duration)
        for step in result.steps:
            if step.t < start or step.t > end:
                continue
            for pid, state in step.patients.items():
                if e.patient is not None and pid != e.patient:
                    continue
                if _RANK[state.priority] < _RANK[str(e.value)]:
                    return Verdict(
                        i, e, False, step.t, None,
                        f"{pid} suggested {state.priority} at {step.t:g} s (at most {e.value})",
                    )  # fmt: skip
        return Verdict(i, e, True, None, None, f"never above {e.value} in [{start:g}, {end:g}] s")
    if what in ("case_opened", "no_case"):
        resident = f"{site(e.patient)}/{e.patient}" if e.patient else None
        source = extra.get("source")
        start, end = _deadline(e, duration) if what == "case_opened" else _window(e, duration)

        def opened(ev: Any) -> bool:
            return (
                ev.event == "case_opened"
                and (resident is None or ev.resident_id == resident)
                and (source is None or ev.detail.get("source") == source)
            )

        hit = _first_event(result, start, end, opened)
        if what == "case_opened":
            if hit is None:
                return Verdict(i, e, False, detail=f"no case opened for {e.patient} by {end:g} s")
            return _met(i, e, hit[0], end, f"{hit[1].case_id} from {hit[1].detail.get('source')}")
        if hit is not None:
            return Verdict(i, e, False, hit[0], None, f"{hit[1].case_id} opened at {hit[0]:g} s")
        return Verdict(i, e, True, None, None, f"no case in [{start:g}, {end:g}] s")
    if what == "implant_alert":
        start, end = _deadline(e, duration)
        patient = implants.get(str(e.device))
        resident = f"{site(patient)}/{patient}" if patient else None
        code = extra.get("code")
        hit = _first_event(
            result, start, end,
            lambda ev: ev.event == "implant_alert" and ev.resident_id == resident
            and code in ev.detail.get("alerts", ()),
        )  # fmt: skip
        if hit is None:
            return Verdict(i, e, False, detail=f"no {code} alert from {e.device} by {end:g} s")
        return _met(i, e, hit[0], end, f"{code} on {hit[1].case_id}")
    if what in ("consent", "stream_ended"):
        start, end = _deadline(e, duration)
        wanted = "stream_ended" if what == "stream_ended" else f"consent_{e.value}"
        hit = _first_event(
            result, start, end,
            lambda ev: ev.event == "video" and ev.detail.get("session") == e.session
            and ev.detail.get("event") == wanted,
        )  # fmt: skip
        if hit is None:
            return Verdict(i, e, False, detail=f"session {e.session}: no {wanted} by {end:g} s")
        return _met(i, e, hit[0], end, f"session {e.session}: {wanted}")
    if what == "quarantined":
        start, end = _deadline(e, duration)
        wanted_count = int(extra.get("count") or 1)
        count = 0
        for step in result.steps:
            if step.t < start or step.t > end:
                continue
            for ev in step.events:
                if (
                    ev.event == "quarantined"
                    and ev.detail.get("reason") == e.reason
                    and (e.device is None or ev.detail.get("device") == e.device)
                ):
                    count += 1
                    if count >= wanted_count:
                        return _met(i, e, step.t, end, f"{count} quarantined as {e.reason}")
        missing = f"{count} quarantined as {e.reason} by {end:g} s, {wanted_count} expected"
        return Verdict(i, e, False, detail=missing)
    if what == "incident":
        start, end = _deadline(e, duration)
        kind = extra.get("kind")
        hit = _first_event(
            result, start, end,
            lambda ev: ev.event == "incident" and ev.detail.get("kind") == kind
            and (e.device is None or ev.detail.get("device") == e.device),
        )  # fmt: skip
        if hit is None:
            return Verdict(i, e, False, detail=f"no {kind} incident by {end:g} s")
        return _met(
            i, e, hit[0], end, f"{hit[1].detail.get('category')}: {hit[1].detail.get('title')}"
        )
    if what == "no_loss":
        stored = {r[0] for r in store.fetchall("SELECT envelope_id FROM ingest_messages")}
        expected = result.delivered - result.quarantined
        lost = expected - stored
        (dupes,) = store.fetchone(
            "SELECT count(*) FROM (SELECT msg_id, code FROM observations"
            " GROUP BY msg_id, code HAVING count(*) > 1)"
        )
        if lost or dupes:
            return Verdict(i, e, False, detail=f"{len(lost)} message(s) lost, {dupes} duplicated")
        return Verdict(i, e, True, duration, 0.0, f"{len(expected)} message(s) stored once each")
    if what == "audit_verifies":
        verdict = verify_trail(db_path)
        if verdict.status != "intact":
            return Verdict(i, e, False, detail=verdict.verdict())
        return Verdict(i, e, True, duration, 0.0, verdict.verdict())
    return Verdict(i, e, False, detail=f"unknown kind {what!r}")  # the loader refuses these


def store_digest(store: Store) -> str:
    """SHA-256 of the stored observations and decisions, without ids or wall times."""
    digest = hashlib.sha256()
    for row in store.fetchall(
        "SELECT o.site, o.resident, o.device, o.code, o.value, o.coded, o.unit, o.method,"
        " o.measured_at, o.observed_ts, o.clock_skew, m.kind, m.seq FROM observations o"
        " JOIN ingest_messages m ON m.msg_id = o.msg_id ORDER BY o.obs_id"
    ):
        digest.update(json.dumps(row, separators=(",", ":")).encode())
    for row in store.fetchall(
        "SELECT case_id, intention, author, priority, care_level, decision_type, resource,"
        " orientation, suggested_priority FROM decisions ORDER BY case_id, intention"
    ):
        digest.update(json.dumps(row, separators=(",", ":")).encode())
    return digest.hexdigest()


def junit(reports: list[ScenarioReport]) -> bytes:
    """One testcase per expectation (``--junit``)."""
    suites = ET.Element("testsuites")
    for r in reports:
        suite = ET.SubElement(
            suites, "testsuite", name=r.scenario, tests=str(len(r.verdicts)),
            failures=str(r.missed),
        )  # fmt: skip
        for v in r.verdicts:
            name = f"{v.index}:{v.expect.what}" + (f":{v.expect.id}" if v.expect.id else "")
            case = ET.SubElement(suite, "testcase", classname=r.scenario, name=name)
            if not v.met:
                ET.SubElement(case, "failure", message=v.detail).text = (
                    v.expect.description or v.detail
                )
            else:
                ET.SubElement(case, "system-out").text = v.detail
    data: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return data
