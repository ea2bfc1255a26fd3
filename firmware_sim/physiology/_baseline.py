"""Per-resident baseline physiology: means, variability, time constants and correlations.

Values are the *true* physiological state before any device touches it; devices add
their own noise, quantisation and artefacts. Population figures are typical of frail
elderly EHPAD residents (resting HR ~72/min, SpO2 ~95 %, SBP ~135 mmHg, temperature
~36.7 °C) rather than of young adults, because that is who the devices are worn by.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np


class Channel(IntEnum):
    """Index of each physiological variable in the model's state vector."""

    HEART_RATE = 0
    SPO2 = 1
    RESP_RATE = 2
    SYSTOLIC = 3
    DIASTOLIC = 4
    TEMPERATURE = 5
    GLUCOSE = 6
    WEIGHT = 7
    PERFUSION_INDEX = 8


#: Names used in scenario files and in :class:`~firmware_sim.physiology.Vitals`.
CHANNEL_NAMES: dict[str, Channel] = {
    "heart_rate": Channel.HEART_RATE,
    "spo2": Channel.SPO2,
    "resp_rate": Channel.RESP_RATE,
    "systolic": Channel.SYSTOLIC,
    "diastolic": Channel.DIASTOLIC,
    "temperature": Channel.TEMPERATURE,
    "glucose": Channel.GLUCOSE,
    "weight": Channel.WEIGHT,
    "perfusion_index": Channel.PERFUSION_INDEX,
}

N_CHANNELS = len(Channel)

#: Physiologically possible ranges; the model clips to them so no sensor ever reports an
#: impossible "true" value (devices may still report artefacts outside them).
LIMITS: dict[Channel, tuple[float, float]] = {
    Channel.HEART_RATE: (20.0, 250.0),
    Channel.SPO2: (50.0, 100.0),
    Channel.RESP_RATE: (4.0, 60.0),
    Channel.SYSTOLIC: (50.0, 260.0),
    Channel.DIASTOLIC: (25.0, 150.0),
    Channel.TEMPERATURE: (33.0, 42.5),
    Channel.GLUCOSE: (30.0, 600.0),
    Channel.WEIGHT: (25.0, 250.0),
    Channel.PERFUSION_INDEX: (0.02, 20.0),
}

# Population means and between-resident SDs (per-resident baseline draws).
_POPULATION_MEAN = np.array([72.0, 95.5, 16.0, 135.0, 75.0, 36.7, 110.0, 65.0, 3.0])
_POPULATION_SD = np.array([9.0, 1.5, 2.0, 15.0, 8.0, 0.25, 18.0, 12.0, 1.2])

# Within-resident short-term variability (SD of the stationary process) and its time
# constant in seconds: SpO2 and HR wander over a couple of minutes, temperature and
# glucose over half an hour, weight over days.
_DEFAULT_SD = np.array([4.0, 0.8, 1.5, 7.0, 4.5, 0.12, 12.0, 0.2, 0.6])
_DEFAULT_TAU = np.array([120.0, 180.0, 300.0, 300.0, 300.0, 1800.0, 1800.0, 86400.0, 120.0])


def _default_correlation() -> np.ndarray:
    """Innovation correlations: BP components move together, HR with RR, HR against SpO2."""
    c = np.eye(N_CHANNELS)

    def pair(a: Channel, b: Channel, r: float) -> None:
        c[a, b] = c[b, a] = r

    pair(Channel.SYSTOLIC, Channel.DIASTOLIC, 0.7)
    pair(Channel.HEART_RATE, Channel.RESP_RATE, 0.3)
    pair(Channel.HEART_RATE, Channel.SPO2, -0.2)
    pair(Channel.SPO2, Channel.PERFUSION_INDEX, 0.2)
    return c


@dataclass(frozen=True)
class Baseline:
    """A resident's resting physiology.

    Attributes:
        mean: resting value of each channel (index by :class:`Channel`).
        sd: standard deviation of the spontaneous fluctuation around the mean.
        tau_s: autocorrelation time of that fluctuation (Ornstein–Uhlenbeck), seconds.
        correlation: correlation matrix of the fluctuations' innovations.
        spo2_hr_coupling: beats/min added per SpO2 point below the resting mean —
            hypoxaemia drives a compensatory tachycardia, which is what makes HR rise as
            SpO2 falls in sepsis or pneumonia.
        spo2_rr_coupling: breaths/min added per SpO2 point below the resting mean.
    """

    mean: np.ndarray = field(default_factory=_POPULATION_MEAN.copy)
    sd: np.ndarray = field(default_factory=_DEFAULT_SD.copy)
    tau_s: np.ndarray = field(default_factory=_DEFAULT_TAU.copy)
    correlation: np.ndarray = field(default_factory=_default_correlation)
    spo2_hr_coupling: float = 1.5
    spo2_rr_coupling: float = 0.4

    def with_means(self, **means: float) -> Baseline:
        """Copy with some means replaced, by channel name (``heart_rate=80``)."""
        m = self.mean.copy()
        for name, value in means.items():
            m[CHANNEL_NAMES[name]] = float(value)
        return replace(self, mean=m)

    def with_sds(self, **sds: float) -> Baseline:
        """Copy with some variabilities replaced, by channel name."""
        s = self.sd.copy()
        for name, value in sds.items():
            s[CHANNEL_NAMES[name]] = float(value)
        return replace(self, sd=s)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Baseline:
        """A plausible EHPAD resident: each mean drawn around the population mean."""
        mean = rng.normal(_POPULATION_MEAN, _POPULATION_SD)
        lo = np.array([LIMITS[c][0] for c in Channel])
        hi = np.array([LIMITS[c][1] for c in Channel])
        mean = np.clip(mean, lo, hi)
        # A healthy resting resident is neither hypoxic nor febrile nor hypotensive.
        mean[Channel.SPO2] = min(max(mean[Channel.SPO2], 92.0), 99.0)
        mean[Channel.TEMPERATURE] = min(max(mean[Channel.TEMPERATURE], 36.0), 37.4)
        mean[Channel.SYSTOLIC] = max(mean[Channel.SYSTOLIC], 105.0)
        mean[Channel.DIASTOLIC] = min(
            max(mean[Channel.DIASTOLIC], 55.0), mean[Channel.SYSTOLIC] - 30
        )
        mean[Channel.PERFUSION_INDEX] = max(mean[Channel.PERFUSION_INDEX], 0.8)
        return cls(mean=mean)
