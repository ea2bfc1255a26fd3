"""The Textual apps: the régulation console and the EHPAD nurse station.

A thin layer over :mod:`console.services`; the only package of ours that imports Textual.
"""

from console.tui._app import RegulationApp, SamuApp
from console.tui._backend import Backend, DemoAccount
from console.tui._board_model import BoardModel, NewsRing, priority_of
from console.tui._replay import ReplayApp, ReplayHooks, ReplayProgress
from console.tui._station import RosterEntry, SerialPort, StationApp, load_roster

__all__ = [
    "Backend",
    "BoardModel",
    "DemoAccount",
    "NewsRing",
    "RegulationApp",
    "ReplayApp",
    "ReplayHooks",
    "ReplayProgress",
    "RosterEntry",
    "SamuApp",
    "SerialPort",
    "StationApp",
    "load_roster",
    "priority_of",
]
