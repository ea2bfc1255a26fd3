"""Sensor artefacts that come and go on their own: motion, low perfusion, finger out.

Each worn sensor has its own episodes (a resident moves one hand, not the scale), drawn as
a Poisson process from the device's generator. Episodes are generated lazily in time
order in windows of ``horizon_s``, so like the physiology they depend on the seed only.
Patient-level artefact windows from the course (a fall) are added on top by the sensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.physiology._courses import Window

_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ArtefactRates:
    """Episodes per hour and typical duration (seconds) of each artefact kind.

    Defaults suit a finger oximeter on a resident at rest at night: a few brief movements
    an hour, occasional poor perfusion, rarely a finger slipping out of the probe.
    """

    motion_per_h: float = 3.0
    motion_s: float = 20.0
    low_perfusion_per_h: float = 0.5
    low_perfusion_s: float = 90.0
    finger_out_per_h: float = 0.2
    finger_out_s: float = 120.0

    @classmethod
    def none(cls) -> ArtefactRates:
        """No spontaneous artefacts (scale, thermometer, clean test runs)."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class ArtefactProcess:
    """Lazily generated artefact episodes for one sensor."""

    def __init__(
        self, rates: ArtefactRates, rng: np.random.Generator, horizon_s: float = 3600.0
    ) -> None:
        self._rng = rng
        self._horizon = horizon_s
        self._kinds = [
            ("motion", rates.motion_per_h, rates.motion_s),
            ("low_perfusion", rates.low_perfusion_per_h, rates.low_perfusion_s),
            ("finger_out", rates.finger_out_per_h, rates.finger_out_s),
        ]
        self._generated_until = 0.0
        self._windows: list[Window] = []

    def _generate(self) -> None:
        t0, t1 = self._generated_until, self._generated_until + self._horizon
        for kind, per_h, mean_s in self._kinds:
            if per_h <= 0 or mean_s <= 0:
                continue
            n = int(self._rng.poisson(per_h * self._horizon / 3600.0))
            starts = np.sort(self._rng.uniform(t0, t1, n))
            durations = self._rng.exponential(mean_s, n) + 1.0
            self._windows.extend(
                Window(float(s), float(s + d), kind) for s, d in zip(starts, durations, strict=True)
            )
        self._generated_until = t1
        # Forget episodes long over: a demo may run for days.
        self._windows = [w for w in self._windows if w.end > t0 - self._horizon]

    def active(self, t: float) -> frozenset[str]:
        """Artefact kinds active at ``t``."""
        while t >= self._generated_until:
            self._generate()
        hits = [w.what for w in self._windows if w.start <= t < w.end]
        return frozenset(hits) if hits else _NONE
