"""``implant``: one remote transmission from a cardiac implant's home transmitter.

Coded with IEEE 11073-10103 (MDC_IDC): device and session types by numeric code,
observations by term reference identifier (see :data:`protocols.vocab.IDC_TERMS` for why).
Alerts are what the manufacturer's system concluded; triage (triage.md) maps them to
priorities. Where an alert states a measurement (lead impedance), the model checks the
measurement really is out of range, so a mislabelled alert cannot raise a false P1.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from protocols.models._types import V1, Id, Message, ShortText, Timestamp, Tuple
from protocols.vocab import BATTERY_STATUSES, IDC_TERMS, IdcTermName, lead_impedance_in_range

__all__ = [
    "AlertCode",
    "ImplantAlert",
    "ImplantBody",
    "ImplantDevice",
    "ImplantEpisode",
    "ImplantObservation",
    "ImplantSession",
]


_SHOCKS_TERM = "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT"


class ImplantDevice(Message):
    """The implanted device.

    Attributes:
        type: 753665 pacemaker, 753666 ICD, 753667 CRT-D, 753668 CRT-P.
        model: model name.
        serial: serial number.
        manufacturer: manufacturer name.
    """

    type: Literal[753665, 753666, 753667, 753668]
    model: ShortText
    serial: ShortText
    manufacturer: ShortText | None = None


class ImplantSession(Message):
    """The interrogation this transmission comes from.

    Attributes:
        type: 754051 remote, 754052 device-initiated alert, 754053 scheduled.
        time: when the device was interrogated.
    """

    type: Literal[754051, 754052, 754053]
    time: Timestamp


class ImplantObservation(Message):
    """One MDC_IDC measurement or statistic.

    Attributes:
        term: reference identifier (:data:`protocols.vocab.IDC_TERMS`).
        value: a number (impedance, longevity, burden), a count (shocks, ATP), a battery
            status code (BOS, MOS, ERI, RRT, EOS) or a short text (RRT trigger).
        unit: the UCUM unit the term requires; absent for codes and text.
    """

    term: IdcTermName
    value: float | str
    unit: str | None = None

    @model_validator(mode="after")
    def _check_term(self) -> ImplantObservation:
        info = IDC_TERMS[self.term]
        if self.unit != info.unit:
            raise ValueError(f"wrong unit {self.unit!r} for {self.term}: expected {info.unit!r}")
        if info.value == "code":
            if self.value not in BATTERY_STATUSES:
                raise ValueError(
                    f"{self.term} takes one of {', '.join(BATTERY_STATUSES)}, not {self.value!r}"
                )
            return self
        if info.value == "text":
            if not isinstance(self.value, str) or not 1 <= len(self.value) <= 200:
                raise ValueError(f"{self.term} takes a text of 1–200 characters")
            return self
        if isinstance(self.value, str):
            raise ValueError(f"{self.term} needs a number, got {self.value!r}")
        if info.value == "count" and not float(self.value).is_integer():
            raise ValueError(f"{self.term} is a count, got {self.value:g}")
        assert info.low is not None and info.high is not None
        if not info.low <= self.value <= info.high:
            raise ValueError(
                f"{self.value:g} {info.unit} is not plausible for {self.term}: "
                f"accepted {info.low:g}–{info.high:g}"
            )
        return self


class ImplantEpisode(Message):
    """One arrhythmia episode stored by the device (value of MDC_IDC_EPISODE_TYPE).

    Attributes:
        id: the device's episode id.
        type: ``VT``, ``VF`` or ``AT-AF``.
        time: onset.
        duration_s: duration in seconds (up to 30 days: AF can last that long).
        therapy: what the device delivered.
        shocks: number of shocks delivered in this episode.
        result: how the episode ended.
    """

    id: Id
    type: Literal["VT", "VF", "AT-AF"]
    time: Timestamp
    duration_s: Annotated[float, Field(ge=0, le=30 * 86400)]
    therapy: Literal["none", "atp", "shock", "atp_shock"]
    shocks: Annotated[int, Field(ge=0, le=100)] = 0
    result: Literal["spontaneous", "terminated_by_therapy", "therapy_unsuccessful", "ongoing"]

    @model_validator(mode="after")
    def _consistent(self) -> ImplantEpisode:
        shocked = self.therapy in ("shock", "atp_shock")
        if shocked != (self.shocks > 0):
            raise ValueError(
                f"therapy {self.therapy!r} and shocks={self.shocks} disagree "
                "(a shock therapy delivers at least one shock, other therapies none)"
            )
        if self.therapy == "none" and self.result in (
            "terminated_by_therapy",
            "therapy_unsuccessful",
        ):
            raise ValueError(f"result {self.result!r} needs a therapy")
        return self


AlertCode = Literal[
    "battery_rrt",
    "battery_eos",
    "lead_impedance_out_of_range",
    "vt_vf_episode",
    "vt_vf_storm",
    "shock_delivered",
    "shock_unsuccessful",
    "therapies_exhausted",
    "af_burden_over_threshold",
    "transmitter_disconnected",
]
"""Alert codes. ``vt_vf_storm`` is ≥ 3 VT/VF episodes in 24 h (electrical storm)."""


class ImplantAlert(Message):
    """An alert raised by the implant or its transmitter.

    Attributes:
        code: what happened (:data:`AlertCode`).
        time: when it was raised.
        lead: for ``lead_impedance_out_of_range``: ``RA``, ``RV``, ``LV`` (pacing leads)
            or ``HV`` (shock lead).
        ohms: for ``lead_impedance_out_of_range``: the measured impedance; it must be
            outside the normal window (pacing 200–2000 Ω, HV 20–200 Ω).
        episodes_24h: for ``vt_vf_storm``: VT/VF episodes in the last 24 h (≥ 3).
        af_burden_pct: for ``af_burden_over_threshold``: the burden, 0–100 %.
        detail: short text from the manufacturer.
    """

    code: AlertCode
    time: Timestamp
    lead: Literal["RA", "RV", "LV", "HV"] | None = None
    ohms: Annotated[float, Field(ge=0, le=20000)] | None = None
    episodes_24h: Annotated[int, Field(ge=0, le=10000)] | None = None
    af_burden_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    detail: ShortText | None = None

    @model_validator(mode="after")
    def _check_alert(self) -> ImplantAlert:
        if self.code == "lead_impedance_out_of_range":
            if self.lead is None or self.ohms is None:
                raise ValueError("lead_impedance_out_of_range needs lead and ohms")
            kind: Literal["pacing", "hv"] = "hv" if self.lead == "HV" else "pacing"
            if lead_impedance_in_range(kind, self.ohms):
                raise ValueError(
                    f"{self.lead} lead impedance {self.ohms:g} Ω is within range; "
                    "not an out-of-range alert"
                )
        elif self.lead is not None or self.ohms is not None:
            raise ValueError("lead and ohms belong to lead_impedance_out_of_range alerts only")
        if self.code == "vt_vf_storm" and (self.episodes_24h is None or self.episodes_24h < 3):
            raise ValueError("vt_vf_storm needs episodes_24h ≥ 3")
        if self.code == "af_burden_over_threshold" and self.af_burden_pct is None:
            raise ValueError("af_burden_over_threshold needs af_burden_pct")
        return self


class ImplantBody(Message):
    """``implant``: one transmission.

    Attributes:
        v: body version (1).
        patient: pseudonymous patient reference, when the transmitter knows it.
        device: the implant.
        session: the interrogation.
        observations: MDC_IDC measurements, at most one per term.
        episodes: stored arrhythmia episodes.
        alerts: alerts raised.
    """

    v: V1
    patient: Id | None = None
    device: ImplantDevice
    session: ImplantSession
    observations: Annotated[Tuple[ImplantObservation], Field(max_length=64)] = ()
    episodes: Annotated[Tuple[ImplantEpisode], Field(max_length=256)] = ()
    alerts: Annotated[Tuple[ImplantAlert], Field(max_length=64)] = ()

    @model_validator(mode="after")
    def _one_per_term(self) -> ImplantBody:
        terms = [o.term for o in self.observations]
        if len(set(terms)) != len(terms):
            raise ValueError("observations: one value per MDC_IDC term")
        ids = [e.id for e in self.episodes]
        if len(set(ids)) != len(ids):
            raise ValueError("episodes: ids must be unique")
        if self.device.type in (753665, 753668):
            # Pacemaker and CRT-P have no shock lead and cannot shock (they may deliver
            # ATP, some pacemakers do for atrial tachycardia).
            for o in self.observations:
                if IDC_TERMS[o.term].lead == "hv" or o.term == _SHOCKS_TERM:
                    raise ValueError(f"{o.term} does not apply to a device without defibrillator")
            for e in self.episodes:
                if e.shocks:
                    raise ValueError(f"episode {e.id}: a device without defibrillator cannot shock")
            for a in self.alerts:
                if a.lead == "HV" or a.code in (
                    "shock_delivered",
                    "shock_unsuccessful",
                    "therapies_exhausted",
                ):
                    raise ValueError(
                        f"alert {a.code} does not apply to a device without defibrillator"
                    )
        return self
