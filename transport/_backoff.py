"""One reconnect back-off for every MQTT user: exponential, capped, jittered.

``delay(attempt) = min(high, low · 2^attempt) · U(0.5, 1.5)``, with the exponent capped
so that the arithmetic never overflows however long an outage lasts (an uncapped
``2**attempt`` turned into a float overflow after a few minutes of a dead broker). The
jitter is seeded by the client id so 200 gateways restarting together do not reconnect
in lockstep, yet one client's delays are reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]

_MAX_EXPONENT = 30


@dataclass
class Backoff:
    """Delays between connection attempts.

    Attributes:
        low: first delay, seconds.
        high: longest delay, seconds (before jitter).
        seed: jitter seed (the client id).
    """

    low: float = 0.1
    high: float = 5.0
    seed: str = ""
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise ValueError(f"back-off needs 0 < low <= high, got {self.low}, {self.high}")
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        exponent = min(max(attempt, 0), _MAX_EXPONENT)
        return float(min(self.high, self.low * (2**exponent)) * (0.5 + self._rng.random()))
