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
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.widgets.data_table import ColumnKey, RowKey

from console.auth import Role
from console.services import Alarm, BoardRow
from console.tui._board_model import RANK, BoardModel, priority_of
from console.tui._fit import Col, Planned, plan_columns
from console.tui._format import MASK, age, badge, news2_text, short_case, stale
from console.tui._widgets import FitFooter

if TYPE_CHECKING:
    from console.tui._app import RegulationApp

#: The board's columns, what matters first: priority, the age of the last data, where and
#: who, NEWS2 and its trend, then the reasons, which take the width left. At narrow
#: widths the implant column shrinks to its icon and alert count and the least needed
#: columns are left out, the case number first (the banner and the case screen show it).
COLUMNS = (
    Col("prio", "Prio", 4),
    Col("last", "Il y a", 6),
    Col("site", "Site", 20),
    Col("resident", "Patient", 14),
    Col("news2", "NEWS2", 5),
    Col("implant", "Implant", 20, drop=1, short="♥", narrow=3),
    Col("qsofa", "qSOFA", 5, drop=2),
    Col("video", "Vidéo", 17, drop=3),
    Col("course", "Évolution", 12, drop=4),
    Col("case", "Affaire", 19, drop=5),
    Col("reasons", "Motifs", 20, drop=2, flex=True, wants=20),
)
FLASH_S = 6.0
STALE_S = 300.0
POLL_S = 2.0


class AlarmBanner(Static):
    """Unacknowledged alarms, newest first; ``a`` acknowledges them."""

    HELP = "Alarms stay here until acknowledged with **a**; each one rang the bell once."


HELP = """\
**Board**: open cases by priority (P0 red, P1 orange, P2 yellow, P3 grey), then age.
Enter/o opens the selected case, d records a decision, r shows its compte rendu (CR),
a acknowledges alarms, n records a call (a case by hand: régulateur, ARM), t lists the
finished cases to validate or close, v lists devices, u opens the audit screen (auditeurs), ctrl+l
locks, ctrl+d signs out, ctrl+q quits. A narrow footer leaves some keys out: all are
listed below and in the command palette (ctrl+p).

*Il y a*: age of the last data (dimmed when stale). NEWS2 is coloured by risk, * means a
parameter is missing, ↑↓→ is its trend. ♥: implant alerts (how many, the first). A
narrow board leaves out the case number, the NEWS2 course, video and qSOFA first.
"""


class BoardTable(DataTable[Text]):
    """The board's table (its own class so F1 explains it)."""

    HELP = HELP

    def order_rows(self, order: Sequence[str]) -> None:
        """Put the rows in this order of case ids, moving no cell and measuring nothing.

        ``sort`` hands its key function the cells of the columns it sorts by, not the
        row keys; the case number's column, which would give them, is left out of a
        narrow board. Each row's priority cell is its own object: it tells rows apart.
        """
        rank = {id(self.get_cell(key, "prio")): i for i, key in enumerate(order)
                if key in self.rows}  # fmt: skip
        self.sort("prio", key=lambda prio: rank.get(id(prio), len(rank)))

    def set_cells(self, changes: dict[str, dict[str, Text]]) -> None:
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


def _same(a: Text, b: Text) -> bool:
    """Whether two cells render alike (rich's ``Text ==`` ignores the base style)."""
    return a.plain == b.plain and str(a.style) == str(b.style) and a.spans == b.spans


def _implant(row: BoardRow) -> tuple[str, str]:
    """The implant cell, and its narrow form: the alerts' count and the first by name
    (the case's Implant tab lists them all), or only the icon and the count."""
    alerts = row.implant_alerts
    if not alerts:
        return "", ""
    count = f"{len(alerts)}" if len(alerts) > 1 else ""
    return f"♥{count} {alerts[0]}", f"♥{count}"


def _cell(text: Text) -> Text:
    """A cell on one line, ending in … when its column is narrower (never wrapped)."""
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


class BoardScreen(Screen[None]):
    """The régulation board (see the module docstring)."""

    CSS = """
    AlarmBanner { height: auto; max-height: 7; background: $error 30%;
                  padding: 0 1; display: none; text-wrap: nowrap; text-overflow: ellipsis; }
    AlarmBanner.active { display: block; }
    #board { height: 1fr; scrollbar-gutter: stable; scrollbar-size-vertical: 1; }
    #status { height: 1; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding(
            "enter,o",
            "open_case",
            "Ouvrir",
            key_display="⏎",
            id="board.open",
            tooltip="Open the case (Enter or o)",
        ),
        Binding("d", "decide", "Décider", id="board.decide", tooltip="Record a decision"),
        Binding("r", "report", "Compte rendu", id="board.report"),
        Binding("a", "acknowledge", "Acquitter", id="board.ack", tooltip="Acknowledge alarms"),
        Binding("n", "call", "Appel", id="board.call", tooltip="A call: open a case by hand"),
        Binding(
            "t",
            "finished",
            "Terminées",
            id="board.finished",
            tooltip="Finished cases: validate, close",
        ),
        Binding("v", "devices", "Dispositifs", id="board.devices"),
        Binding("u", "audit", "Audit", id="board.audit", tooltip="Audit (auditeur only)"),
        Binding("ctrl+l", "app.lock", "Verrouiller", id="app.lock"),
        Binding("ctrl+d", "app.logout", "Déconnexion", id="app.logout"),
    ]
    #: What a narrow footer shortens or leaves out (see FitFooter): the keys of the
    #: case in hand and of the alarms stay; signing out and the devices go first.
    FOOTER = {
        "board.report": ("CR", 0),
        "board.call": ("Appel", 2),
        "board.finished": ("Term.", 2),
        "board.devices": ("Disp.", 2),
        "board.audit": ("", 1),
        "app.lock": ("Verrou", 1),
        "app.logout": ("Déconn.", 3),
    }

    HELP = HELP

    def __init__(self) -> None:
        super().__init__()
        self.model = BoardModel()
        self.alarms: list[Alarm] = []
        self.flash_until: dict[str, float] = {}
        self._order: list[str] = []
        #: The cells last rendered per case (what the table shows), for the cell diff.
        self._shown: dict[str, dict[str, Text]] = {}
        #: The columns shown (fitted to the table's width) and each one's widest content.
        self._plan: tuple[Planned, ...] = ()
        self._widths: dict[str, int] = {}
        self._widest: dict[str, int] = {}
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
        yield FitFooter()

    def on_mount(self) -> None:
        # The columns come with the first render tick, fitted to the table's width.
        self.query_one("#board", DataTable).focus()
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
        banner.update(Text("\n".join(lines)))  # as written: a site or reason is no markup
        banner.set_class(bool(self.alarms), "active")

    # ------------------------------------------------------------------ render tick

    def _cells(self, row: BoardRow) -> dict[str, Text]:
        """Every column's cell for one case (the plan picks those shown), as Text: a
        DataTable reads a str cell as markup, and a site or a reason from outside
        ("[link=…]", a stray "[/]") must show as written."""
        locked = self.samu.locked
        ring = self.model.history.get(row.case_id)
        flashing = self.flash_until.get(row.case_id, 0.0) > time.monotonic()
        prio = badge(priority_of(row))
        if flashing and int(time.monotonic() * 2) % 2 == 0:
            prio.stylize("reverse")
        residents = ", ".join(p.split("/", 1)[-1] for p in row.patients)
        news2 = news2_text(row.news2, row.news2_complete)
        if ring is not None and row.news2 is not None:
            news2.append(f" {ring.trend()}")
        implant, icon = _implant(row)
        if cell_len(implant) > self._widths.get("implant", 0):
            implant = icon  # a narrow board: the icon and the count
        cells = {
            "prio": prio,
            "last": self._age_cell(row, self.samu.backend.clock()),
            "site": Text(row.site),
            "resident": Text(MASK if locked else residents),
            "news2": news2,
            "implant": Text(implant, style="bold red"),
            "qsofa": Text("–" if row.qsofa is None else str(row.qsofa)),
            "video": Text(row.video or ""),
            "course": Text(ring.sparkline() if ring else ""),
            "case": Text(short_case(row.case_id)),
            "reasons": Text("; ".join(row.reasons[:3])),
        }
        for text in cells.values():
            _cell(text)
        return cells

    def _measure(self, row: BoardRow) -> None:
        """Widen the columns' widest content (what the plan fits) with this row's."""
        widest = self._widest
        natural = (("site", row.site), ("implant", _implant(row)[0]),
                   ("resident", ", ".join(p.split("/", 1)[-1] for p in row.patients)),
                   ("video", row.video or ""), ("case", short_case(row.case_id)))  # fmt: skip
        for key, text in natural:
            if cell_len(text) > widest.get(key, 0):
                widest[key] = cell_len(text)

    @staticmethod
    def _age_cell(row: BoardRow, now: datetime) -> Text:
        last = Text(age(row.updated_at, now))
        if stale(row.updated_at, STALE_S, now):
            last.stylize("dim")
        return _cell(last)

    def render_tick(self) -> None:
        """Fixed-rate render inside one batch update, touching only what changed.

        The table is never cleared: a new case is one ``add_row``, a closed one one
        ``remove_row``, a changed case only its changed cells, and a new order one
        ``sort`` (which moves no cell and measures nothing). Rebuilding 500 rows on each
        priority change cost seconds of event loop (``samu bench board``). Ages are
        re-rendered for every row once a second: a row whose data stopped must show its
        data getting old, not the age it had at its last change.
        """
        table = self.query_one("#board", BoardTable)
        width = table.scrollable_content_region.width
        if not width:
            return  # not laid out yet: the columns are fitted to the width
        now = time.monotonic()
        flashing = {k for k, t in self.flash_until.items() if t > now - 0.5}
        dirty, removed = self.model.take_changes()
        dirty |= flashing & set(self.model.rows)
        for case_id in dirty:
            if case_id in self.model.rows:
                self._measure(self.model.rows[case_id])
        ages_due = now - self._ages_at >= 1.0
        if ages_due:
            self._ages_at = now
        shown = self._shown
        selected = self.selected_case()  # before any change: the cursor follows its case
        updates: dict[str, dict[str, Text]] = {}
        added = False
        plan = plan_columns(COLUMNS, width, self._widest)
        with self.app.batch_update():
            if plan != self._plan:
                self._relayout(table, plan)
                dirty = set(self.model.rows)
                removed = set()
            visible = tuple(self._widths)
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
                    table.add_row(*(cells[key] for key in visible), key=case_id)
                    added = True
                else:
                    diff = {
                        key: cells[key] for key in visible if not _same(cells[key], before[key])
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
                    if not _same(last, drawn["last"]):
                        drawn["last"] = last
                        updates.setdefault(case_id, {})["last"] = last
            table.set_cells(updates)
            # Reordering repaints the whole table: at most once a second, except that an
            # alarm's row moves to its place at once (nothing hides an alarm).
            due = self._sort_now or now - self._sorted_at >= 1.0 or added
            order = [r.case_id for r in self.model.ordered()] if due else self._order
            if order != self._order:
                self._sorted_at = now
                self._sort_now = False
                table.order_rows(order)
                self._order = order
                if selected in shown:
                    table.move_cursor(row=table.get_row_index(selected))
            self._tick_status()

    def _relayout(self, table: BoardTable, plan: tuple[Planned, ...]) -> None:
        """Show the planned columns: the table is rebuilt (every row comes back in this
        tick, in order). Only when the width or the widest content changes."""
        table.clear(columns=True)
        for column in plan:
            table.add_column(column.label, key=column.key, width=column.width)
        self._plan = plan
        self._widths = {column.key: column.width for column in plan}
        self._shown.clear()
        self._order = []

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        session = self.samu.session
        if action == "audit":  # an auditeur's key only: not in others' footers
            return session is not None and Role.AUDITEUR in session.roles
        if action == "call":  # régulateur and ARM (case.create)
            return session is not None and bool({Role.REGULATEUR, Role.ARM} & session.roles)
        return True

    def action_call(self) -> None:
        case_id = self.selected_case()
        row = self.model.rows.get(case_id) if case_id else None
        self.samu.record_call(row.site if row is not None else "")

    def action_finished(self) -> None:
        self.samu.show_finished()

    def action_devices(self) -> None:
        self.samu.show_devices()

    def action_audit(self) -> None:
        self.samu.show_audit()
