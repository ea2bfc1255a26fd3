"""The tester's live view of ``samu replay`` (scenarios.md: "without ``--headless`` the
console shows the run live").

The replay runs exactly as headless — same engine, same store, same report, same exit
code — on a thread of its own; this app only watches: the simulated clock against the
scenario's duration, the open cases of the replay's store as the board shows them, and
each scenario's verdicts as they are judged. The report is printed to the terminal
after the app closes, as headless, so nothing a tester reads is lost with the screen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, ProgressBar, RichLog, Static

from console.services import BoardRow, RegulationService
from console.tui._board_model import priority_of
from console.tui._format import badge, news2_text, short_case

TICK_S = 0.25


@dataclass
class ReplayProgress:
    """The scenario being replayed, as the runner thread announces it."""

    scenario: str
    index: int
    total: int
    duration_s: float
    transport: str
    #: Simulated seconds since the scenario's start (read from the engine's clock).
    now_s: Callable[[], float]
    api: RegulationService


@dataclass
class ReplayHooks:
    """What the runner calls; each hook is safe to call from the runner's thread."""

    started: Callable[[ReplayProgress], None]
    #: One scenario judged: its report lines and whether every expectation was met.
    judged: Callable[[list[str], bool], None]
    #: Everything ran (``None``) or the run failed (the one-line reason).
    ended: Callable[[str | None], None]
    _stop: threading.Event = field(default_factory=threading.Event)


class ReplayApp(App[None]):
    """Watches one ``samu replay`` run (see the module docstring)."""

    TITLE = "SAMU — replay"
    CSS = """
    #head { height: auto; padding: 0 1; }
    #progress { padding: 0 1; height: 1; }
    #board { height: 1fr; }
    #verdicts { height: 12; border-top: solid $accent; }
    #status { height: 1; padding: 0 1; background: $panel; }
    """
    BINDINGS = [Binding("ctrl+q,q", "quit", "Quitter", id="replay.quit", priority=True)]

    def __init__(self, runner: Callable[[ReplayHooks], None]) -> None:
        super().__init__()
        self._runner = runner
        self.progress: ReplayProgress | None = None
        self.done = False
        self.failure: str | None = None
        self._thread: threading.Thread | None = None
        self._started_wall = time.monotonic()
        self._frozen = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static("starting…", id="head")
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield DataTable(id="board", cursor_type="row", zebra_stripes=True)
            yield RichLog(id="verdicts", markup=False, wrap=True)
            yield Static("", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#board", DataTable)
        for key, label in (("prio", "Prio"), ("case", "Affaire"), ("site", "Site"),
                           ("resident", "Patient"), ("news2", "NEWS2"), ("qsofa", "qSOFA"),
                           ("reasons", "Motifs")):  # fmt: skip
            table.add_column(label, key=key)
        hooks = ReplayHooks(
            started=lambda p: self.call_from_thread(self._started, p),
            judged=lambda lines, ok: self.call_from_thread(self._judged, lines, ok),
            ended=lambda why: self.call_from_thread(self._ended, why),
        )
        # A daemon thread, not a Textual worker: quitting mid-run must not wait for the
        # engine (the command then says the run was abandoned).
        self._thread = threading.Thread(
            target=self._runner, args=(hooks,), name="replay", daemon=True
        )
        self._thread.start()
        self.set_interval(TICK_S, self._tick)

    # ------------------------------------------------------------------ from the runner

    def _started(self, progress: ReplayProgress) -> None:
        self.progress = progress
        self._frozen = False
        self._started_wall = time.monotonic()
        self.sub_title = f"{progress.scenario} ({progress.index + 1}/{progress.total})"
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(progress.duration_s, 1.0), progress=0)
        self.query_one("#verdicts", RichLog).write(
            Text(f"▶ {progress.scenario} — transport {progress.transport}", style="bold")
        )

    def _judged(self, lines: list[str], ok: bool) -> None:
        # The scenario's store closes with it: keep its last board on screen, unread.
        self._tick()
        self._frozen = True
        log = self.query_one("#verdicts", RichLog)
        for line in lines:
            missed = "MISSED" in line
            log.write(Text(line, style="bold red" if missed else ("green" if ok else "")))

    def _ended(self, failure: str | None) -> None:
        self.done = True
        self.failure = failure
        status = self.query_one("#status", Static)
        if failure:
            status.update(Text(f"stopped: {failure} — q quits", style="bold red"))
        else:
            status.update("replay finished — q quits; the report is printed on the terminal")

    # ------------------------------------------------------------------ render tick

    def _tick(self) -> None:
        progress = self.progress
        if progress is None or self._frozen:
            return
        now = min(progress.now_s(), progress.duration_s)
        wall = max(time.monotonic() - self._started_wall, 1e-6)
        self.query_one("#progress", ProgressBar).update(progress=now)
        self.query_one("#head", Static).update(
            f"{progress.scenario}: t = {now:,.0f} s of {progress.duration_s:,.0f} s"
            f"  ({now / wall:,.0f}× real time)  transport {progress.transport}"
        )
        try:
            rows = progress.api.replay_board()
        except Exception as exc:  # the store is mid-write or gone: say it, keep watching
            self.query_one("#status", Static).update(f"board unavailable: {exc}")
            return
        self._render_board(rows)
        if not self.done:
            counts: dict[str, int] = {}
            for r in rows:
                counts[priority_of(r)] = counts.get(priority_of(r), 0) + 1
            summary = "  ".join(f"{p}: {n}" for p, n in sorted(counts.items()))
            self.query_one("#status", Static).update(
                f"{len(rows)} affaire(s) ouverte(s)  {summary}   — running (q abandons)"
            )

    def _render_board(self, rows: list[BoardRow]) -> None:
        table = self.query_one("#board", DataTable)
        order = ["P0", "P1", "P2", "P3", "NR"]
        rows = sorted(rows, key=lambda r: (order.index(priority_of(r)), r.opened_at or ""))
        cells: list[tuple[str, list[Any]]] = [
            (r.case_id, [badge(priority_of(r)), Text(short_case(r.case_id)), Text(r.site),
                         Text(", ".join(p.split("/", 1)[-1] for p in r.patients)),
                         news2_text(r.news2, r.news2_complete),
                         "–" if r.qsofa is None else str(r.qsofa),
                         Text("; ".join(r.reasons[:3]))])
            for r in rows
        ]  # fmt: skip
        with self.batch_update():
            table.clear()
            for key, values in cells:
                table.add_row(*values, key=key)
