"""The score breakdown of a case's latest triage result: which value of each NEWS2
parameter was used and how many points it scored.

A triage result records the observation ids it rests on (provenance), its total, the
policy version and SHA-256. The breakdown is recomputed from exactly those observations
under that policy: a device parameter's value is the median of its samples in the
result (the smoothing window the core used), a nurse's value the one recorded. It is
only given when the policy loaded here has the result's SHA-256: points under another
policy would be a different triage. "Air or oxygen" is reported by the nurse in the
bilan, not as an observation, so its points are what the recorded total leaves.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace

import numpy as np

from console.cases._book import PARAMETER_OF_CODE
from console.records import Store
from console.triage import PARAMETER_LABELS, PARAMETERS, Policy, VitalsArrays, parameter_scores


@dataclass(frozen=True, slots=True)
class ParameterPoints:
    parameter: str
    label: str
    #: The value used, as shown (``"92"``, ``"C"``), or ``None`` when none was fresh.
    value: str | None
    points: int


@dataclass(frozen=True, slots=True)
class TriageBreakdown:
    at: str
    priority: str
    news2: int | None
    complete: bool
    qsofa: int | None
    reasons: tuple[str, ...]
    policy_version: str
    policy_sha256: str
    #: Per parameter in NEWS2's order, air/oxygen last; empty when the policy loaded is
    #: not the result's.
    parameters: tuple[ParameterPoints, ...]
    note: str | None = None


def triage_breakdown(store: Store, case_id: str, policy: Policy) -> TriageBreakdown | None:
    """The latest triage result of ``case_id``, broken down (``None``: no result yet)."""
    row = store.fetchone(
        "SELECT at, priority, news2, news2_complete, qsofa, reasons, policy_version,"
        " policy_sha256, observations, resident_id FROM triage_results"
        " WHERE case_id = ? ORDER BY result_id DESC LIMIT 1",
        (case_id,),
    )
    if row is None:
        return None
    at, priority, news2, complete, qsofa, reasons, version, sha, used, resident = row
    head = TriageBreakdown(
        at=at, priority=priority, news2=news2, complete=bool(complete), qsofa=qsofa,
        reasons=tuple(json.loads(reasons)), policy_version=str(version),
        policy_sha256=str(sha), parameters=(),
    )  # fmt: skip
    if sha != policy.sha256:
        return replace(head, note=f"policy {version} ({sha[:12]}…) is not the one loaded here")
    ids = [int(i) for i in json.loads(used)]
    samples: dict[str, list[float | str]] = {}
    if ids:
        marks = ",".join("?" * len(ids))
        for code, value, coded in store.fetchall(
            f"SELECT code, value, coded FROM observations WHERE obs_id IN ({marks})"  # noqa: S608
            " ORDER BY observed_ts, obs_id",
            ids,
        ):
            param = PARAMETER_OF_CODE.get(code)
            got = coded if coded is not None else value
            if param is not None and got is not None:
                samples.setdefault(param, []).append(got)
    scale_row = store.fetchone(
        "SELECT spo2_scale FROM residents WHERE resident_id = ?", (resident,)
    )
    values: dict[str, float | str | None] = {}
    for param, got in samples.items():
        if isinstance(got[-1], str):
            values[param] = got[-1]  # a coded value (ACVPU): the latest
        else:
            values[param] = statistics.median(float(v) for v in got)

    def num(param: str) -> np.ndarray:
        v = values.get(param)
        return np.array([np.nan if v is None else float(v)])

    consciousness = values.get("consciousness")
    vitals = VitalsArrays.from_values(
        resp_rate=num("resp_rate"), spo2=num("spo2"), on_oxygen=np.array([np.nan]),
        systolic_bp=num("systolic_bp"), heart_rate=num("heart_rate"),
        consciousness=[consciousness if isinstance(consciousness, str) else None],
        temperature=num("temperature"),
        spo2_scale=np.array([scale_row[0] if scale_row else 1]),
    )  # fmt: skip
    points = parameter_scores(vitals, policy)[:, 0].tolist()
    out = []
    for k, param in enumerate(PARAMETERS):
        if param == "oxygen":
            continue
        v = values.get(param)
        shown = None if v is None else (v if isinstance(v, str) else f"{v:g}")
        out.append(ParameterPoints(param, PARAMETER_LABELS[param], shown, int(points[k])))
    note = None
    if news2 is not None:
        rest = int(news2) - sum(p.points for p in out)
        if rest > 0:
            out.append(ParameterPoints("oxygen", PARAMETER_LABELS["oxygen"], "(bilan)", rest))
        elif rest < 0:
            note = "the values used no longer reproduce the recorded total"
    return replace(head, parameters=tuple(out), note=note)
