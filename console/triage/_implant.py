"""Implant alert severity: from a cardiac implant's latest transmission to triage conditions.

A transmission (remote follow-up, device-initiated alert) arrives rarely, so this runs
in plain Python once per transmission; its result is a small bit mask stored in the
case arrays, which the vectorised engine turns into a priority through the policy.
The inputs are this package's own model (``ImplantStatus``), filled by ingest from the
``implant`` message body (design note protocols.md §2): alerts by name, battery status,
lead impedances, and counts of recent VT/VF episodes, shocks and ATP.

Measured values are checked as well as device alerts, because an alert can be missed
or disabled: a lead impedance of 2 400 Ω is out of range whether or not the device said so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from console.triage._policy import ImplantCondition, Policy


class ImplantAlertName(StrEnum):
    """Device alerts named in protocols.md §2 (implant body), plus ATP delivered."""

    BATTERY_RRT = "battery_rrt"
    BATTERY_EOS = "battery_eos"
    LEAD_IMPEDANCE_OUT_OF_RANGE = "lead_impedance_out_of_range"
    VT_VF_EPISODE = "vt_vf_episode"
    VT_VF_STORM = "vt_vf_storm"  # ≥ 3 VT/VF in 24 h
    SHOCK_DELIVERED = "shock_delivered"
    SHOCK_UNSUCCESSFUL = "shock_unsuccessful"
    THERAPIES_EXHAUSTED = "therapies_exhausted"
    ATP_DELIVERED = "atp_delivered"
    AF_BURDEN_OVER_THRESHOLD = "af_burden_over_threshold"
    TRANSMITTER_DISCONNECTED = "transmitter_disconnected"


#: Bit of each condition in the engine's ``implant`` column (uint16).
CONDITION_BITS: dict[ImplantCondition, int] = {c: 1 << i for i, c in enumerate(ImplantCondition)}

CONDITION_TEXT: dict[ImplantCondition, str] = {
    ImplantCondition.SHOCK_UNSUCCESSFUL: "implant: shock unsuccessful",
    ImplantCondition.THERAPIES_EXHAUSTED: "implant: therapies exhausted",
    ImplantCondition.ELECTRICAL_STORM: "implant: electrical storm (VT/VF or shocks >= 3 in 24 h)",
    ImplantCondition.SHOCK_DELIVERED: "implant: shock delivered",
    ImplantCondition.VT_VF_RECENT: "implant: VT/VF episode in the last hour",
    ImplantCondition.BATTERY_EOS: "implant: battery at end of service (EOS)",
    ImplantCondition.LEAD_IMPEDANCE_OUT_OF_RANGE: "implant: lead impedance out of range",
    ImplantCondition.BATTERY_RRT: "implant: battery at replacement time (RRT/ERI)",
    ImplantCondition.ATP_DELIVERED: "implant: ATP delivered",
    ImplantCondition.AF_BURDEN_OVER_THRESHOLD: "implant: AF burden over threshold",
    ImplantCondition.TRANSMITTER_DISCONNECTED: "implant: transmitter disconnected",
    ImplantCondition.OTHER_IMPLANT_ALERT: "implant: other alert (older VT/VF episode)",
}


class ImplantStatus(BaseModel):
    """What triage needs from an implant's latest transmission.

    Attributes:
        alerts: device alerts raised.
        battery: battery status (ERI and RRT mean the same: replacement due).
        pacing_impedance_ohm: measured pacing lead impedances (RA, RV, LV).
        high_voltage_impedance_ohm: measured high-voltage (shock) lead impedances.
        vt_vf_episodes_24h: VT/VF episodes in the last 24 h.
        shocks_24h: shocks delivered in the last 24 h.
        atp_24h: anti-tachycardia pacing sequences delivered in the last 24 h.
        last_vt_vf_age_s: seconds since the latest VT/VF episode, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alerts: frozenset[ImplantAlertName] = frozenset()
    battery: Literal["OK", "ERI", "RRT", "EOS"] | None = None
    pacing_impedance_ohm: tuple[float, ...] = ()
    high_voltage_impedance_ohm: tuple[float, ...] = ()
    vt_vf_episodes_24h: int = Field(0, ge=0)
    shocks_24h: int = Field(0, ge=0)
    atp_24h: int = Field(0, ge=0)
    last_vt_vf_age_s: float | None = Field(None, ge=0)


@dataclass(frozen=True)
class ImplantSeverity:
    """Conditions found in a transmission and the most urgent level they reach."""

    conditions: tuple[ImplantCondition, ...]
    level: int | None  # 0-2 (P0-P2), None when nothing to report
    bits: int

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(CONDITION_TEXT[c] for c in self.conditions)


def implant_conditions(status: ImplantStatus, policy: Policy) -> tuple[ImplantCondition, ...]:
    """The policy's implant conditions present in ``status``, in ``ImplantCondition`` order."""
    lim = policy.implant
    a = status.alerts
    found: set[ImplantCondition] = set()
    if ImplantAlertName.SHOCK_UNSUCCESSFUL in a:
        found.add(ImplantCondition.SHOCK_UNSUCCESSFUL)
    if ImplantAlertName.THERAPIES_EXHAUSTED in a:
        found.add(ImplantCondition.THERAPIES_EXHAUSTED)
    if (
        ImplantAlertName.VT_VF_STORM in a
        or status.vt_vf_episodes_24h >= lim.storm_episodes
        or status.shocks_24h >= lim.storm_shocks
    ):
        found.add(ImplantCondition.ELECTRICAL_STORM)
    if ImplantAlertName.SHOCK_DELIVERED in a or status.shocks_24h > 0:
        found.add(ImplantCondition.SHOCK_DELIVERED)
    recent = status.last_vt_vf_age_s is not None and status.last_vt_vf_age_s <= lim.recent_episode_s
    if recent or (ImplantAlertName.VT_VF_EPISODE in a and status.last_vt_vf_age_s is None):
        # An episode alert without its time is taken as recent: the safe reading.
        found.add(ImplantCondition.VT_VF_RECENT)
    elif ImplantAlertName.VT_VF_EPISODE in a:
        found.add(ImplantCondition.OTHER_IMPLANT_ALERT)
    if status.battery == "EOS" or ImplantAlertName.BATTERY_EOS in a:
        found.add(ImplantCondition.BATTERY_EOS)
    low, high = lim.pacing_impedance_ohm
    hv_low, hv_high = lim.high_voltage_impedance_ohm
    if (
        ImplantAlertName.LEAD_IMPEDANCE_OUT_OF_RANGE in a
        or any(not low <= z <= high for z in status.pacing_impedance_ohm)
        or any(not hv_low <= z <= hv_high for z in status.high_voltage_impedance_ohm)
    ):
        found.add(ImplantCondition.LEAD_IMPEDANCE_OUT_OF_RANGE)
    if status.battery in ("RRT", "ERI") or ImplantAlertName.BATTERY_RRT in a:
        found.add(ImplantCondition.BATTERY_RRT)
    if ImplantAlertName.ATP_DELIVERED in a or status.atp_24h > 0:
        found.add(ImplantCondition.ATP_DELIVERED)
    if ImplantAlertName.AF_BURDEN_OVER_THRESHOLD in a:
        found.add(ImplantCondition.AF_BURDEN_OVER_THRESHOLD)
    if ImplantAlertName.TRANSMITTER_DISCONNECTED in a:
        found.add(ImplantCondition.TRANSMITTER_DISCONNECTED)
    return tuple(c for c in ImplantCondition if c in found)


def condition_levels(policy: Policy) -> dict[ImplantCondition, int]:
    """Priority level (0-2) of each implant condition under ``policy``."""
    return {c: level for level, lv in enumerate(policy.priority.levels()) for c in lv.implant}


def implant_severity(status: ImplantStatus, policy: Policy) -> ImplantSeverity:
    """Conditions, their bit mask and the most urgent level they reach under ``policy``."""
    conditions = implant_conditions(status, policy)
    levels = condition_levels(policy)
    return ImplantSeverity(
        conditions=conditions,
        level=min((levels[c] for c in conditions), default=None),
        bits=sum(CONDITION_BITS[c] for c in conditions),
    )


_TABLES: dict[str, NDArray[np.uint8]] = {}


def implant_level_table(policy: Policy) -> NDArray[np.uint8]:
    """Level (0-2, or 3 = nothing) of every implant bit mask, for one vectorised gather.

    Built once per policy digest (4 096 entries).
    """
    cached = _TABLES.get(policy.sha256) if policy.sha256 else None
    if cached is not None:
        return cached
    levels = condition_levels(policy)
    table = np.full(1 << len(ImplantCondition), 3, np.uint8)
    masks = np.arange(len(table))
    for condition, bit in CONDITION_BITS.items():
        has = (masks & bit) != 0
        table[has] = np.minimum(table[has], levels[condition])
    table.flags.writeable = False
    if policy.sha256:
        _TABLES[policy.sha256] = table
    return table
