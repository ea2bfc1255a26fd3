"""The board (home screen): every open case by priority then age, alarms on top.

Data flow (console.md, style.md): a worker reads the service's board deltas as they come;
rows only go into :class:`BoardModel` there, and a fixed 4 Hz render tick updates only the
changed rows' cells, inside ``app.batch_update()``. Alarms are not coalesced: each one is
handled the moment it arrives — the bell rings once, the row flashes, and it stays in the
alarm banner (docked at the top, so no scrolling hides it) until acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.widgets.data_table import ColumnKey, RowKey

from console.services import Alarm, BoardRow
from console.tui._board_model import RANK, BoardModel, priority_of
from console.tui._format import MASK, age, badge, news2_text, short_case, stale

if TYPE_CHECKING:
    from console.tui._app import RegulationApp

COLUMNS = (
    ("prio", "Prio"),
    ("case", "Affaire"),
    ("site", "Site"),
    ("resident", "Patient"),
    ("news2", "NEWS2"),
    ("trend", "Tend."),
    ("course", "Évolution"),
    ("qsofa", "qSOFA"),
    ("last", "Dernière donnée"),
    ("implant", "Implant"),
    ("video", "Vidéo"),
    ("reasons", "Motifs"),
)
_LAST = [key for key, _ in COLUMNS].index("last")
FLASH_S = 6.0
STALE_S = 300.0
POLL_S = 2.0


class AlarmBanner(Static):
    """Unacknowledged alarms, newest first; ``a`` acknowledges them."""

    HELP = "Alarms stay here until acknowledged with **a**; each one rang the bell once."


class BoardTable(DataTable[Text | str]):
    """The board's table (its own class so F1 explains it)."""

    HELP = """\
**Board**: open cases by priority (P0 red, P1 orange, P2 yellow, P3 grey), then age.
Enter/o opens the selected case, d records a decision, r shows its compte rendu,
a acknowledges alarms, v lists devices, u opens the audit screen (auditeurs).
NEWS2 is coloured by risk; * means a parameter is missing; ↑↓ is the trend.
"""

    def set_cells(self, changes: dict[str, dict[str, Text | str]]) -> None:
        """Set cells of several rows and re-render only those rows.

        ``update_cell`` bumps the table's update count, which every render cache keys
        on, so one changed cell repaints every visible cell (about 1 ms each: half a
        second for a full screen of the board, on each tick). Here the changed rows'
        cache entries are evicted instead and only their regions refreshed. This leans
        on DataTable's private caches, which is why Textual is pinned exactly; the
        snapshot and Pilot tests read the board through the public API and would show
        a stale cell.
        """
        if not changes:
            return
        rows = {RowKey(k) for k in changes}
        for key, cells in changes.items():
            data = self._data[RowKey(key)]
            for column, value in cells.items():
                data[ColumnKey(column)] = value
        indexes = {self._row_locations.get(k) for k in rows}
        header = self.header_height if self.show_header else 0
        ys = {header + y for y, (key, _) in enumerate(self._y_offsets) if key in rows}
        caches: list[tuple[Any, Callable[[Any], bool]]] = [
            (self._cell_render_cache, lambda k: k[0] in rows),
            (self._row_render_cache, lambda k: k[0] in rows),
            (self._row_renderable_cache, lambda k: k[1] in indexes),
            (self._line_cache, lambda k: k[0] in ys),
        ]
        for cache, evict in caches:
            for k in [k for k in cache.keys() if evict(k)]:  # noqa: SIM118 (LRUCache)
                cache.discard(k)
        # One refresh: the rows not evicted are served from the line cache. (refresh_row
        # per row sums every row's height above it: quadratic on a full board.)
        self.refresh()


def _same(a: Text | str, b: Text | str) -> bool:
    """Whether two cells render alike (rich's ``Text ==`` ignores the base style)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and str(a.style) == str(b.style) and a.spans == b.spans
    return a == b


class BoardScreen(Screen[None]):
    """The régulation board (see the module docstring)."""

    CSS = """
    AlarmBanner { height: auto; max-height: 7; background: $error 30%;
                  padding: 0 1; display: none; }
    AlarmBanner.active { display: block; }
    #board { height: 1fr; }
    #status { height: 1; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding("enter,o", "open_case", "Ouvrir", id="board.open", tooltip="Open the case"),
        Binding("d", "decide", "Décider", id="board.decide", tooltip="Record a decision"),
        Binding("r", "report", "Compte rendu", id="board.report"),
        Binding("a", "acknowledge", "Acquitter", id="board.ack", tooltip="Acknowledge alarms"),
        Binding("v", "devices", "Dispositifs", id="board.devices"),
        Binding("u", "audit", "Audit", id="board.audit", tooltip="Audit (auditeur only)"),
        Binding("ctrl+l", "app.lock", "Verrouiller", id="app.lock"),
        Binding("ctrl+d", "app.logout", "Déconnexion", id="app.logout"),
    ]

    HELP = """\
**Board**: open cases by priority (P0 red, P1 orange, P2 yellow, P3 grey), then age.
Enter/o opens the selected case, d records a decision, r shows its compte rendu,
a acknowledges alarms, v lists devices, u opens the audit screen (auditeurs).
NEWS2 is coloured by risk; * means a parameter is missing; ↑↓ is the trend.
"""

    def __init__(self) -> None:
        super().__init__()
        self.model = BoardModel()
        self.alarms: list[Alarm] = []
        self.flash_until: dict[str, float] = {}
        self._order: list[str] = []
        #: The cells last rendered per case (what the table shows), for the cell diff.
        self._shown: dict[str, list[Text | str]] = {}
        self._ages_at = 0.0
        self._sorted_at = 0.0
        self._sort_now = False
        #: Case → the priority its last alarm rang for (see raise_alarm).
        self._alarmed: dict[str, str] = {}

    @property
    def samu(self) -> RegulationApp:
        from console.tui._app import RegulationApp

        assert isinstance(self.app, RegulationApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        yield AlarmBanner(id="alarms")
        yield BoardTable(id="board", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#board", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.set_interval(0.25, self.render_tick)
        self.run_worker(self._follow(), name="board-updates", exit_on_error=False)

    # ------------------------------------------------------------------ data in

    async def _follow(self) -> None:
        try:
            await self._follow_updates()
        except Exception as exc:  # say it on screen: the board must never die silently
            self.query_one("#status", Static).update(f"[b red]Board stopped: {exc}[/]")
            self.notify(f"Board stopped: {exc}", severity="error", timeout=30)

    async def _follow_updates(self) -> None:
        samu = self.samu
        api = await samu.wait_api()
        session = samu.session
        assert session is not None
        if samu.backend.live:
            updates = api.updates(session)
            first = asyncio.ensure_future(updates.__anext__())
            await asyncio.sleep(0)  # let the subscription register before the snapshot
            self._take(await api.board(session), initial=True)
            delta = await first
            # Anything that changed between the snapshot and the subscription: a second
            # look (a case that rose to P0/P1 meanwhile is raised as an alarm here).
            self._take(await api.board(session))
            # Scores move on every triage tick without an event: re-read the board on a
            # timer too (alarms still come from the deltas, the moment they happen).
            self.set_interval(POLL_S, self._reread)
            while True:
                if delta.resync:
                    self._take(await api.board(session))
                for alarm in self.model.apply_delta(delta):
                    self.raise_alarm(alarm)
                delta = await updates.__anext__()
        else:
            initial = True
            while True:
                self._take(await api.board(session), initial=initial)
                initial = False
                await asyncio.sleep(POLL_S)

    @work(exclusive=True, exit_on_error=False, group="board-reread")
    async def _reread(self) -> None:
        api = await self.samu.wait_api()
        if self.samu.session is not None:
            self._take(await api.board(self.samu.session))

    def _take(self, snapshot: object, initial: bool = False) -> None:
        from console.services import BoardSnapshot

        assert isinstance(snapshot, BoardSnapshot)
        alarms = self.model.apply_snapshot(snapshot)
        if not initial:
            for alarm in alarms:
                self.raise_alarm(alarm)
        elif not self.alarms:
            # Signing in on a board that already holds P0/P1 cases: they are listed in
            # the banner (no bell: nothing new happened, the physician is just arriving).
            for row in self.model.ordered():
                if priority_of(row) in ("P0", "P1"):
                    self.alarms.append(
                        Alarm(kind="priority", case_id=row.case_id, priority=priority_of(row),
                              at=row.updated_at, reasons=("open at sign-in", *row.reasons))
                    )  # fmt: skip
            if self.alarms:
                self._render_banner()

    def raise_alarm(self, alarm: Alarm) -> None:
        """One alarm: bell once, flash its row, keep it in the banner (never merged).

        One rise is one alarm, however it reaches the board: the delta that carries it
        and a re-read of the board that already shows the new priority would otherwise
        ring twice for the same event. A case that fell below P1 and rises again is a
        new alarm (the rise is new), and implant alerts are each their own."""
        if alarm.kind == "priority":
            for case_id in [c for c in self._alarmed if c not in self.model.rows
                            or priority_of(self.model.rows[c]) not in ("P0", "P1")]:  # fmt: skip
                del self._alarmed[case_id]  # fell below P1 (or closed): a rise is new again
            seen = self._alarmed.get(alarm.case_id)
            if seen is not None and RANK[alarm.priority] >= RANK[seen]:
                return  # this rise already rang
            self._alarmed[alarm.case_id] = alarm.priority
        self.alarms.insert(0, alarm)
        self.flash_until[alarm.case_id] = time.monotonic() + FLASH_S
        self._sort_now = True
        self.model.dirty.add(alarm.case_id)
        self.app.bell()
        banner = self.query_one("#alarms", AlarmBanner)
        banner.add_class("active")
        self._render_banner()
        if self.app.screen is not self:
            # A case, a form or another screen is open: the board's banner is out of
            # sight, so the alarm comes to the screen in use (nothing hides an alarm).
            row = self.model.rows.get(alarm.case_id)
            what = "implant" if alarm.kind == "implant" else "priorité"
            self.app.notify(
                f"{alarm.priority} {what} {short_case(alarm.case_id)} "
                f"{row.site if row else ''} — {'; '.join(alarm.reasons[:2])}",
                title="ALARME", severity="error", timeout=120, markup=False,
            )  # fmt: skip

    def _render_banner(self) -> None:
        banner = self.query_one("#alarms", AlarmBanner)
        lines = []
        for a in self.alarms[:6]:
            row = self.model.rows.get(a.case_id)
            site = row.site if row else ""
            what = "implant" if a.kind == "implant" else "priorité"
            reasons = "; ".join(a.reasons[:2])
            lines.append(f"⚠ {a.priority} {what} {short_case(a.case_id)} {site} — {reasons}")
        more = len(self.alarms) - 6
        if more > 0:
            lines.append(f"… and {more} more (a: acknowledge)")
        banner.update("\n".join(lines))
        banner.set_class(bool(self.alarms), "active")

    # ------------------------------------------------------------------ render tick

    def _cells(self, row: BoardRow) -> list[Text | str]:
        locked = self.samu.locked
        ring = self.model.history.get(row.case_id)
        flashing = self.flash_until.get(row.case_id, 0.0) > time.monotonic()
        prio = badge(priority_of(row))
        if flashing and int(time.monotonic() * 2) % 2 == 0:
            prio.stylize("reverse")
        resident = MASK if locked else ", ".join(p.split("/", 1)[-1] for p in row.patients)
        last = self._age_cell(row, self.samu.backend.clock())
        # The first alert by name and how many more (the case's Implant tab lists
        # them all): a long list must not push the age and reasons off the screen.
        alerts = row.implant_alerts
        implant = (
            Text(f"♥ {alerts[0]}" + (f" +{len(alerts) - 1}" if len(alerts) > 1 else ""),
                 style="bold red")
            if alerts
            else Text("")
        )  # fmt: skip
        # Text, not str: a DataTable reads a str cell as markup, and a site or a reason
        # from outside ("[link=…]", a stray "[/]") must show as written.
        return [
            prio,
            Text(short_case(row.case_id)),
            Text(row.site),
            Text(resident),
            news2_text(row.news2, row.news2_complete),
            ring.trend() if ring else "",
            ring.sparkline() if ring else "",
            "–" if row.qsofa is None else str(row.qsofa),
            last,
            implant,
            Text(row.video or ""),
            Text("; ".join(row.reasons[:3])),
        ]

    @staticmethod
    def _age_cell(row: BoardRow, now: datetime) -> Text:
        last = Text(age(row.updated_at, now))
        if stale(row.updated_at, STALE_S, now):
            last.stylize("dim")
        return last

    def render_tick(self) -> None:
        """Fixed-rate render inside one batch update, touching only what changed.

        The table is never cleared: a new case is one ``add_row``, a closed one one
        ``remove_row``, a changed case only its changed cells, and a new order one
        ``sort`` (which moves no cell and measures nothing). Rebuilding 500 rows on each
        priority change cost seconds of event loop (``samu bench board``). Ages are
        re-rendered for every row once a second: a row whose data stopped must show its
        data getting old, not the age it had at its last change.
        """
        now = time.monotonic()
        flashing = {k for k, t in self.flash_until.items() if t > now - 0.5}
        dirty, removed = self.model.take_changes()
        dirty |= flashing & set(self.model.rows)
        ages_due = now - self._ages_at >= 1.0
        if ages_due:
            self._ages_at = now
        table = self.query_one("#board", BoardTable)
        shown = self._shown
        selected = self.selected_case()  # before any change: the cursor follows its case
        updates: dict[str, dict[str, Text | str]] = {}
        added = False
        with self.app.batch_update():
            for case_id in removed:
                if shown.pop(case_id, None) is not None:
                    table.remove_row(case_id)
            for case_id in dirty:
                changed = self.model.rows.get(case_id)
                if changed is None:
                    continue
                cells = self._cells(changed)
                before = shown.get(case_id)
                if before is None:
                    table.add_row(*cells, key=case_id)
                    added = True
                else:
                    diff = {
                        key: new
                        for (key, _), new, old in zip(COLUMNS, cells, before, strict=True)
                        if not _same(new, old)
                    }
                    if diff:
                        updates[case_id] = diff
                shown[case_id] = cells
            if ages_due:
                clock = self.samu.backend.clock()
                for case_id, row in self.model.rows.items():
                    drawn = shown.get(case_id)
                    if drawn is None or case_id in dirty:
                        continue
                    last = self._age_cell(row, clock)
                    if not _same(last, drawn[_LAST]):
                        drawn[_LAST] = last
                        updates.setdefault(case_id, {})["last"] = last
            table.set_cells(updates)
            # Reordering repaints the whole table: at most once a second, except that an
            # alarm's row moves to its place at once (nothing hides an alarm).
            due = self._sort_now or now - self._sorted_at >= 1.0 or added
            order = [r.case_id for r in self.model.ordered()] if due else self._order
            if order != self._order:
                self._sorted_at = now
                self._sort_now = False
                rank = {short_case(c): i for i, c in enumerate(order)}
                table.sort("case", key=lambda short: rank.get(str(short), len(rank)))
                self._order = order
                if selected in shown:
                    table.move_cursor(row=table.get_row_index(selected))
            self._tick_status()

    def _tick_status(self) -> None:
        samu = self.samu
        counts: dict[str, int] = {}
        for row in self.model.rows.values():
            counts[priority_of(row)] = counts.get(priority_of(row), 0) + 1
        summary = "  ".join(
            f"{p}: {counts[p]}" for p in ("P0", "P1", "P2", "P3", "NR") if p in counts
        )
        who = samu.session.user_id if samu.session else ""
        lock = "  🔒 VERROUILLÉ" if samu.locked else ""
        self.query_one("#status", Static).update(
            f"{len(self.model.rows)} affaire(s) ouverte(s)  {summary}   —  {who}{lock}"
        )

    def refresh_masking(self) -> None:
        """The lock changed: every row's masked cells are redrawn at the next tick."""
        self.model.dirty |= set(self.model.rows)

    # ------------------------------------------------------------------ actions

    def selected_case(self) -> str | None:
        table = self.query_one("#board", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return None if key.value is None else str(key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.samu.open_case(str(event.row_key.value))

    def action_open_case(self) -> None:
        case_id = self.selected_case()
        if case_id is None:
            self.notify("No case selected.", severity="warning")
            return
        self.samu.open_case(case_id)

    def action_decide(self) -> None:
        case_id = self.selected_case()
        row: BoardRow | None = self.model.rows.get(case_id) if case_id else None
        if row is None:
            self.notify("No case selected.", severity="warning")
            return
        self.samu.decide(row)

    def action_report(self) -> None:
        case_id = self.selected_case()
        if case_id is None:
            self.notify("No case selected.", severity="warning")
            return
        self.samu.report(case_id)

    def action_acknowledge(self) -> None:
        if not self.alarms:
            self.notify("No alarm to acknowledge.")
            return
        self.alarms.clear()
        self._render_banner()

    def action_devices(self) -> None:
        self.samu.show_devices()

    def action_audit(self) -> None:
        self.samu.show_audit()
