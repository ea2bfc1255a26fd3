"""Exponential back-off after failed logins, per account and per terminal.

Why back-off and not lock-out: a lock after N failures lets anyone who knows a
physician's user id lock them out of the régulation console during a shift, which in a
SAMU is a denial of care. Back-off slows guessing just as well (with a 15-minute cap an
online attacker gets ~100 guesses a day against 10^6 TOTP codes × a 12+ character
password) and always lets the real user in after a bounded wait.

Rules (pure functions here; the service stores the counters):

* the wait after ``n`` consecutive failures is ``base × 2^(n-1)``, capped at ``cap``
  (defaults 1 s doubling to 15 min);
* attempts made *during* a wait are refused without checking credentials and without
  counting, so an attacker cannot stretch the wait indefinitely;
* a success resets that account's and that terminal's counters;
* counters are forgotten after ``forget_after`` (24 h) without failure, so an old burst
  does not make the next typo cost 15 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """Parameters of the back-off; the defaults are the installation's."""

    base_s: float = 1.0
    cap_s: float = 15 * 60.0
    forget_after_s: float = 24 * 3600.0

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (0 when none)."""
        if failures <= 0:
            return 0.0
        # 2**(n-1) overflows floats long after the cap; clamp the exponent first.
        exponent = min(failures - 1, 64)
        return float(min(self.base_s * (2.0**exponent), self.cap_s))


@dataclass(frozen=True)
class BackoffState:
    """Consecutive failures and the time (unix seconds) of the last one."""

    failures: int = 0
    last_failure_at: float = 0.0

    def effective(self, now: float, policy: BackoffPolicy) -> BackoffState:
        """The state as it counts at ``now`` (forgotten after a long quiet period)."""
        if self.failures and now - self.last_failure_at >= policy.forget_after_s:
            return BackoffState()
        return self

    def retry_after_s(self, now: float, policy: BackoffPolicy) -> float:
        """Seconds before the next attempt is allowed (0 = allowed now)."""
        state = self.effective(now, policy)
        if not state.failures:
            return 0.0
        remaining = state.last_failure_at + policy.delay_s(state.failures) - now
        return max(0.0, remaining)

    def after_failure(self, now: float, policy: BackoffPolicy) -> BackoffState:
        """The state after one more failure at ``now``."""
        state = self.effective(now, policy)
        return BackoffState(state.failures + 1, now)
