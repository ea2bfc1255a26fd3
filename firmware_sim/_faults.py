"""Fault injection, per device, by time window.

Faults are part of the HAL rather than sprinkled through firmware: the UART corrupts and
truncates, the RTC skews or forgets the time, the battery drops, the link disconnects,
and the envelope layer (gateway, transmitter) duplicates, reorders, spoils MACs, invents
unknown devices or pads payloads. Firmware only sees the consequences, as real firmware
would. Fault randomness comes from its own generator so that switching a fault on does not
change the physiology a device reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class FaultKind(StrEnum):
    """Every injectable fault (scenario files use these names)."""

    DROPOUT = "dropout"  # device silent (frames not produced) in the window
    CORRUPT = "corrupt"  # each byte on the wire flipped with probability ``rate``
    TRUNCATE = "truncate"  # each frame cut short with probability ``rate``
    DISCONNECT = "disconnect"  # link down for the window, reconnect at its end
    CLOCK_UNSET = "clock_unset"  # RTC reads 0 ("clock not set")
    CLOCK_SKEW = "clock_skew"  # RTC off by ``value`` seconds
    LOW_BATTERY = "low_battery"  # battery drops to ``value`` % (default 15) at ``start``
    CRITICAL_BATTERY = "critical_battery"  # battery drops to ``value`` % (default 3)
    SENSOR_FAULT = "sensor_fault"  # sensor reports a fault for the window
    SENSOR_OFF = "sensor_off"  # probe off the patient for the window
    DUPLICATE = "duplicate"  # envelope sent twice with probability ``rate``
    REORDER = "reorder"  # envelope held back behind the next one with probability ``rate``
    BAD_MAC = "bad_mac"  # envelope MAC spoiled with probability ``rate``
    UNKNOWN_DEVICE = "unknown_device"  # envelopes claim a device nobody enrolled
    OVERSIZE = "oversize"  # envelope padded beyond the 64 KiB limit with probability ``rate``


#: Faults that act on MQTT envelopes rather than on the device or its serial line.
ENVELOPE_FAULTS = frozenset(
    {
        FaultKind.DUPLICATE,
        FaultKind.REORDER,
        FaultKind.BAD_MAC,
        FaultKind.UNKNOWN_DEVICE,
        FaultKind.OVERSIZE,
    }
)


@dataclass(frozen=True)
class FaultWindow:
    """One fault, active from ``start`` until ``end`` (simulated seconds).

    ``rate`` is a probability per byte (corrupt) or per frame/envelope (others); when
    omitted it is 1. ``value`` carries the skew in seconds or the battery level in %.
    """

    kind: FaultKind
    start: float = 0.0
    end: float = math.inf
    rate: float | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"fault {self.kind}: end {self.end} before start {self.start}")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault {self.kind}: rate must be within [0, 1]")

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


class FaultPlan:
    """The fault windows of one device, with the generator that decides each occurrence."""

    def __init__(
        self,
        windows: list[FaultWindow] | tuple[FaultWindow, ...] = (),
        rng: np.random.Generator | None = None,
    ) -> None:
        self.windows = tuple(sorted(windows, key=lambda w: (w.start, w.kind)))
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._uniforms: list[float] = []
        self._ui = 0
        self._by_kind: dict[FaultKind, tuple[FaultWindow, ...]] = {}
        for w in self.windows:
            self._by_kind[w.kind] = (*self._by_kind.get(w.kind, ()), w)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def __bool__(self) -> bool:
        return bool(self.windows)

    def has(self, kind: FaultKind) -> bool:
        """Whether any window of ``kind`` exists (a cheap test before :meth:`active`)."""
        return kind in self._by_kind

    def active(self, kind: FaultKind, t: float) -> FaultWindow | None:
        """The window of ``kind`` active at ``t``, if any (the latest started wins)."""
        found = None
        for w in self._by_kind.get(kind, ()):
            if w.start <= t < w.end:
                found = w
        return found

    def starts(self, kind: FaultKind) -> tuple[FaultWindow, ...]:
        return self._by_kind.get(kind, ())

    def fires(self, kind: FaultKind, t: float) -> bool:
        """Whether a per-occurrence fault happens now (draws only when a window is open)."""
        w = self.active(kind, t)
        if w is None:
            return False
        rate = 1.0 if w.rate is None else w.rate
        return rate >= 1.0 or self.random() < rate

    def random(self) -> float:
        """U[0, 1) from the fault stream, drawn in blocks (see NoiseSource for why)."""
        if self._ui >= len(self._uniforms):
            self._uniforms = self._rng.random(1024).tolist()
            self._ui = 0
        u: float = self._uniforms[self._ui]
        self._ui += 1
        return u

    def corrupt(self, data: bytes, t: float) -> bytes:
        """Flip one random bit in each byte selected with the window's per-byte rate."""
        w = self.active(FaultKind.CORRUPT, t)
        if w is None or not data:
            return data
        rate = 1.0 if w.rate is None else w.rate
        hits = self._rng.random(len(data)) < rate
        if not hits.any():
            return data
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        bits = self._rng.integers(0, 8, int(hits.sum()), dtype=np.uint8)
        arr[hits] ^= (np.uint8(1) << bits).astype(np.uint8)
        return arr.tobytes()

    def truncate(self, data: bytes, t: float) -> bytes:
        """Cut the frame at a random point (keeping at least one byte) when the fault fires."""
        if len(data) < 2 or not self.fires(FaultKind.TRUNCATE, t):
            return data
        return data[: int(self._rng.integers(1, len(data)))]
