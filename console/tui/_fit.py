"""Fitting a table's columns and a footer's keys to the terminal's width (no Textual here).

A physician's terminal may be 80×24: Textual lays a table's columns and a footer's keys
out at their natural widths and lets the screen cut the rest, mid-cell, out of sight.
Here each column and each key says how much it matters (``drop``: 0 is always shown, the
highest is left out first) and, for keys, a shorter label; the plan keeps what matters
and what fits, and gives one flexible column (free text such as the reasons) the width
that is left. Nothing is cut mid-cell: a cell longer than its column (the flexible
one, or one past its column's cap) ends in an ellipsis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len

#: Cells a DataTable adds around each column's content (``cell_padding`` 1 each side).
CELL_PADDING = 2


@dataclass(frozen=True)
class Col:
    """One column a table may show.

    Attributes:
        key: The column key (also the key of the row's cell).
        label: The column header.
        width: The most cells its content takes (longer content ends in an ellipsis);
            for the flexible column, the fewest it may be given (it grows with the
            width left, up to its widest content when that is known).
        drop: 0 for a column always shown; otherwise, the highest is left out first
            when the width runs short.
        flex: Whether the column takes the width the others leave (one per table).
        short: The header when the table is too narrow for every column (else label).
        narrow: The width of its cells' narrow form, if they have one, used with the
            short headers (the board's implant column: ``♥2`` for two alerts).
        wants: For the flexible column, the cells it would like beyond its width,
            claimed at its ``drop`` rank (before the columns that matter less).
    """

    key: str
    label: str
    width: int
    drop: int = 0
    flex: bool = False
    short: str = ""
    narrow: int = 0
    wants: int = 0


@dataclass(frozen=True)
class Planned:
    """A column as the plan shows it: its key, header and content width."""

    key: str
    label: str
    width: int


def plan_columns(
    columns: Sequence[Col], available: int, content: Mapping[str, int] | None = None
) -> tuple[Planned, ...]:
    """The columns to show in ``available`` cells, in their given order.

    Each column is as wide as its widest content (``content``, capped at its ``width``)
    or its header. When they do not all fit (the flexible column as wide as it wants,
    or as its widest content), the short headers are used where the content is
    narrower than the header, and the columns are taken by importance (``drop``, then
    their order), each as wide as it needs if that still fits, else in its narrow form
    if it has one and that fits; ``drop`` 0 columns are always taken. The flexible
    column gets at least its width, the cells it ``wants`` (as far as they fit) before
    the columns that matter less than it, and what is left at the end, up to its widest
    content when that is known.

    Args:
        columns: The columns, in display order.
        available: The width for the columns, padding included.
        content: The widest content seen per column key (cells), if known.

    Returns:
        The planned columns, in display order.
    """
    seen = content or {}
    for short in (False, True):
        width = {c.key: _need(c, short, seen) for c in columns if c.flex}
        used = sum(w + CELL_PADDING for w in width.values())
        for c in sorted(columns, key=lambda c: c.drop):
            if c.flex:
                more = max(0, min(c.wants, available - used))
                width[c.key] += more
                used += more
                continue
            tries = [_need(c, short, seen)]
            if short and c.narrow:
                tries.append(_need(c, short, seen, narrow=True))
            for need in tries:
                if c.drop == 0 or used + need + CELL_PADDING <= available:
                    width[c.key] = need
                    used += need + CELL_PADDING
                    break
        wanted = {c.key: min(_need(c, short, seen) + c.wants, seen.get(c.key, 1 << 30))
                  for c in columns if c.flex}  # fmt: skip
        if len(width) == len(columns) and all(width[k] >= w for k, w in wanted.items()):
            break  # every column, and the flexible one as wide as it wants
    spare = max(0, available - used)
    planned = []
    for c in columns:
        if c.key not in width:
            continue
        cells = width[c.key]
        if c.flex:
            cells = min(cells + spare, max(cells, seen.get(c.key, cells + spare)))
        label = c.label if not short or cell_len(c.label) <= cells else c.short or c.label
        planned.append(Planned(c.key, label, cells))
    return tuple(planned)


def _need(c: Col, short: bool, seen: Mapping[str, int], narrow: bool = False) -> int:
    """The cells a column needs: its widest content (capped), or its header."""
    header = cell_len((c.short or c.label) if short else c.label)
    if c.flex:
        return max(c.width, header)
    widest = min(seen.get(c.key, 0), c.width)
    if narrow:
        widest = min(widest, c.narrow)
    return max(widest, header)


@dataclass(frozen=True)
class Key:
    """A key as a footer may show it.

    Attributes:
        key: The key pressed (what a click on it simulates).
        display: How the key is shown (``^l``, ``f1``).
        label: Its label; short: the label when space is short (else the label).
        drop: 0 for a key always shown; otherwise the highest is left out first.
    """

    key: str
    display: str
    label: str
    short: str = ""
    drop: int = 0

    def width(self, short: bool) -> int:
        """Cells it takes in a compact footer: the key, a space, the label, a margin."""
        label = (self.short or self.label) if short else self.label
        return cell_len(self.display) + (cell_len(label) + 1 if label else 0) + 1


def fit_keys(keys: Sequence[Key], available: int) -> tuple[tuple[Key, str], ...]:
    """The keys a footer of ``available`` cells shows, each with the label it shows.

    Full labels when every key fits. Else short labels, leaving out the keys with the
    highest ``drop`` (the last first among equals) until the rest fit, ``drop`` 0 keys
    always shown; then the full label again for each key, in order, whose full label
    still fits.
    """
    if sum(k.width(False) for k in keys) <= available:
        return tuple((k, k.label) for k in keys)
    shown = list(keys)
    for k in sorted(reversed(keys), key=lambda k: -k.drop):
        if sum(s.width(True) for s in shown) <= available or k.drop == 0:
            break
        shown.remove(k)
    used = sum(k.width(True) for k in shown)
    fitted = []
    for k in shown:
        label = k.short or k.label
        if used + k.width(False) - k.width(True) <= available:
            used += k.width(False) - k.width(True)
            label = k.label
        fitted.append((k, label))
    return tuple(fitted)
