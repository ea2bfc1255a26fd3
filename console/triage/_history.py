"""Per-case NEWS2 history in numpy ring buffers, for deterioration and sparklines.

Devices send up to once a second, so a ring of raw samples would either be huge or
forget the start of the hour. Instead each case row keeps one slot per minute
(``window / bucket + 1`` slots): the minimum, maximum and last NEWS2 of that minute, and
which minute it is. Memory is fixed (about 8 bytes per slot), nothing is lost inside
the window, and "risen by ≥ 3 within the last 60 min" is one vectorised pass:
``current − min(slots still inside the window)``. The window is counted in whole
minutes, so it reaches back between 60 and 61 minutes — on the side of escalating.

Incomplete scores are recorded like complete ones: a parameter arriving late can then
look like a rise, which escalates (the safe error), never hides one.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

_EMPTY = np.int64(-1)


class News2History:
    """NEWS2 per minute over a sliding window, for ``capacity`` case rows.

    Row ``i`` belongs to the case in row ``i`` of the triage arrays; ``clear`` a row
    when its case closes and the row is reused.
    """

    def __init__(self, capacity: int, *, window_s: float = 3600.0, bucket_s: float = 60.0) -> None:
        if capacity < 0 or window_s <= 0 or bucket_s <= 0:
            raise ValueError("capacity ≥ 0, window and bucket > 0 are required")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.slots = math.ceil(window_s / bucket_s) + 1
        shape = (capacity, self.slots)
        self.minute = np.full(shape, _EMPTY, np.int64)
        self.low = np.zeros(shape, np.uint8)
        self.high = np.zeros(shape, np.uint8)
        self.last = np.zeros(shape, np.uint8)

    @property
    def capacity(self) -> int:
        return self.minute.shape[0]

    def _rows(self, rows: NDArray[np.intp] | None) -> NDArray[np.intp]:
        if rows is None:
            return np.arange(self.capacity)
        return np.asarray(rows, dtype=np.intp)

    def record(
        self, now: float, news2: NDArray[np.integer], rows: NDArray[np.intp] | None = None
    ) -> None:
        """Record each row's NEWS2 at time ``now`` (seconds); rows must be distinct.

        A sample older than the minute its slot already holds (recorded out of order, a
        whole ring or more behind) can never be inside the same window: it is dropped
        rather than allowed to evict the newer minute.
        """
        idx = self._rows(rows)
        values = np.asarray(news2, dtype=np.uint8)
        if len(values) != len(idx):
            raise ValueError(f"{len(values)} scores for {len(idx)} rows")
        bucket = math.floor(now / self.bucket_s)
        slot = bucket % self.slots
        newer = self.minute[idx, slot] > bucket
        if newer.any():
            idx, values = idx[~newer], values[~newer]
        fresh = self.minute[idx, slot] != bucket
        self.low[idx, slot] = np.where(fresh, values, np.minimum(self.low[idx, slot], values))
        self.high[idx, slot] = np.where(fresh, values, np.maximum(self.high[idx, slot], values))
        self.last[idx, slot] = values
        self.minute[idx, slot] = bucket

    def _inside(self, now: float, rows: NDArray[np.intp]) -> NDArray[np.bool_]:
        now_bucket = math.floor(now / self.bucket_s)
        first = math.floor((now - self.window_s) / self.bucket_s)
        minute = self.minute[rows]
        inside: NDArray[np.bool_] = (minute >= first) & (minute <= now_bucket)
        return inside

    def lowest(self, now: float, rows: NDArray[np.intp] | None = None) -> NDArray[np.int16]:
        """Lowest NEWS2 recorded inside the window; -1 where nothing was recorded."""
        idx = self._rows(rows)
        inside = self._inside(now, idx)
        low: NDArray[np.int16] = (
            np.where(inside, self.low[idx], np.uint8(255)).min(axis=1).astype(np.int16)
        )
        low[~inside.any(axis=1)] = -1
        return low

    def rise(
        self, now: float, current: NDArray[np.integer], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.int16]:
        """``current`` minus the lowest NEWS2 inside the window (0 without history)."""
        low = self.lowest(now, rows)
        cur = np.asarray(current, dtype=np.int16)
        return np.where(low < 0, 0, cur - low).astype(np.int16)

    def series(self, now: float, row: int) -> list[tuple[int, int]]:
        """``(minute, last NEWS2)`` of one row inside the window, oldest first (sparkline)."""
        idx = np.array([row], dtype=np.intp)
        inside = self._inside(now, idx)[0]
        order = np.argsort(self.minute[row][inside])
        minutes = self.minute[row][inside][order]
        values = self.last[row][inside][order]
        return list(zip(minutes.tolist(), values.tolist(), strict=True))

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` rows (more cases open); existing rows are kept."""
        extra = capacity - self.capacity
        if extra <= 0:
            return
        self.minute = np.vstack([self.minute, np.full((extra, self.slots), _EMPTY, np.int64)])
        for name in ("low", "high", "last"):
            old = getattr(self, name)
            setattr(self, name, np.vstack([old, np.zeros((extra, self.slots), np.uint8)]))

    def clear(self, rows: NDArray[np.intp]) -> None:
        """Forget the history of ``rows`` (their cases closed)."""
        idx = np.asarray(rows, dtype=np.intp)
        self.minute[idx] = _EMPTY
