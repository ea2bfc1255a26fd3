"""Small formatting helpers shared by the screens (no Textual here)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

PRIORITY_STYLE = {
    "P0": "bold white on red",
    "P1": "bold black on dark_orange",
    "P2": "bold black on yellow",
    "P3": "black on grey70",
    "NR": "grey50",
}
MASK = "•••••"


def badge(priority: str) -> Text:
    """``P0``…``P3`` as a coloured badge (P0 red, P1 orange, P2 yellow, P3 grey)."""
    return Text(f" {priority} ", style=PRIORITY_STYLE.get(priority, ""))


def news2_text(news2: int | None, complete: bool) -> Text:
    """NEWS2 coloured by clinical risk (0–4 low, 5–6 medium, ≥ 7 high); ``*`` when a
    parameter is missing from the score."""
    if news2 is None:
        return Text("–", style="grey50")
    style = "green" if news2 <= 4 else "dark_orange" if news2 <= 6 else "bold red"
    return Text(f"{news2}{'' if complete else '*'}", style=style)


def parse_iso(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def age(text: str | None, now: datetime | None = None) -> str:
    """``42 s``, ``5 min``, ``3 h`` since an ISO time."""
    if not text:
        return "–"
    seconds = max(0.0, ((now or datetime.now(UTC)) - parse_iso(text)).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def stale(text: str | None, after_s: float, now: datetime | None = None) -> bool:
    if not text:
        return True
    return ((now or datetime.now(UTC)) - parse_iso(text)).total_seconds() > after_s


def short_case(case_id: str) -> str:
    """The case id without the centre prefix (``DRFR150752632700001``)."""
    return case_id.rsplit(".", 1)[-1]
