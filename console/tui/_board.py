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
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from console.services import Alarm, BoardRow
from console.tui._board_model import BoardModel, priority_of
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
FLASH_S = 6.0
STALE_S = 300.0
POLL_S = 2.0


class AlarmBanner(Static):
    """Unacknowledged alarms, newest first; ``a`` acknowledges them."""

    HELP = "Alarms stay here until acknowledged with [b]a[/b]; each one rang the bell once."


class BoardTable(DataTable[Text | str]):
    """The board's table (its own class so F1 explains it)."""

    HELP = """\
[b]Board[/b]: open cases by priority (P0 red, P1 orange, P2 yellow, P3 grey), then age.
Enter/o opens the selected case, d records a decision, r shows its compte rendu,
a acknowledges alarms, v lists devices, u opens the audit screen (auditeurs).
NEWS2 is coloured by risk; * means a parameter is missing; ↑↓ is the trend.
"""


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
[b]Board[/b]: open cases by priority (P0 red, P1 orange, P2 yellow, P3 grey), then age.
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
        yield Footer()

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

    def raise_alarm(self, alarm: Alarm) -> None:
        """One alarm: bell once, flash its row, keep it in the banner (never merged)."""
        self.alarms.insert(0, alarm)
        self.flash_until[alarm.case_id] = time.monotonic() + FLASH_S
        self.model.dirty.add(alarm.case_id)
        self.app.bell()
        banner = self.query_one("#alarms", AlarmBanner)
        banner.add_class("active")
        self._render_banner()

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
        now = self.samu.backend.clock()
        last = Text(age(row.updated_at, now))
        if stale(row.updated_at, STALE_S, now):
            last.stylize("dim")
        # The first alert by name and how many more (the case's Implant tab lists
        # them all): a long list must not push the age and reasons off the screen.
        alerts = row.implant_alerts
        implant = (
            Text(f"♥ {alerts[0]}" + (f" +{len(alerts) - 1}" if len(alerts) > 1 else ""),
                 style="bold red")
            if alerts
            else Text("")
        )  # fmt: skip
        return [
            prio,
            short_case(row.case_id),
            row.site,
            resident,
            news2_text(row.news2, row.news2_complete),
            ring.trend() if ring else "",
            ring.sparkline() if ring else "",
            "–" if row.qsofa is None else str(row.qsofa),
            last,
            implant,
            row.video or "",
            "; ".join(row.reasons[:3]),
        ]

    def render_tick(self) -> None:
        """Fixed-rate render: only changed rows' cells, inside one batch update."""
        now = time.monotonic()
        flashing = {k for k, t in self.flash_until.items() if t > now - 0.5}
        dirty, removed = self.model.take_changes()
        dirty |= flashing & set(self.model.rows)
        order = [r.case_id for r in self.model.ordered()]
        table = self.query_one("#board", DataTable)
        with self.app.batch_update():
            if order != self._order or removed:
                selected = self.selected_case()
                table.clear()
                for row in self.model.ordered():
                    table.add_row(*self._cells(row), key=row.case_id)
                self._order = order
                if selected in order:
                    table.move_cursor(row=order.index(selected))
            else:
                for case_id in dirty:
                    changed = self.model.rows.get(case_id)
                    if changed is None:
                        continue
                    for (key, _), value in zip(COLUMNS, self._cells(changed), strict=True):
                        table.update_cell(case_id, key, value)
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
