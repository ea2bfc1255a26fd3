"""One clock interface, two implementations: a virtual event queue and real (scaled) time.

Firmware never reads the wall clock and never sleeps: it asks its clock for ``now()`` and
schedules callbacks with ``call_later``. Under :class:`VirtualClock` those callbacks run
from a heap in (time, insertion order) order, so a run is a pure function of the seed and
an hour of fifty devices takes seconds; under :class:`RealClock` the same callbacks are
asyncio timers scaled by a speed factor, which is what the demo and ``samu sim`` use.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

#: 2026-11-23T16:00:00Z: the default Unix time of virtual t=0. Fixed rather than read from
#: the wall clock so that device timestamps (and therefore the bytes) depend on the seed
#: only; scenarios and callers may pass another epoch.
DEFAULT_EPOCH = 1_795_449_600.0


class TimerHandle(Protocol):
    """What ``call_later`` returns: something that can be cancelled."""

    def cancel(self) -> None:
        """Prevent the callback from running if it has not run yet."""


class Clock(Protocol):
    """Time as firmware sees it: seconds since the simulation started, plus timers."""

    @property
    def epoch(self) -> float:
        """Unix time corresponding to ``now() == 0`` (true time, before any RTC skew)."""

    def now(self) -> float:
        """Seconds since the start of the simulation (monotonic, never goes back)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once, ``delay`` simulated seconds from now."""


class _Event:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A deterministic discrete-event clock.

    Ties are broken by insertion order, so two runs that schedule the same callbacks in the
    same order execute them in the same order: determinism depends on nothing but the
    code and the seeds. Callbacks may schedule further callbacks (including at the current
    time, which run after every callback already due at that time).
    """

    def __init__(self, epoch: float = DEFAULT_EPOCH) -> None:
        self._epoch = float(epoch)
        self._now = 0.0
        # (when, insertion order, event): tuples compare in C, much faster than objects.
        self._queue: list[tuple[float, int, _Event]] = []
        self._counter = itertools.count()
        self.events_run = 0

    @property
    def epoch(self) -> float:
        return self._epoch

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Event:
        if delay < 0:
            delay = 0.0
        event = _Event(self._now + delay, callback)
        heapq.heappush(self._queue, (event.when, next(self._counter), event))
        return event

    def call_at(self, when: float, callback: Callable[[], None]) -> _Event:
        """Run ``callback`` at absolute simulated time ``when`` (now if already past)."""
        return self.call_later(when - self._now, callback)

    def pending(self) -> int:
        """Number of scheduled, not cancelled, events."""
        return sum(1 for _, _, e in self._queue if not e.cancelled)

    def run_until(self, t_end: float) -> None:
        """Run every event due at or before ``t_end``, then set the time to ``t_end``."""
        queue = self._queue
        pop = heapq.heappop
        while queue and queue[0][0] <= t_end:
            when, _, event = pop(queue)
            if event.cancelled:
                continue
            self._now = when
            self.events_run += 1
            event.callback()
        self._now = max(self._now, t_end)

    def run_for(self, duration: float) -> None:
        """Advance by ``duration`` simulated seconds."""
        self.run_until(self._now + duration)


class _AsyncTimer:
    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self._handle = handle

    def cancel(self) -> None:
        self._handle.cancel()


class RealClock:
    """Simulated time running ``speed`` times faster than the event loop's clock.

    Must be created inside a running event loop. ``epoch`` defaults to the wall time at
    creation so device timestamps look live in the demo; tests use :class:`VirtualClock`.
    """

    def __init__(self, speed: float = 1.0, epoch: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        import time

        self._loop = asyncio.get_running_loop()
        self._speed = float(speed)
        self._t0 = self._loop.time()
        self._epoch = float(time.time() if epoch is None else epoch)

    @property
    def epoch(self) -> float:
        return self._epoch

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return (self._loop.time() - self._t0) * self._speed

    def call_later(self, delay: float, callback: Callable[[], None]) -> _AsyncTimer:
        return _AsyncTimer(self._loop.call_later(max(delay, 0.0) / self._speed, callback))
