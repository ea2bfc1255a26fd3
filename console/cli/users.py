"""``samu users|retention|rights``: placeholder until the records issue lands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add this group's subcommands (none yet)."""
