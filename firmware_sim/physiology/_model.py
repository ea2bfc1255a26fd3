"""The patient model: baseline + scripted course + correlated spontaneous variability.

Spontaneous variability is a multivariate Ornstein–Uhlenbeck process sampled once per
``dt`` seconds. It is generated lazily in blocks with the exact OU discretisation,
vectorised with numpy (one cumulative sum per block instead of a Python loop per step),
from the patient's own seeded generator. Blocks are generated strictly in time order, so
the values at any time depend only on the seed — not on which device asked first or how
often — which is what makes a replay reproduce the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_sim.physiology._baseline import LIMITS, N_CHANNELS, Baseline, Channel
from firmware_sim.physiology._courses import Course, Ramp

_LIMITS = [LIMITS[c] for c in Channel]
_NO_ARTEFACTS: frozenset[str] = frozenset()


@dataclass(slots=True)
class Vitals:
    """True physiological state at time ``t`` (simulated seconds).

    Not frozen on purpose: a frozen dataclass pays for ``object.__setattr__`` on every
    field, and one of these is built per reading. Treat instances as read-only.
    """

    t: float
    heart_rate: float
    spo2: float
    resp_rate: float
    systolic: float
    diastolic: float
    temperature: float
    glucose: float
    weight: float
    perfusion_index: float
    rhythm: str
    consciousness: str
    artefacts: frozenset[str]

    @property
    def mean_arterial(self) -> float:
        """MAP ≈ DBP + (SBP − DBP)/3, the usual bedside estimate."""
        return self.diastolic + (self.systolic - self.diastolic) / 3.0


class PatientModel:
    """One resident's physiology over simulated time.

    Args:
        baseline: resting physiology.
        course: scripted changes (empty: a quiet resident).
        rng: the patient's own generator (spawned from the scenario seed).
        dt: resolution of the spontaneous variability, seconds.
        block: steps generated at a time.
    """

    def __init__(
        self,
        baseline: Baseline,
        course: Course | None = None,
        rng: np.random.Generator | None = None,
        dt: float = 1.0,
        block: int = 256,
    ) -> None:
        self.baseline = baseline
        self.course = course or Course()
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._dt = float(dt)
        self._block = int(block)
        # Keep a^-block finite: the exponent block*dt/tau stays below 600.
        tau = np.maximum(baseline.tau_s, max(self._dt, self._dt * self._block / 600.0))
        self._a = np.exp(-self._dt / tau)
        self._innov_sd = baseline.sd * np.sqrt(1.0 - self._a**2)
        self._chol = np.linalg.cholesky(baseline.correlation)
        # Powers of the decay used by the vectorised block recursion.
        k = np.arange(1, self._block + 1, dtype=float)[:, None]
        self._a_pow = self._a[None, :] ** k  # a^k, shape (block, C)
        self._a_inv_pow = self._a[None, :] ** (-k)  # a^-k
        # The deviation path: blocks kept in a short ring (queries never go far back).
        self._state = self._rng.normal(0.0, 1.0, N_CHANNELS) * baseline.sd
        self._path_start = 0  # step index of the first retained row
        self._path = self._state[None, :].copy()
        self._rows: list[list[float]] = [self._state.tolist()]
        self._ramps: dict[Channel, list[Ramp]] = {}
        for r in sorted(self.course.ramps, key=lambda r: r.start):
            self._ramps.setdefault(r.channel, []).append(r)
        self._rhythms = sorted(self.course.rhythms, key=lambda w: w.start)
        self._consciousness = sorted(self.course.consciousness)
        self._artefacts = tuple(self.course.artefacts)
        self._resting: list[float] = [float(x) for x in baseline.mean]
        self._last: Vitals | None = None

    # -- spontaneous variability -------------------------------------------------------
    def _extend(self) -> None:
        n = self._block
        e = self._rng.standard_normal((n, N_CHANNELS)) @ self._chol.T * self._innov_sd
        x0 = self._path[-1]
        # x_k = a^k (x_0 + sum_{j<=k} a^{-j} e_j): the exact OU recursion, vectorised.
        block = self._a_pow * (x0[None, :] + np.cumsum(self._a_inv_pow * e, axis=0))
        self._path = np.vstack([self._path[-1:], block])
        # Rows as plain lists once per block: per-reading access then costs no numpy call.
        self._rows.extend(block.tolist())
        keep = 8 * n
        if len(self._rows) > keep:
            drop = len(self._rows) - keep
            del self._rows[:drop]
            self._path_start += drop

    def _deviation(self, t: float) -> list[float]:
        step = int(t / self._dt) if t > 0 else 0
        while step - self._path_start >= len(self._rows):
            self._extend()
        row = step - self._path_start
        return self._rows[row if row > 0 else 0]

    # -- scripted course ---------------------------------------------------------------
    def mean_at(self, channel: Channel, t: float) -> float:
        """Scripted mean of a channel at ``t`` (resting mean plus every ramp so far)."""
        resting = float(self.baseline.mean[channel])
        value = resting
        ramps = self._ramps.get(channel)
        if not ramps:
            return value
        current: Ramp | None = None
        rate = 0.0
        t_value = 0.0
        for r in ramps:
            if r.start > t:
                break
            if current is not None:
                value = _advance(value, current.target(resting), rate, r.start - t_value)
            current, t_value = r, r.start
            rate = _rate(r, value, resting)
        if current is not None:
            value = _advance(value, current.target(resting), rate, t - t_value)
        return value

    def rhythm_at(self, t: float) -> str:
        rhythm = "SR"
        if not self._rhythms:
            return rhythm
        for w in self._rhythms:
            if w.start > t:
                break
            if w.contains(t):
                rhythm = w.what
        return rhythm

    def consciousness_at(self, t: float) -> str:
        level = "A"
        for at, what in self._consciousness:
            if at > t:
                break
            level = what
        return level

    def artefacts_at(self, t: float) -> frozenset[str]:
        return frozenset(w.what for w in self._artefacts if w.contains(t))

    # -- the state ---------------------------------------------------------------------
    def at(self, t: float) -> Vitals:
        """True vitals at simulated time ``t`` (deterministic for the seed).

        Plain floats rather than numpy arrays here: nine values per call are far below
        the size where numpy pays for its call overhead, and this runs once per device
        reading. The last result is cached because several devices on one resident
        read at the same instant.
        """
        cached = self._last
        if cached is not None and cached.t == t:
            return cached
        base = self.baseline
        resting = self._resting
        dev = self._deviation(t)
        v = [r + d for r, d in zip(resting, dev, strict=True)]
        if self._ramps:
            for channel in self._ramps:
                v[channel] += self.mean_at(channel, t) - resting[channel]
            if Channel.SPO2 in self._ramps:
                # Compensation: hypoxaemia drives heart and breathing rates up.
                drop = resting[Channel.SPO2] - self.mean_at(Channel.SPO2, t)
                if drop > 0:
                    v[Channel.HEART_RATE] += base.spo2_hr_coupling * drop
                    v[Channel.RESP_RATE] += base.spo2_rr_coupling * drop
        v = [lo if x < lo else hi if x > hi else x for x, (lo, hi) in zip(v, _LIMITS, strict=True)]
        rhythm = self.rhythm_at(t) if self._rhythms else "SR"
        if rhythm == "VT":
            v[Channel.HEART_RATE] = max(v[Channel.HEART_RATE], 190.0)
            v[Channel.SYSTOLIC] = min(v[Channel.SYSTOLIC], 80.0)
            v[Channel.DIASTOLIC] = min(v[Channel.DIASTOLIC], 50.0)
            v[Channel.PERFUSION_INDEX] *= 0.3
        elif rhythm == "VF":  # no cardiac output: no pulse for an oximeter to find
            v[Channel.HEART_RATE] = 250.0
            v[Channel.SYSTOLIC] = 50.0
            v[Channel.DIASTOLIC] = 25.0
            v[Channel.PERFUSION_INDEX] = 0.02
        v[Channel.DIASTOLIC] = min(v[Channel.DIASTOLIC], v[Channel.SYSTOLIC] - 15.0)
        # Positional, in Channel order (HR, SpO2, RR, SBP, DBP, T, glucose, weight, PI).
        hr, spo2, rr, sbp, dbp, temp, glucose, weight, pi = v
        result = Vitals(
            t,
            hr,
            spo2,
            rr,
            sbp,
            dbp,
            temp,
            glucose,
            weight,
            pi,
            rhythm,
            self.consciousness_at(t) if self._consciousness else "A",
            self.artefacts_at(t) if self._artefacts else _NO_ARTEFACTS,
        )
        self._last = result
        return result


def _rate(r: Ramp, start_value: float, resting: float) -> float:
    if r.rate_per_s is not None:
        return r.rate_per_s
    if r.duration_s is None or r.duration_s == 0:
        return math.inf
    return abs(r.target(resting) - start_value) / r.duration_s


def _advance(value: float, target: float, rate: float, elapsed: float) -> float:
    if elapsed <= 0:
        return value
    if math.isinf(rate):
        return target
    step = rate * elapsed
    if value < target:
        return min(target, value + step)
    return max(target, value - step)
