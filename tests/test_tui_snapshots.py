"""SVG snapshots of the screens whose rendering holds no clock (pytest-textual-snapshot;
Textual is pinned exactly, so a changed snapshot is a changed screen). Regenerate with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the SVG diff."""

from __future__ import annotations

from pathlib import Path

from console.services import RegulationService, open_services
from console.settings import Settings
from console.tui import Backend, RegulationApp, StationApp


def test_the_console_login_screen(snap_compare, tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        backend = Backend(services=services, api=RegulationService(services),
                          notes=["database: samu.db"])  # fmt: skip
        assert snap_compare(RegulationApp(backend), terminal_size=(100, 32))


def test_the_station_login_screen(snap_compare, tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        backend = Backend(services=services, api=RegulationService(services))
        app = StationApp(backend, site="ehpad-les-lilas", outbox=None)
        assert snap_compare(app, terminal_size=(100, 32))
