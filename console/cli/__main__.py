"""``python -m console.cli`` is ``samu`` (what ``samu station --serve`` spawns per browser)."""

from console.cli._main import entry

entry()
