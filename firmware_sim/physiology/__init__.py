"""numpy patient models: baselines, scripted courses, artefacts and device accuracy.

Every random draw comes from a seeded ``np.random.Generator`` handed in by the caller
(spawned from the scenario seed), never from global state, so the same seed gives the
same physiology.
"""

from firmware_sim.physiology._artefacts import ArtefactProcess, ArtefactRates
from firmware_sim.physiology._baseline import CHANNEL_NAMES, LIMITS, Baseline, Channel
from firmware_sim.physiology._courses import (
    ACVPU,
    ARTEFACTS,
    PRESETS,
    RHYTHMS,
    Course,
    Ramp,
    Window,
    atrial_fibrillation,
    bradycardia,
    fall,
    hypoxaemia,
    ramp,
    sepsis,
    shock_storm,
    stroke,
)
from firmware_sim.physiology._measurement import ChannelSpec, NoiseSource, measure, quantise
from firmware_sim.physiology._model import PatientModel, Vitals

__all__ = [
    "ACVPU",
    "ARTEFACTS",
    "CHANNEL_NAMES",
    "LIMITS",
    "PRESETS",
    "RHYTHMS",
    "ArtefactProcess",
    "ArtefactRates",
    "Baseline",
    "Channel",
    "ChannelSpec",
    "Course",
    "NoiseSource",
    "PatientModel",
    "Ramp",
    "Vitals",
    "Window",
    "atrial_fibrillation",
    "bradycardia",
    "fall",
    "hypoxaemia",
    "measure",
    "quantise",
    "ramp",
    "sepsis",
    "shock_storm",
    "stroke",
]
