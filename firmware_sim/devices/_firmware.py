"""The firmware state machine every simulated device runs.

::

    OFF ─power on─▶ BOOT ─▶ HELLO ─▶ MEASURING ◀──────────────┐
                                      │  │  │                  │
               battery < low ─────────┘  │  └─ sensor fault ─▶ FAULT ─(cleared)─┘
               ▼                          │
          LOW_BATTERY ─ battery ≤ critical ─▶ SHUTDOWN
                                          │
               link lost ─▶ DISCONNECTED ─(link back)─▶ RECONNECTING ─▶ HELLO ─▶ MEASURING

Firmware is callback-driven on a :class:`~firmware_sim._clock.Clock`: one tick per
sampling period; never sleeps, never reads the wall clock, so it runs unchanged on the
virtual clock (tests, replays) and in real time (demo). Every transition is recorded with
its time and reason so tests can check the sequence, and so can the scenario engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from firmware_sim._clock import TimerHandle
from firmware_sim._faults import FaultKind
from firmware_sim._hal import Hal


class State(StrEnum):
    OFF = "off"
    BOOT = "boot"
    HELLO = "hello"
    MEASURING = "measuring"
    INFLATING = "inflating"
    LOW_BATTERY = "low_battery"
    FAULT = "fault"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    SHUTDOWN = "shutdown"


#: States in which the device takes and sends measurements.
ACTIVE_STATES = frozenset({State.MEASURING, State.LOW_BATTERY, State.INFLATING})


@dataclass(frozen=True, slots=True)
class Transition:
    t: float
    src: State
    dst: State
    reason: str


@dataclass(frozen=True, slots=True)
class Emission:
    """One record a device put on the wire (before wire faults), for tests to compare."""

    t: float
    record: dict[str, Any]
    frame: bytes


class Firmware:
    """Base class: lifecycle, battery, faults, reconnection; subclasses measure.

    Args:
        device_id: id used on the wire and in topics (``[A-Za-z0-9._-]{1,64}``).
        hal: the hardware this firmware runs on.
        period_s: sampling period in simulated seconds.
        boot_s: time from power-on to the first frame (self-test, radio/bridge up).
        keep_log: keep every emitted record (tests); off for long or large runs.
    """

    kind: str = "device"
    boot_s: float = 2.0
    reconnect_s: float = 1.5
    #: Period multiplier while the battery is low (spot-check devices save power).
    low_battery_slowdown: float = 1.0

    def __init__(
        self, device_id: str, hal: Hal, period_s: float, *, keep_log: bool = False
    ) -> None:
        self.device_id = device_id
        self.hal = hal
        self.period_s = float(period_s)
        self.state = State.OFF
        self.transitions: list[Transition] = []
        self.log: list[Emission] | None = [] if keep_log else None
        self._timer: TimerHandle | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def _go(self, dst: State, reason: str) -> None:
        if dst is self.state:
            return
        self.transitions.append(Transition(self.hal.clock.now(), self.state, dst, reason))
        self.state = dst

    def _schedule(self, delay: float, callback: Callable[[], None]) -> None:
        self._timer = self.hal.clock.call_later(delay, callback)

    def power_on(self, delay: float = 0.0) -> None:
        """Start the firmware (after ``delay``: devices in a site do not boot in lockstep)."""
        self._schedule(delay, self._boot)

    def power_off(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._go(State.OFF, "power off")

    def _boot(self) -> None:
        self._go(State.BOOT, "power on")
        self._schedule(self.boot_s, self._hello)

    def _hello(self) -> None:
        self._go(State.HELLO, "booted" if self.state is State.BOOT else "link restored")
        self.on_hello()
        self._go(State.MEASURING, "hello sent")
        self._schedule(self.first_tick_delay(), self._tick)

    def first_tick_delay(self) -> float:
        """Delay from HELLO to the first measurement (continuous devices: one period)."""
        return self.period_s

    def _link_down(self, t: float) -> bool:
        faults = self.hal.faults
        return (
            faults.has(FaultKind.DISCONNECT) and faults.active(FaultKind.DISCONNECT, t) is not None
        )

    def _tick(self) -> None:
        t = self.hal.clock.now()
        faults = self.hal.faults
        battery = self.hal.battery
        state = self.state
        # 1. The link (USB-serial cable, radio): no point measuring into the void.
        if self._link_down(t):
            if state is not State.DISCONNECTED:
                self._go(State.DISCONNECTED, "link lost")
                self.on_disconnect()
            self._schedule(self.period_s, self._tick)
            return
        if state is State.DISCONNECTED:
            self._go(State.RECONNECTING, "link back")
            self.on_reconnect()
            self._schedule(self.reconnect_s, self._hello)
            return
        # 2. Power (one battery reading per tick).
        level = battery.level()
        if battery.is_critical(level):
            self.on_status(force=True)
            self._go(State.SHUTDOWN, f"battery critical ({battery.percent()} %)")
            self.on_shutdown()
            self._timer = None
            return
        low = battery.is_low(level)
        if low and state is State.MEASURING:
            self._go(State.LOW_BATTERY, f"battery low ({battery.percent()} %)")
            self.on_status(force=True)
        elif not low and state is State.LOW_BATTERY:
            self._go(State.MEASURING, "battery recovered")
        # 3. Sensor faults.
        sensor = self.hal.sensor
        if sensor is not None and sensor.faulty(t):
            if self.state is not State.FAULT:
                self._go(State.FAULT, "sensor fault")
                self.on_status(force=True)
            self._schedule(self.period_s, self._tick)
            return
        if self.state is State.FAULT:
            self._go(State.LOW_BATTERY if low else State.MEASURING, "fault cleared")
            self.on_status(force=True)
        # 4. Measure (unless the device is in a dropout window: alive but silent).
        delay = self.period_s * (
            self.low_battery_slowdown if self.state is State.LOW_BATTERY else 1.0
        )
        if not faults.has(FaultKind.DROPOUT) or faults.active(FaultKind.DROPOUT, t) is None:
            override = self.measure(t)
            if override is not None:
                delay = override
        self._schedule(delay, self._tick)

    # -- hooks ---------------------------------------------------------------------------
    def on_hello(self) -> None:
        """Announce the device (sbf1 HELLO frame, MQTT birth …)."""

    def on_status(self, *, force: bool = False) -> None:
        """Report battery/flags (sbf1 STATUS frame); ``force`` on any state change."""

    def on_disconnect(self) -> None:
        if self.hal.uart is not None:
            self.hal.uart.connected = False

    def on_reconnect(self) -> None:
        if self.hal.uart is not None:
            self.hal.uart.connected = True

    def on_shutdown(self) -> None:
        """Last words before the power goes (nothing by default)."""

    def measure(self, t: float) -> float | None:
        """Take and send one measurement; may return a different delay to the next tick."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------
    def _record(self, t: float, record: dict[str, Any], frame: bytes) -> None:
        if self.log is not None:
            self.log.append(Emission(t, record, frame))
