"""What a device does to a true value: noise, quantisation and range limits.

Kept apart from the physiology so a test can say "the frame decodes to the value the
device reported" and, separately, "the reported value is within the device's accuracy of
the true one".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelSpec:
    """Accuracy of one measured channel.

    Attributes:
        noise_sd: SD of additive measurement noise (device accuracy), in the channel's unit.
        resolution: display/transmission step (1 % SpO2, 0.1 °C, 0.1 kg …).
        lo: lowest value the device can report.
        hi: highest value the device can report.
        relative: noise is a fraction of the value (glucometers are specified in %).
    """

    noise_sd: float
    resolution: float
    lo: float
    hi: float
    relative: bool = False


def quantise(value: float, resolution: float) -> float:
    """Round to the device's step, without binary-fraction noise (36.7, not 36.700000001)."""
    steps = round(value / resolution)
    if resolution >= 1:
        return float(steps * resolution)
    decimals = _decimals(resolution)
    return round(steps * resolution, decimals)


_DECIMALS: dict[float, int] = {}


def _decimals(resolution: float) -> int:
    d = _DECIMALS.get(resolution)
    if d is None:
        d = max(0, -math.floor(math.log10(resolution))) + 2
        _DECIMALS[resolution] = d
    return d


class NoiseSource:
    """Random numbers for one sensor, drawn from its Generator in blocks.

    A numpy scalar draw costs about a microsecond of call overhead; a device drawing a
    few numbers per reading at 1 Hz for a virtual hour makes that the bottleneck. Blocks
    are drawn in order from the same seeded Generator, so the numbers are still a pure
    function of the seed.
    """

    def __init__(self, rng: np.random.Generator, block: int = 2048) -> None:
        self.rng = rng
        self._block = block
        self._normals: list[float] = []
        self._uniforms: list[float] = []
        self._ni = 0
        self._ui = 0

    def normal(self, sd: float = 1.0) -> float:
        """A draw from N(0, sd²)."""
        if self._ni >= len(self._normals):
            self._normals = self.rng.standard_normal(self._block).tolist()
            self._ni = 0
        z: float = self._normals[self._ni]
        self._ni += 1
        return z * sd

    def random(self) -> float:
        """A draw from U[0, 1)."""
        if self._ui >= len(self._uniforms):
            self._uniforms = self.rng.random(self._block).tolist()
            self._ui = 0
        u: float = self._uniforms[self._ui]
        self._ui += 1
        return u

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()


def measure(value: float, spec: ChannelSpec, noise: NoiseSource, noise_scale: float = 1.0) -> float:
    """One reading: true value + noise, clipped to the device range, quantised."""
    sd = spec.noise_sd * (abs(value) if spec.relative else 1.0) * noise_scale
    noisy = value + noise.normal(sd) if sd > 0 else value
    clipped = spec.lo if noisy < spec.lo else spec.hi if noisy > spec.hi else noisy
    return quantise(clipped, spec.resolution)
