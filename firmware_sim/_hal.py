"""The hardware abstraction layer each firmware runs on: clock, UART, sensor, battery, RTC.

The HAL is where the simulated world meets the firmware. Firmware asks the RTC for the
time it would stamp, the battery for its level, the sensor front end for a sample, and
writes frames to the UART; faults are injected here (:mod:`firmware_sim._faults`) so the
firmware logic stays the logic a real device would run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from firmware_sim._clock import Clock
from firmware_sim._faults import FaultKind, FaultPlan
from firmware_sim.physiology import ArtefactProcess, NoiseSource, PatientModel, Vitals


class ByteSink(Protocol):
    """Where a UART's bytes go: a pty master, a TCP socket, an in-process buffer."""

    def write(self, data: bytes) -> None:
        """Send bytes; must not block (a UART without flow control drops on overflow)."""

    def close(self) -> None:
        """Release the port."""


@dataclass
class UartStats:
    """Counters a test (or the scenario engine) compares with what the consumer saw."""

    frames: int = 0
    bytes: int = 0
    corrupted: int = 0
    truncated: int = 0
    lost_disconnected: int = 0


class Uart:
    """Device side of a serial line: frames go through the fault layer to a byte sink.

    ``connected`` is the cable: while it is false, frames are lost (counted), exactly as a
    device keeps talking into an unplugged USB-serial adapter.
    """

    def __init__(self, sink: ByteSink, clock: Clock, faults: FaultPlan) -> None:
        self.sink = sink
        self._clock = clock
        self._faults = faults
        self.connected = True
        self.stats = UartStats()

    def write_frame(self, frame: bytes) -> bytes:
        """Write one frame; returns the bytes actually put on the wire (after faults)."""
        if not self.connected:
            self.stats.lost_disconnected += 1
            return b""
        t = self._clock.now()
        wire = frame
        if self._faults:
            wire = self._faults.truncate(wire, t)
            if len(wire) != len(frame):
                self.stats.truncated += 1
            corrupted = self._faults.corrupt(wire, t)
            if corrupted != wire:
                self.stats.corrupted += 1
            wire = corrupted
        self.stats.frames += 1
        self.stats.bytes += len(wire)
        self.sink.write(wire)
        return wire


#: Where the simulated EHPADs are: devices that print wall-clock time (a Masimo line, a
#: GATT Date Time) print it in local time, as nurses set them.
SITE_TZ = ZoneInfo("Europe/Paris")


class Rtc:
    """The device's real-time clock.

    Reads true time plus drift and any injected skew; reads 0 ("clock not set", as sbf1
    encodes it) while unset — after a battery-out or under a ``clock_unset`` fault.
    """

    def __init__(
        self,
        clock: Clock,
        faults: FaultPlan,
        *,
        is_set: bool = True,
        drift_ppm: float = 0.0,
        tz: tzinfo = SITE_TZ,
    ) -> None:
        self._clock = clock
        self._faults = faults
        self._set = is_set
        self._drift = drift_ppm * 1e-6
        self.tz = tz

    def is_set(self) -> bool:
        if not self._set:
            return False
        faults = self._faults
        return not faults.has(FaultKind.CLOCK_UNSET) or (
            faults.active(FaultKind.CLOCK_UNSET, self._clock.now()) is None
        )

    def set_time(self) -> None:
        """Set from a trusted source (the gateway's NTP time at reconnection)."""
        self._set = True

    def lose_time(self) -> None:
        """Power lost with a flat backup cell: the RTC restarts unset."""
        self._set = False

    def unix_time(self) -> int:
        """Whole Unix seconds as the device would stamp them (0 when not set)."""
        if not self.is_set():
            return 0
        now = self._clock.now()
        offset = 0.0
        if self._faults.has(FaultKind.CLOCK_SKEW):
            skew = self._faults.active(FaultKind.CLOCK_SKEW, now)
            offset = float(skew.value or 0.0) if skew is not None else 0.0
        return int(self._clock.epoch + now * (1.0 + self._drift) + offset)

    def local(self) -> datetime | None:
        """The device's wall-clock time in its time zone (None when not set)."""
        unix = self.unix_time()
        return datetime.fromtimestamp(unix, self.tz) if unix else None


class Battery:
    """A battery that drains with time and with work, and can be forced low by a fault.

    Attributes:
        low_pct: below this the firmware flags low battery (and saves power).
        critical_pct: at or below this the firmware shuts down.
    """

    def __init__(
        self,
        clock: Clock,
        faults: FaultPlan,
        *,
        level_pct: float = 100.0,
        drain_pct_per_h: float = 0.2,
        low_pct: float = 20.0,
        critical_pct: float = 5.0,
    ) -> None:
        self._clock = clock
        self._level = float(level_pct)
        self._drain = drain_pct_per_h / 3600.0
        self._updated = clock.now()
        self.low_pct = low_pct
        self.critical_pct = critical_pct
        self.charging = False
        self._pending = sorted(
            [*faults.starts(FaultKind.LOW_BATTERY), *faults.starts(FaultKind.CRITICAL_BATTERY)],
            key=lambda w: w.start,
        )

    def _update(self) -> None:
        now = self._clock.now()
        while self._pending and self._pending[0].start <= now:
            w = self._pending.pop(0)
            default = 15.0 if w.kind is FaultKind.LOW_BATTERY else 3.0
            self._level = min(self._level, float(w.value if w.value is not None else default))
        elapsed = now - self._updated
        if elapsed > 0:
            if self.charging:
                self._level = min(100.0, self._level + elapsed * 30.0 / 3600.0)
            else:
                self._level = max(0.0, self._level - elapsed * self._drain)
        self._updated = now

    def level(self) -> float:
        self._update()
        return self._level

    def percent(self) -> int:
        """Whole percent, as devices report it."""
        return max(0, min(100, round(self.level())))

    def consume(self, pct: float) -> None:
        """Energy used by one operation (a cuff inflation, a radio burst)."""
        self._update()
        self._level = max(0.0, self._level - pct)

    def is_low(self, level: float | None = None) -> bool:
        return (self.level() if level is None else level) < self.low_pct

    def is_critical(self, level: float | None = None) -> bool:
        return (self.level() if level is None else level) <= self.critical_pct


class SensorFrontEnd:
    """The analogue front end: samples the patient and adds the sensor's artefacts.

    Artefacts come from three places: spontaneous episodes of this sensor, patient-level
    windows from the course (a fall), and ``sensor_off`` fault windows.
    """

    def __init__(
        self,
        patient: PatientModel,
        faults: FaultPlan,
        rng: np.random.Generator,
        artefacts: ArtefactProcess | None = None,
    ) -> None:
        self.patient = patient
        self.rng = rng
        self.noise = NoiseSource(rng)
        self._faults = faults
        self._artefacts = artefacts

    def sample(self, t: float) -> tuple[Vitals, frozenset[str]]:
        """True vitals and the artefacts affecting this sensor at ``t``."""
        vitals = self.patient.at(t)
        active = vitals.artefacts
        if self._artefacts is not None:
            own = self._artefacts.active(t)
            if own:
                active = active | own
        if self._faults.has(FaultKind.SENSOR_OFF) and self._faults.active(FaultKind.SENSOR_OFF, t):
            active = active | {"finger_out"}
        return vitals, active

    def faulty(self, t: float) -> bool:
        return self._faults.has(FaultKind.SENSOR_FAULT) and (
            self._faults.active(FaultKind.SENSOR_FAULT, t) is not None
        )


@dataclass
class Hal:
    """Everything a firmware touches. ``uart`` is None for radio-only devices."""

    clock: Clock
    faults: FaultPlan
    rtc: Rtc
    battery: Battery
    sensor: SensorFrontEnd | None = None
    uart: Uart | None = None
    extra: dict[str, object] = field(default_factory=dict)
