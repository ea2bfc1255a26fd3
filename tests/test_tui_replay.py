"""The tester's live view of ``samu replay``: the real engine on its own thread, the real
store, the real ReplayApp (Pilot); the view shows the clock, the board and the verdicts,
and the reports it hands back are the headless ones."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, RichLog

import scenarios
from console.auth import LocalOperator
from console.cli.replay import _scenarios
from console.services import RegulationService, open_services
from console.settings import Settings
from console.tui import ReplayApp, ReplayHooks

ICD = Path(scenarios.__file__).parent / "library" / "icd-shock-storm.toml"


async def until(pilot, condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def runner_for(files: list[Path], reports: list[Any]) -> Callable[[ReplayHooks], None]:
    args = argparse.Namespace(db=None, transport="inproc", json=False, junit=None)
    loaded = [scenarios.load_scenario(str(f)) for f in files]

    def run(hooks: ReplayHooks) -> None:
        _scenarios(args, loaded, None, None, hooks=hooks, collect=reports)
        hooks.ended(None)

    return run


def log_text(app: ReplayApp) -> str:
    return "\n".join(str(line.text) for line in app.query_one("#verdicts", RichLog).lines)


async def test_the_live_view_shows_the_board_and_each_verdict(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(ICD.read_text().replace('code = "shock_delivered"', 'code = "battery_eos"'))
    reports: list[Any] = []
    app = ReplayApp(runner_for([ICD, wrong], reports))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.done)
        await pilot.pause()
        text = log_text(app)
        assert "▶ icd-shock-storm" in text and "MISSED" in text
        assert "no battery_eos alert from icd-0007" in text
        # The last scenario's board stays on screen once its store has closed.
        board = app.query_one("#board", DataTable)
        assert board.row_count >= 1
        assert "replay finished" in str(app.query_one("#status").render())
    assert [r.missed for r in reports] == [0, 1]


def test_the_replay_board_refuses_a_real_store(tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        api = RegulationService(services)
        assert api.replay_board() == []
        services.accounts.create_user(
            LocalOperator("tester", "pts/test"), "drmartin", ["regulateur"],
            "correct horse battery staple",
        )  # fmt: skip
        with pytest.raises(PermissionError, match="has accounts"):
            api.replay_board()
