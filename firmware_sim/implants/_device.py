"""The implanted device: battery, leads, arrhythmia detection and therapy, alerts.

The implant watches the patient's rhythm (the same :class:`PatientModel` the bedside
devices read) once a second: a VT/VF window in the patient's course *is* an episode the
device detects, treats (ATP, shock) and stores; AF windows accumulate AT/AF burden.
Scenario events add what the physiology does not decide: the therapy and its result for
an episode, battery milestones (BOS → RRT → EOS), a lead impedance drifting or failing.

Alerts follow the manufacturers' remote-monitoring conventions listed in protocols.md:
battery RRT/EOS, lead impedance out of range (pacing 200–2000 Ω, high-voltage 20–200 Ω),
each VT/VF episode, ≥ 3 VT/VF in 24 h (electrical storm), shock delivered, shock
unsuccessful, therapies exhausted, AF burden over threshold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from firmware_sim.physiology import NoiseSource, PatientModel
from protocols.vocab import IdcTermName, lead_impedance_in_range

ImplantType = Literal["pacemaker", "icd", "crt-d", "crt-p"]

#: IEEE 11073-10103 device type codes (protocols.md §2).
TYPE_CODES: dict[str, int] = {"pacemaker": 753665, "icd": 753666, "crt-d": 753667, "crt-p": 753668}
#: Leads each type has (HV is the shock coil of defibrillators).
LEADS: dict[str, tuple[str, ...]] = {
    "pacemaker": ("RA", "RV"),
    "icd": ("RV", "HV"),
    "crt-d": ("RA", "RV", "LV", "HV"),
    "crt-p": ("RA", "RV", "LV"),
}
#: Typical chronic impedances (Ω).
BASE_IMPEDANCE = {"RA": 480.0, "RV": 560.0, "LV": 680.0, "HV": 58.0}
LEAD_TERMS: dict[str, IdcTermName] = {
    "RA": "MDC_IDC_MSMT_LEADCHNL_RA_IMPEDANCE_VALUE",
    "RV": "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE",
    "LV": "MDC_IDC_MSMT_LEADCHNL_LV_IMPEDANCE_VALUE",
    "HV": "MDC_IDC_MSMT_LEADHVCHNL_IMPEDANCE",
}
DAY_S = 86400.0


@dataclass
class Episode:
    """A stored arrhythmia episode (ImplantEpisode on the wire)."""

    id: str
    type: Literal["VT", "VF", "AT-AF"]
    start: float
    duration_s: float = 0.0
    therapy: Literal["none", "atp", "shock", "atp_shock"] = "none"
    shocks: int = 0
    result: Literal["spontaneous", "terminated_by_therapy", "therapy_unsuccessful", "ongoing"] = (
        "ongoing"
    )


@dataclass
class Alert:
    """An alert raised by the implant (ImplantAlert on the wire)."""

    code: str
    t: float
    lead: str | None = None
    ohms: float | None = None
    episodes_24h: int | None = None
    af_burden_pct: float | None = None
    detail: str | None = None


@dataclass
class EpisodePlan:
    """What a scenario says about an episode starting near ``at``."""

    at: float
    kind: Literal["VT", "VF", "AT-AF"]
    duration_s: float
    therapy: Literal["none", "atp", "shock"] | None
    success: bool


@dataclass
class LeadChange:
    lead: str
    start: float
    to_ohm: float
    over_s: float


@dataclass
class ImplantState:
    """Everything the device would report at an interrogation."""

    battery_status: str = "BOS"
    longevity_months: float = 96.0
    rrt_trigger: str | None = None
    impedances: dict[str, float] = field(default_factory=dict)
    shocks_recent: int = 0
    atp_recent: int = 0
    af_seconds: deque[tuple[float, float]] = field(default_factory=deque)


class Implant:
    """One implant on one patient.

    Args:
        implant_id: id (topic level of its transmitter, key name).
        type: pacemaker, icd, crt-d, crt-p.
        patient: the patient model whose rhythm it watches.
        noise: random stream (impedance drift).
        longevity_years: battery longevity at implant (MOS below 60 %, RRT at 3 months).
        af_burden_threshold_pct: AF burden over 24 h that raises an alert.
    """

    def __init__(
        self,
        implant_id: str,
        type: ImplantType,
        patient: PatientModel,
        noise: NoiseSource,
        *,
        model: str | None = None,
        serial: str | None = None,
        longevity_years: float = 8.0,
        af_burden_threshold_pct: float = 6.0,
    ) -> None:
        self.implant_id = implant_id
        self.type = type
        self.type_code = TYPE_CODES[type]
        self.model = (
            model
            or {
                "pacemaker": "SIM-PM DR 100",
                "icd": "SIM-ICD VR 200",
                "crt-d": "SIM-CRT-D 300",
                "crt-p": "SIM-CRT-P 300",
            }[type]
        )
        self.serial = serial or implant_id.upper().replace("-", "")[:16]
        self.patient = patient
        self._noise = noise
        self.can_shock = type in ("icd", "crt-d")
        self.af_threshold_pct = af_burden_threshold_pct
        self.state = ImplantState(longevity_months=longevity_years * 12.0)
        self.state.impedances = {lead: BASE_IMPEDANCE[lead] for lead in LEADS[type]}
        self._initial_longevity = longevity_years * 12.0
        self.episodes: list[Episode] = []
        self.alerts: list[Alert] = []
        self._pending_alerts: list[Alert] = []
        self._plans: list[EpisodePlan] = []
        self._lead_changes: list[LeadChange] = []
        self._out_of_range: set[str] = set()
        self._current: Episode | None = None
        self._af_since: float | None = None
        self._af_alerted = False
        self._episode_count = 0
        self._last_t = 0.0

    # -- scripted events -------------------------------------------------------------------
    def plan_episode(self, plan: EpisodePlan) -> None:
        self._plans.append(plan)

    def change_lead(self, change: LeadChange) -> None:
        if change.lead not in self.state.impedances:
            raise ValueError(f"{self.implant_id}: a {self.type} has no {change.lead} lead")
        self._lead_changes.append(change)

    def battery_milestone(self, status: Literal["RRT", "EOS"], t: float) -> None:
        """The battery reached RRT (replace within ~3 months) or EOS (end of service)."""
        s = self.state
        if status == "RRT" and s.battery_status not in ("RRT", "EOS"):
            s.battery_status, s.longevity_months = "RRT", 3.0
            s.rrt_trigger = "battery voltage below RRT threshold"
            self._raise(Alert("battery_rrt", t, detail="recommended replacement time reached"))
        elif status == "EOS" and s.battery_status != "EOS":
            s.battery_status, s.longevity_months = "EOS", 0.0
            self._raise(Alert("battery_eos", t, detail="end of service: therapy not guaranteed"))

    # -- the device's second-by-second life ----------------------------------------------------
    def step(self, t: float) -> None:
        """Advance to ``t``: battery, leads, rhythm detection. Call about once a second."""
        dt = max(0.0, t - self._last_t)
        self._last_t = t
        self._battery(dt)
        self._leads(t)
        self._rhythm(t)

    def _battery(self, dt: float) -> None:
        s = self.state
        if s.battery_status in ("RRT", "EOS"):
            return
        s.longevity_months = max(3.0, s.longevity_months - dt / (30.4 * DAY_S))
        if s.longevity_months < 0.6 * self._initial_longevity:
            s.battery_status = "MOS"

    def _leads(self, t: float) -> None:
        s = self.state
        for lead, base in BASE_IMPEDANCE.items():
            if lead not in s.impedances:
                continue
            target = base
            for ch in self._lead_changes:
                if ch.lead == lead and t >= ch.start:
                    frac = 1.0 if ch.over_s <= 0 else min(1.0, (t - ch.start) / ch.over_s)
                    target = target + (ch.to_ohm - target) * frac
            s.impedances[lead] = max(0.0, target * (1.0 + self._noise.normal(0.01)))
            value = s.impedances[lead]
            kind: Literal["pacing", "hv"] = "hv" if lead == "HV" else "pacing"
            # Confirmed out of range only when the trend is, not on one noisy sample.
            if not lead_impedance_in_range(kind, target) and lead not in self._out_of_range:
                self._out_of_range.add(lead)
                self._raise(Alert("lead_impedance_out_of_range", t, lead=lead, ohms=round(value)))
            elif lead_impedance_in_range(kind, target):
                self._out_of_range.discard(lead)

    def _rhythm(self, t: float) -> None:
        rhythm = self.patient.rhythm_at(t)
        s = self.state
        # AT/AF burden: seconds in AF, kept for the last 24 h.
        if rhythm == "AF":
            if self._af_since is None:
                self._af_since = t
        elif self._af_since is not None:
            self._store_af(self._af_since, t)
            self._af_since = None
        while s.af_seconds and s.af_seconds[0][1] < t - DAY_S:
            s.af_seconds.popleft()
        burden = self.af_burden_pct(t)
        if burden > self.af_threshold_pct and not self._af_alerted:
            self._af_alerted = True
            self._raise(Alert("af_burden_over_threshold", t, af_burden_pct=round(burden, 1)))
        # Ventricular arrhythmias.
        ventricular = rhythm if rhythm in ("VT", "VF") else None
        if ventricular and self._current is None:
            self._episode_count += 1
            self._current = Episode(f"{self.implant_id}-ep{self._episode_count}", ventricular, t)  # type: ignore[arg-type]
        elif self._current is not None and not ventricular:
            self._end_episode(self._current, t)
            self._current = None

    def _store_af(self, start: float, end: float) -> None:
        self.state.af_seconds.append((start, end))
        self._episode_count += 1
        ep = Episode(
            f"{self.implant_id}-ep{self._episode_count}",
            "AT-AF",
            start,
            end - start,
            "none",
            0,
            "spontaneous",
        )
        self.episodes.append(ep)

    def af_burden_pct(self, t: float) -> float:
        window_start = max(0.0, t - DAY_S)
        total = sum(max(0.0, e - max(s, window_start)) for s, e in self.state.af_seconds)
        if self._af_since is not None:
            total += t - max(self._af_since, window_start)
        span = min(DAY_S, max(t, 1.0))
        return min(100.0, 100.0 * total / span)

    def _plan_for(self, ep: Episode) -> EpisodePlan | None:
        for plan in self._plans:
            if abs(plan.at - ep.start) <= 30.0 and (plan.kind == ep.type):
                self._plans.remove(plan)
                return plan
        return None

    def _end_episode(self, ep: Episode, t: float) -> None:
        ep.duration_s = round(t - ep.start, 1)
        plan = self._plan_for(ep)
        if not self.can_shock:
            ep.therapy, ep.result = "none", "spontaneous"
        else:
            therapy = (
                plan.therapy if plan and plan.therapy else ("atp" if ep.type == "VT" else "shock")
            )
            success = plan.success if plan else True
            if therapy == "atp" and not success:
                # ATP failed: the device escalates to shocks; they may still fail.
                ep.therapy, ep.shocks = "atp_shock", 1
                ep.result = "terminated_by_therapy"
                self.state.atp_recent += 3
            elif therapy == "atp":
                ep.therapy, ep.result = "atp", "terminated_by_therapy"
                self.state.atp_recent += 3
            elif therapy == "shock":
                ep.therapy = "shock"
                ep.shocks = 1 if success else 6
                ep.result = "terminated_by_therapy" if success else "therapy_unsuccessful"
            else:
                ep.therapy, ep.result = "none", "spontaneous"
            self.state.shocks_recent += ep.shocks
        self.episodes.append(ep)
        self._raise(
            Alert("vt_vf_episode", t, detail=f"{ep.type} {ep.duration_s:g} s, {ep.therapy}")
        )
        if ep.shocks:
            self._raise(Alert("shock_delivered", t, detail=f"{ep.shocks} shock(s)"))
        if ep.result == "therapy_unsuccessful":
            self._raise(Alert("shock_unsuccessful", t))
            self._raise(
                Alert("therapies_exhausted", t, detail="all programmed therapies delivered")
            )
        recent = [e for e in self.episodes if e.type in ("VT", "VF") and e.start >= t - DAY_S]
        if len(recent) >= 3:
            self._raise(Alert("vt_vf_storm", t, episodes_24h=len(recent)))

    def _raise(self, alert: Alert) -> None:
        self.alerts.append(alert)
        self._pending_alerts.append(alert)

    def take_alerts(self) -> list[Alert]:
        """Alerts not yet transmitted (the transmitter takes them for a session)."""
        out, self._pending_alerts = self._pending_alerts, []
        return out

    def reset_counters(self) -> None:
        """After an interrogation the 'recent' statistics start again."""
        self.state.shocks_recent = 0
        self.state.atp_recent = 0
