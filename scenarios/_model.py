"""The scenario file (TOML) as pydantic models, schema version 1 (scenarios.md).

A scenario is everything needed to replay a situation with the same result for the same
seed: who the residents are and how their physiology evolves, which devices and implants
watch them (with which faults), video sessions, nurse bilans, and what the console must
conclude (``[[expect]]``). Validation is strict (unknown keys are errors: a typo in a
fault name must not silently turn a chaos scenario into a quiet night) and cross-checked
(every device's patient exists, ids are unique and topic-safe, windows are ordered).

Times in a scenario are seconds from its start (``at = 120``) or durations written as
``"90s"``, ``"15m"``, ``"1h30m"``; both forms are accepted wherever a time is.

The expectation engine (replay) is not here: :class:`Expectation` fixes the common shape
(what, who, when, within what deadline) and keeps any further keys for the engine to
interpret, so the engine can grow new expectation kinds without a schema bump.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

#: The schema version this code reads. Bump it when a change would make an old file mean
#: something different; the loader refuses other versions with a clear message.
SCHEMA_VERSION = 1

ID_RE = r"^[A-Za-z0-9._-]{1,64}$"
_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)

#: Serial formats of protocols.md §1 (the codecs' names).
SERIAL_FORMATS = ("sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d")
#: Serial device kinds the simulator has firmware for.
DEVICE_KINDS = ("spo2", "bp", "temperature", "ecg", "glucose", "weight")
VITALS = (
    "heart_rate",
    "spo2",
    "resp_rate",
    "systolic",
    "diastolic",
    "temperature",
    "glucose",
    "weight",
    "perfusion_index",
)
PRESETS = ("hypoxaemia", "sepsis", "stroke", "fall", "af", "bradycardia", "shock_storm")
FAULT_KINDS = (
    "dropout",
    "corrupt",
    "truncate",
    "disconnect",
    "clock_unset",
    "clock_skew",
    "low_battery",
    "critical_battery",
    "sensor_fault",
    "sensor_off",
    "duplicate",
    "reorder",
    "bad_mac",
    "unknown_device",
    "oversize",
)


def parse_seconds(value: Any) -> Any:
    """Accept ``120``, ``120.5``, ``"120"``, ``"2m"``, ``"1h30m"``, ``"90s"``; return seconds."""
    if isinstance(value, bool):
        raise ValueError("a time must be a number of seconds or a duration like '15m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        m = _DURATION_RE.match(text)
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + s
        raise ValueError(f"not a duration: {value!r} (use seconds or e.g. '90s', '15m', '1h30m')")
    return value


Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(ge=0, allow_inf_nan=False)]
Id = Annotated[str, Field(pattern=ID_RE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- scenario header --------------------------------------------------------------------
class ScenarioHeader(_Strict):
    """``[scenario]``: what this is and the seed everything random derives from."""

    name: Id
    description: str = ""
    seed: int = Field(0, ge=0, description="Root of every random stream (SeedSequence).")
    duration: Seconds = Field(description="Simulated run length (seconds or '30m').")
    centre: Id = "samu075"
    site: Id = Field(description="Default EHPAD site of devices that do not name one.")
    start: datetime | None = Field(
        None, description="Wall time of t=0 (with offset); default: a fixed date, for replays."
    )

    @model_validator(mode="after")
    def _start_has_offset(self) -> ScenarioHeader:
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("scenario.start needs an explicit UTC offset (e.g. +01:00)")
        if self.duration <= 0:
            raise ValueError("scenario.duration must be positive")
        return self


# -- residents --------------------------------------------------------------------------
class Identity(_Strict):
    """Synthetic civil identity (never a real person): INS-style traits."""

    birth_name: str
    first_names: list[str] = Field(min_length=1)
    used_name: str | None = None
    birth_date: date
    sex: Literal["F", "M", "O", "UN"] = Field(description="Hub Santé sex codes.")
    birthplace_code: str | None = Field(
        None, pattern=r"^(?:[0-9]{2}|2A|2B)[0-9]{3}$", description="INSEE commune (99xxx abroad)."
    )
    ins: str | None = Field(
        None,
        pattern=r"^[1-478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{8}$",
        description="Qualified INS only.",
    )


class TrustedPerson(_Strict):
    name: str
    relation: str | None = None
    phone: str | None = Field(None, pattern=r"^\+[1-9][0-9]{1,14}$")


class Dlu(_Strict):
    """Document de liaison d'urgence: what the SAMU needs to know about a resident."""

    history: list[str] = []
    allergies: list[str] = []
    treatments: list[str] = []
    advance_directives: str | None = None
    trusted_person: TrustedPerson | None = None
    palliative: bool = False
    baseline_confusion: bool = False


def _vitals_map(value: Any) -> Any:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(VITALS))
        if unknown:
            raise ValueError(f"unknown vital(s) {', '.join(unknown)}; known: {', '.join(VITALS)}")
    return value


VitalsMap = Annotated[dict[str, float], BeforeValidator(_vitals_map)]


class CourseStep(_Strict):
    """``[[patients.course]]``: one change from ``at``.

    Either a ramp of one vital (``vital`` with ``to`` or ``delta``, and ``rate_per_min``
    or ``over``), a clinical ``preset`` (with its ``params``), a consciousness change
    (``consciousness = "C"``, or ``event = "new_confusion"``), a rhythm, or a marker event.
    """

    at: Seconds
    vital: str | None = None
    to: float | None = None
    delta: float | None = None
    rate_per_min: float | None = None
    over: Seconds | None = None
    preset: str | None = None
    params: dict[str, int | float] = {}
    consciousness: Literal["A", "C", "V", "P", "U"] | None = None
    rhythm: Literal["SR", "AF", "VT", "VF", "BRADY"] | None = None
    until: Seconds | None = None
    event: str | None = None

    @model_validator(mode="after")
    def _one_thing(self) -> CourseStep:
        chosen = [
            n
            for n, v in (
                ("vital", self.vital),
                ("preset", self.preset),
                ("consciousness", self.consciousness),
                ("rhythm", self.rhythm),
            )
            if v is not None
        ]
        if len(chosen) > 1:
            raise ValueError(f"a course step does one thing; got {', '.join(chosen)}")
        if not chosen and self.event is None:
            raise ValueError("a course step needs vital, preset, consciousness, rhythm or event")
        if self.vital is not None:
            if self.vital not in VITALS:
                raise ValueError(f"unknown vital {self.vital!r}; known: {', '.join(VITALS)}")
            if (self.to is None) == (self.delta is None):
                raise ValueError(f"ramp of {self.vital}: give exactly one of 'to' or 'delta'")
            if self.rate_per_min is not None and self.over is not None:
                raise ValueError(f"ramp of {self.vital}: give 'rate_per_min' or 'over', not both")
            if self.rate_per_min is not None and self.rate_per_min == 0:
                raise ValueError(f"ramp of {self.vital}: rate_per_min must not be 0")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        if self.until is not None and self.until < self.at:
            raise ValueError("'until' is before 'at'")
        return self


class Patient(_Strict):
    """``[[patients]]``: a resident, their DLU and their physiology."""

    id: Id
    identity: Identity | None = None
    dlu: Dlu = Dlu()
    news2_scale: Literal[1, 2] = Field(
        1, description="NEWS2 SpO2 scale 2 for confirmed hypercapnic respiratory failure."
    )
    baseline: VitalsMap = Field({}, description="Resting means; missing ones are drawn.")
    variability: VitalsMap = Field({}, description="SD of spontaneous fluctuation.")
    course: list[CourseStep] = []


# -- devices ----------------------------------------------------------------------------
class Fault(_Strict):
    """``[[devices.faults]]``: one fault window (see firmware_sim FaultKind)."""

    kind: Literal[
        "dropout",
        "corrupt",
        "truncate",
        "disconnect",
        "clock_unset",
        "clock_skew",
        "low_battery",
        "critical_battery",
        "sensor_fault",
        "sensor_off",
        "duplicate",
        "reorder",
        "bad_mac",
        "unknown_device",
        "oversize",
    ]
    start: Seconds = 0.0
    end: Seconds | None = Field(None, description="Default: until the end of the run.")
    rate: float | None = Field(None, ge=0.0, le=1.0)
    value: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _window(self) -> Fault:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"fault {self.kind}: end before start")
        if self.kind == "clock_skew" and self.value is None:
            raise ValueError("fault clock_skew needs 'value' (seconds of skew)")
        return self

    @property
    def end_or_inf(self) -> float:
        return math.inf if self.end is None else self.end


class Device(_Strict):
    """``[[devices]]``: one bedside device on a resident, with its transport and faults."""

    id: Id
    kind: Literal["spo2", "bp", "temperature", "ecg", "glucose", "weight"]
    patient: Id
    transport: Literal["serial", "socket", "inproc", "mqtt"] = Field(
        "serial", description="How its bytes leave: pty, serial over TCP, in-process, gateway-only."
    )
    format: Literal["sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d"] = "sbf1"
    profile: str | None = Field(None, description="hardware/profiles name (port, ranges, period).")
    site: Id | None = None
    period: Seconds | None = Field(None, description="Sampling period (default: profile's).")
    spot_check: bool = Field(False, description="sbf1 oximeters: PLX spot-check 0x2A5E.")
    battery: float = Field(100.0, ge=0.0, le=100.0)
    faults: list[Fault] = []

    @model_validator(mode="after")
    def _format_fits_kind(self) -> Device:
        if self.format != "sbf1" and self.kind != "spo2":
            raise ValueError(
                f"device {self.id}: {self.format} is an oximeter format; "
                f"{self.kind} devices speak sbf1"
            )
        return self


# -- implants ---------------------------------------------------------------------------
class ImplantEvent(_Strict):
    """``[[implants.events]]``: what happens to the implant and when."""

    at: Seconds
    kind: Literal[
        "vt_episode",
        "vf_episode",
        "af_episode",
        "battery_rrt",
        "battery_eos",
        "lead_impedance",
        "lead_failure",
        "transmitter_disconnect",
        "transmitter_reconnect",
        "transmission",
    ]
    therapy: Literal["none", "atp", "shock"] | None = None
    result: Literal["success", "failure"] = "success"
    duration: Seconds | None = None
    lead: Literal["RA", "RV", "LV", "HV"] | None = None
    to_ohm: float | None = Field(None, gt=0)
    over: Seconds | None = None
    burden_pct: float | None = Field(None, ge=0, le=100)


class Transmissions(_Strict):
    """Scheduled remote follow-up transmissions (754053)."""

    every: Seconds = 86400.0
    first_at: Seconds = 0.0


class Implant(_Strict):
    """``[[implants]]``: a cardiac implant and its bedside transmitter."""

    id: Id
    type: Literal["pacemaker", "icd", "crt-d", "crt-p"]
    patient: Id
    site: Id | None = None
    model: str | None = None
    serial: str | None = None
    battery_longevity_years: float = Field(8.0, gt=0)
    transmissions: Transmissions = Transmissions()
    events: list[ImplantEvent] = []
    faults: list[Fault] = []


# -- video --------------------------------------------------------------------------------
class VideoEvent(_Strict):
    at: Seconds
    event: Literal[
        "link_sent",
        "link_opened",
        "consent_granted",
        "consent_refused",
        "stream_started",
        "stream_quality",
        "stream_ended",
        "consent_withdrawn",
        "stream_drop",
    ]
    who: Literal["patient", "family", "third_party", "nurse"] | None = None
    bitrate_kbps: float | None = Field(None, ge=0)
    frame_rate: float | None = Field(None, ge=0)
    loss_pct: float | None = Field(None, ge=0, le=100)
    duration: Seconds | None = None


class VideoSession(_Strict):
    """``[[video]]``: a video-link session for a case."""

    session: Id
    case: str
    patient: Id | None = None
    phone: str = Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164 number the SMS goes to.")
    quality_every: Seconds = Field(10.0, gt=0)
    events: list[VideoEvent] = Field(min_length=1)


# -- bilans -------------------------------------------------------------------------------
class Nurse(_Strict):
    rpps: str = Field(pattern=r"^\d{11}$")
    name: str


class BilanFlags(_Strict):
    fall: bool = False
    chest_pain: bool = False
    fast: bool | None = Field(None, description="FAST signs positive (None: not assessed).")
    pain: int | None = Field(None, ge=0, le=10)
    new_confusion: bool = False
    cardiac_arrest: bool = False


class Bilan(_Strict):
    """``[[bilans]]``: a nurse bilan sent at ``at``."""

    at: Seconds
    patient: Id
    site: Id | None = None
    nurse: Nurse
    complaint: str
    flags: BilanFlags = BilanFlags()
    text: str = ""
    with_vitals: bool = Field(True, description="Attach the resident's current vitals.")
    observations: dict[str, float | bool | str] = Field(
        default_factory=dict,
        description="What the nurse measured herself, e.g. { resp_rate = 24, consciousness = "
        '"C", on_oxygen = false }: any vital of the baseline, plus consciousness and '
        "on_oxygen. They replace the simulated value of the same vital.",
    )

    @model_validator(mode="after")
    def _check_observations(self) -> Bilan:
        for key, value in self.observations.items():
            if key == "consciousness":
                if value not in ("A", "C", "V", "P", "U"):
                    raise ValueError(f"observations.consciousness: one of A C V P U, not {value!r}")
            elif key == "on_oxygen":
                if not isinstance(value, bool):
                    raise ValueError("observations.on_oxygen: true or false")
            elif key in VITALS:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"observations.{key}: a number, not {value!r}")
            else:
                raise ValueError(
                    f"observations.{key}: unknown (one of {', '.join(VITALS)}, consciousness, "
                    "on_oxygen)"
                )
        return self


# -- expectations -------------------------------------------------------------------------
class Expectation(BaseModel):
    """``[[expect]]``: something the console must conclude, with a deadline or a window.

    The common keys are fixed here; any other key is kept for the replay engine.

    Attributes:
        what: the kind of check (``priority``, ``max_priority``, ``implant_alert``,
            ``stream_ended``, ``quarantined``, ``audit_verifies``, ``no_loss`` …).
        after: time (seconds) the deadline counts from.
        within: deadline after ``after``.
        window: ``[start, end]`` during which the condition must hold.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    what: str = Field(min_length=1)
    id: str | None = None
    description: str = ""
    patient: Id | None = None
    device: Id | None = None
    session: Id | None = None
    value: str | int | float | bool | None = None
    reason: str | None = None
    after: Seconds | None = None
    within: Seconds | None = None
    window: tuple[Seconds, Seconds] | None = None

    @model_validator(mode="after")
    def _window_ordered(self) -> Expectation:
        if self.window is not None and self.window[1] < self.window[0]:
            raise ValueError("expect.window: end before start")
        return self


# -- load -------------------------------------------------------------------------------
class Load(_Strict):
    """``[load]``: a synthetic fleet (sites × devices) for load tests, one resident each.

    ``kinds`` and ``formats`` are cycled over each site's devices, so five entries describe
    a site's five devices; sites are named ``{site_prefix}{index:03d}``.
    """

    sites: int = Field(ge=1, le=10_000)
    devices_per_site: int = Field(ge=1, le=100)
    period: Seconds = Field(1.0, gt=0)
    kinds: list[Literal["spo2", "bp", "temperature", "ecg", "glucose", "weight"]] = Field(
        ["spo2"], min_length=1
    )
    formats: list[Literal["sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d"]] = Field(
        ["sbf1"], min_length=1
    )
    site_prefix: str = Field("ehpad-load-", pattern=r"^[A-Za-z0-9._-]{0,56}$")
    transport: Literal["serial", "socket", "inproc", "mqtt"] = "inproc"

    @model_validator(mode="after")
    def _formats_fit(self) -> Load:
        n = max(len(self.kinds), len(self.formats))
        for i in range(n):
            kind, fmt = self.kinds[i % len(self.kinds)], self.formats[i % len(self.formats)]
            if fmt != "sbf1" and kind != "spo2":
                raise ValueError(f"load: {fmt} is an oximeter format; {kind} devices speak sbf1")
        return self


# -- the file -----------------------------------------------------------------------------
class Scenario(_Strict):
    """A whole scenario file."""

    schema_version: Literal[1] = Field(description="Scenario schema version (this code reads 1).")
    scenario: ScenarioHeader
    patients: list[Patient] = []
    devices: list[Device] = []
    implants: list[Implant] = []
    video: list[VideoSession] = []
    bilans: list[Bilan] = []
    expect: list[Expectation] = []
    load: Load | None = None

    def patient_site(self, patient: str) -> str:
        """The EHPAD (or home) a patient lives at: the site of the first device, implant
        or bilan that names one for them, else the scenario's default site. A resident's
        record key is ``site/patient``, so every check must use the same site."""
        named: list[Device | Implant | Bilan] = [*self.devices, *self.implants, *self.bilans]
        for item in named:
            if item.patient == patient and item.site:
                return str(item.site)
        return str(self.scenario.site)

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        patients = {p.id for p in self.patients}
        for label, ids in (
            ("patient", [p.id for p in self.patients]),
            ("device/implant", [d.id for d in self.devices] + [i.id for i in self.implants]),
            ("video session", [v.session for v in self.video]),
        ):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"duplicate {label} id {i!r}")
                seen.add(i)
        refs: list[tuple[str, str | None]] = [(f"device {d.id}", d.patient) for d in self.devices]
        refs += [(f"implant {i.id}", i.patient) for i in self.implants]
        refs += [(f"video {v.session}", v.patient) for v in self.video]
        refs += [(f"bilan at {b.at:g}s", b.patient) for b in self.bilans]
        refs += [(f"expectation {e.what!r}", e.patient) for e in self.expect]
        for who, patient in refs:
            if patient is not None and patient not in patients:
                raise ValueError(f"{who} refers to unknown patient {patient!r}")
        return self

    @property
    def duration_s(self) -> float:
        return self.scenario.duration
