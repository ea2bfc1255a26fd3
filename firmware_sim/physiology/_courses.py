"""Scripted clinical courses: how a resident's physiology changes over time.

A course is data, not code: ramps of channel means toward targets, rhythm windows,
consciousness changes (ACVPU), patient-level artefact windows (a fall shakes every sensor)
and named markers. Presets (:func:`hypoxaemia`, :func:`sepsis`, …) build courses from the
clinical picture each condition produces, so scenario files can say ``preset = "sepsis"``
and get the correlated changes (fever, tachycardia, tachypnoea, hypotension, falling SpO2,
new confusion) instead of scripting each channel by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from firmware_sim.physiology._baseline import CHANNEL_NAMES, Channel

#: Cardiac rhythms the model knows; "SR" (sinus rhythm) is the default.
RHYTHMS = ("SR", "AF", "VT", "VF", "BRADY")
#: ACVPU levels (NEWS2): Alert, new Confusion, Voice, Pain, Unresponsive.
ACVPU = ("A", "C", "V", "P", "U")
#: Patient-level artefact kinds (they affect every sensor worn by the patient).
ARTEFACTS = ("motion", "low_perfusion", "finger_out")


@dataclass(frozen=True)
class Ramp:
    """Move a channel's mean toward a target from ``start``.

    Exactly one of ``to`` (absolute) or ``delta`` (relative to the resting mean) gives the
    target; at most one of ``rate_per_s`` or ``duration_s`` gives the speed (neither: a
    step). A later ramp on the same channel takes over from wherever the earlier one got.
    """

    channel: Channel
    start: float
    to: float | None = None
    delta: float | None = None
    rate_per_s: float | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if (self.to is None) == (self.delta is None):
            raise ValueError("a ramp needs exactly one of 'to' or 'delta'")
        if self.rate_per_s is not None and self.duration_s is not None:
            raise ValueError("a ramp takes 'rate_per_s' or 'duration_s', not both")
        if self.rate_per_s is not None and self.rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive (the direction comes from the target)")
        if self.duration_s is not None and self.duration_s < 0:
            raise ValueError("duration_s must not be negative")

    def target(self, resting: float) -> float:
        return float(self.to) if self.to is not None else resting + float(self.delta or 0.0)


@dataclass(frozen=True)
class Window:
    """Something true between ``start`` and ``end`` (``math.inf``: until the end)."""

    start: float
    end: float
    what: str

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Course:
    """Everything scripted about one resident; courses add up with ``+``."""

    ramps: tuple[Ramp, ...] = ()
    rhythms: tuple[Window, ...] = ()
    consciousness: tuple[tuple[float, str], ...] = ()
    artefacts: tuple[Window, ...] = ()
    markers: tuple[tuple[float, str], ...] = field(default=())

    def __add__(self, other: Course) -> Course:
        return Course(
            self.ramps + other.ramps,
            self.rhythms + other.rhythms,
            self.consciousness + other.consciousness,
            self.artefacts + other.artefacts,
            self.markers + other.markers,
        )


def ramp(
    vital: str,
    at: float,
    *,
    to: float | None = None,
    delta: float | None = None,
    rate_per_min: float | None = None,
    over_s: float | None = None,
) -> Course:
    """One ramp by vital name, with the rate per minute as scenario authors write it."""
    if vital not in CHANNEL_NAMES:
        raise ValueError(f"unknown vital {vital!r}; known: {', '.join(CHANNEL_NAMES)}")
    rate = None if rate_per_min is None else abs(rate_per_min) / 60.0
    return Course(ramps=(Ramp(CHANNEL_NAMES[vital], at, to, delta, rate, over_s),))


def hypoxaemia(at: float, rate_per_min: float = 1.0, to: float = 84.0) -> Course:
    """Slow desaturation (pneumonia, aspiration, heart failure): SpO2 falls, breathing
    quickens; the compensatory tachycardia follows from the baseline's SpO2→HR coupling."""
    return ramp("spo2", at, to=to, rate_per_min=rate_per_min) + ramp(
        "resp_rate", at, delta=6.0, over_s=max(60.0, 60.0 * 10.0 / max(rate_per_min, 1e-3))
    )


def sepsis(at: float, over_s: float = 1800.0) -> Course:
    """Sepsis reaching qSOFA ≥ 2: fever, tachycardia, tachypnoea ≥ 22, SBP ≤ 100, falling
    SpO2 and new confusion two thirds of the way through."""
    return (
        ramp("temperature", at, to=38.9, over_s=over_s)
        + ramp("heart_rate", at, delta=28.0, over_s=over_s)
        + ramp("resp_rate", at, to=25.0, over_s=over_s)
        + ramp("systolic", at, to=92.0, over_s=over_s)
        + ramp("diastolic", at, to=52.0, over_s=over_s)
        + ramp("spo2", at, delta=-5.0, over_s=over_s)
        + ramp("glucose", at, delta=45.0, over_s=over_s)
        + ramp("perfusion_index", at, to=0.6, over_s=over_s)
        + Course(consciousness=((at + over_s * 2 / 3, "C"),), markers=((at, "sepsis"),))
    )


def stroke(at: float) -> Course:
    """Acute stroke: hypertensive surge within minutes, new confusion, FAST signs."""
    return (
        ramp("systolic", at, to=188.0, over_s=600.0)
        + ramp("diastolic", at, to=102.0, over_s=600.0)
        + Course(consciousness=((at + 60.0, "C"),), markers=((at, "fast_positive"),))
    )


def fall(at: float) -> Course:
    """A fall: a burst of motion artefact on every sensor and a transient tachycardia."""
    return (
        ramp("heart_rate", at, delta=22.0, over_s=30.0)
        + ramp("heart_rate", at + 30.0, delta=0.0, over_s=600.0)
        + Course(artefacts=(Window(at, at + 45.0, "motion"),), markers=((at, "fall"),))
    )


def atrial_fibrillation(at: float, rate: float = 118.0) -> Course:
    """New fast AF: irregular rhythm (RR intervals scatter) at a higher ventricular rate."""
    return ramp("heart_rate", at, to=rate, over_s=60.0) + Course(
        rhythms=(Window(at, math.inf, "AF"),), markers=((at, "af"),)
    )


def bradycardia(at: float, to: float = 38.0) -> Course:
    """Bradycardia (conduction block, beta-blocker excess) with the fall in pressure."""
    return (
        ramp("heart_rate", at, to=to, over_s=300.0)
        + ramp("systolic", at, delta=-22.0, over_s=300.0)
        + Course(rhythms=(Window(at, math.inf, "BRADY"),), markers=((at, "bradycardia"),))
    )


def shock_storm(at: float, episodes: int = 4, interval_s: float = 240.0) -> Course:
    """Electrical storm: repeated VT/VF episodes (each ~20 s, terminated by the ICD)."""
    windows = tuple(
        Window(at + i * interval_s, at + i * interval_s + 20.0, "VF" if i % 2 else "VT")
        for i in range(episodes)
    )
    return Course(rhythms=windows, markers=((at, "shock_storm"),))


#: Preset name (as written in scenario files) → builder taking ``at`` plus keywords.
PRESETS = {
    "hypoxaemia": hypoxaemia,
    "sepsis": sepsis,
    "stroke": stroke,
    "fall": fall,
    "af": atrial_fibrillation,
    "bradycardia": bradycardia,
    "shock_storm": shock_storm,
}
