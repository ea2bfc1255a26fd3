"""The clock firmware runs on: a deterministic event queue, and scaled real time."""

from __future__ import annotations

import asyncio

import pytest

from firmware_sim import DEFAULT_EPOCH, RealClock, VirtualClock


def test_virtual_clock_runs_events_in_time_then_insertion_order() -> None:
    clock = VirtualClock()
    seen: list[tuple[float, str]] = []

    def note(tag: str) -> None:
        seen.append((clock.now(), tag))

    clock.call_later(5.0, lambda: note("b"))
    clock.call_later(1.0, lambda: note("a"))
    clock.call_later(5.0, lambda: note("c"))  # same time as b: runs after b
    cancelled = clock.call_later(3.0, lambda: note("never"))
    cancelled.cancel()
    clock.run_until(4.0)
    assert seen == [(1.0, "a")]
    assert clock.now() == 4.0
    clock.run_for(10.0)
    assert seen == [(1.0, "a"), (5.0, "b"), (5.0, "c")]
    assert clock.now() == 14.0
    assert clock.pending() == 0
    assert clock.epoch == DEFAULT_EPOCH


def test_callbacks_may_schedule_more_callbacks_including_now() -> None:
    clock = VirtualClock(epoch=0.0)
    order: list[str] = []

    def first() -> None:
        order.append("first")
        clock.call_later(0.0, lambda: order.append("same instant"))
        clock.call_later(-5.0, lambda: order.append("negative delay runs now"))

    clock.call_later(1.0, first)
    clock.call_later(1.0, lambda: order.append("already due"))
    clock.run_until(1.0)
    assert order == ["first", "already due", "same instant", "negative delay runs now"]


async def test_real_clock_scales_time_by_speed() -> None:
    clock = RealClock(speed=50.0, epoch=1000.0)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    fired_at: list[float] = []
    started = loop.time()

    def fire() -> None:
        fired_at.append(loop.time() - started)
        done.set()

    clock.call_later(5.0, fire)  # 5 simulated seconds = 0.1 s of loop time
    await asyncio.wait_for(done.wait(), timeout=5.0)
    assert fired_at[0] < 2.0  # far less than 5 s: the speed factor applies
    assert clock.now() >= 5.0
    assert clock.epoch == 1000.0
    with pytest.raises(ValueError, match="positive"):
        RealClock(speed=0)
