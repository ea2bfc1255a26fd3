"""The board as the screen shows it: keyed rows, ordering, NEWS2 history, alarms.

Textual-free on purpose (it is tested without an app): the board screen feeds it the
service's snapshot and deltas and, on its render tick, asks which rows changed. Rows are
ordered by priority (the physician's decision when there is one, else the suggestion),
then by age, oldest first. NEWS2 history per case is a small numpy ring buffer (one value
per change), which the sparkline and the trend arrow read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from console.services import Alarm, BoardDelta, BoardRow, BoardSnapshot

RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3, "NR": 4}
HISTORY = 48
_BARS = "▁▂▃▄▅▆▇█"


def priority_of(row: BoardRow) -> str:
    """What the board ranks by: the physician's decision, else the suggestion."""
    return row.decided_priority or row.suggested_priority


class NewsRing:
    """The last :data:`HISTORY` NEWS2 values of one case (numpy ring buffer)."""

    def __init__(self, size: int = HISTORY) -> None:
        self._values = np.full(size, np.nan)
        self._n = 0

    def push(self, value: int | None) -> None:
        if value is None:
            return
        if self._n and self._values[(self._n - 1) % len(self._values)] == value:
            return  # one point per change: the sparkline shows the course, not the tick
        self._values[self._n % len(self._values)] = value
        self._n += 1

    def values(self) -> np.ndarray:
        size = len(self._values)
        if self._n <= size:
            return self._values[: self._n].copy()
        start = self._n % size
        return np.concatenate([self._values[start:], self._values[:start]])

    def sparkline(self, width: int = 12) -> str:
        vals = self.values()[-width:]
        if len(vals) == 0:
            return ""
        top = max(float(np.nanmax(vals)), 1.0)
        idx = np.clip((vals / max(top, 7.0)) * (len(_BARS) - 1), 0, len(_BARS) - 1)
        return "".join(_BARS[int(i)] for i in idx)

    def trend(self) -> str:
        """↑ rising, ↓ falling, → steady (last value against the one before)."""
        vals = self.values()
        if len(vals) < 2:
            return "→"
        if vals[-1] > vals[-2]:
            return "↑"
        if vals[-1] < vals[-2]:
            return "↓"
        return "→"


@dataclass
class BoardModel:
    """Keyed board state (see the module docstring)."""

    rows: dict[str, BoardRow] = field(default_factory=dict)
    history: dict[str, NewsRing] = field(default_factory=dict)
    version: int = -1
    dirty: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    def _upsert(self, row: BoardRow) -> None:
        self.rows[row.case_id] = row
        self.history.setdefault(row.case_id, NewsRing()).push(row.news2)
        self.dirty.add(row.case_id)
        self.removed.discard(row.case_id)

    def _remove(self, case_id: str) -> None:
        if self.rows.pop(case_id, None) is not None:
            self.removed.add(case_id)
        self.dirty.discard(case_id)

    def apply_snapshot(self, snapshot: BoardSnapshot) -> list[Alarm]:
        """Replace the board; a case that rose to P0/P1 since the last view is an alarm
        (a terminal re-reading the board must not miss one because it polled)."""
        alarms: list[Alarm] = []
        seen = set()
        for row in snapshot.rows:
            seen.add(row.case_id)
            before = self.rows.get(row.case_id)
            prio = priority_of(row)
            rising = before is None or RANK[prio] < RANK[priority_of(before)]
            if self.version >= 0 and rising and prio in ("P0", "P1"):
                alarms.append(
                    Alarm(kind="priority", case_id=row.case_id, priority=prio,
                          at=row.updated_at, reasons=row.reasons)
                )  # fmt: skip
            if before != row:
                self._upsert(row)
        for case_id in list(self.rows):
            if case_id not in seen:
                self._remove(case_id)
        self.version = snapshot.version
        return alarms

    def apply_delta(self, delta: BoardDelta) -> list[Alarm]:
        for row in delta.upserts:
            self._upsert(row)
        for case_id in delta.removed:
            self._remove(case_id)
        self.version = delta.version
        return list(delta.alarms)

    def ordered(self) -> list[BoardRow]:
        return sorted(self.rows.values(), key=lambda r: (RANK[priority_of(r)], r.opened_at))

    def take_changes(self) -> tuple[set[str], set[str]]:
        """Rows changed and rows removed since the last call (the render tick's diff)."""
        dirty, removed = self.dirty, self.removed
        self.dirty, self.removed = set(), set()
        return dirty, removed
