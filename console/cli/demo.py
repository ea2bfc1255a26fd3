"""``samu demo``: placeholder until its issue lands; registers nothing yet."""

from __future__ import annotations

import argparse


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add this group's subcommands (none yet)."""
