"""Back-off maths: exponential, capped, forgotten, never a permanent lock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from console.auth._backoff import BackoffPolicy, BackoffState

P = BackoffPolicy()


def test_doubles_from_one_second_to_fifteen_minutes() -> None:
    assert [P.delay_s(n) for n in range(0, 6)] == [0, 1, 2, 4, 8, 16]
    assert P.delay_s(10) == 512
    assert P.delay_s(11) == 900
    assert P.delay_s(10_000) == 900


def test_waiting_the_delay_always_reopens() -> None:
    state = BackoffState()
    now = 1000.0
    for _ in range(40):
        state = state.after_failure(now, P)
    wait = state.retry_after_s(now, P)
    assert wait == 900
    assert state.retry_after_s(now + wait, P) == 0  # never a permanent lock


def test_counter_forgotten_after_a_quiet_day() -> None:
    state = BackoffState()
    for i in range(8):
        state = state.after_failure(100.0 + i, P)
    later = 107.0 + P.forget_after_s
    assert state.effective(later, P).failures == 0
    assert state.after_failure(later, P).failures == 1


@given(failures=st.integers(min_value=0, max_value=10_000))
def test_delay_bounded_and_monotonic(failures: int) -> None:
    d = P.delay_s(failures)
    assert 0 <= d <= P.cap_s
    assert P.delay_s(failures + 1) >= d
