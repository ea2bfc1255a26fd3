"""Parser assembly and dispatch for ``samu``.

Each command group lives in its own module exposing ``register(subparsers, common)``;
``common`` is a parent parser carrying the global options so that ``--db``/``--config``
work both before the subcommand (``samu --db x.db users list``) and after it
(``samu audit verify --db x.db``), as the design notes use both forms.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2

#: Modules contributing subcommands, in the order shown by ``samu --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "console.cli.demo",
    "console.cli.console",
    "console.cli.station",
    "console.cli.protocols",
    "console.cli.sim",
    "console.cli.devices",
    "console.cli.hub",
    "console.cli.replay",
    "console.cli.capture",
    "console.cli.triage",
    "console.cli.cases",
    "console.cli.records",
    "console.cli.interop",
    "console.cli.users",
    "console.cli.bench",
)


class UsageError(Exception):
    """Bad command line or unusable input: reported in one line, exit code 2."""


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    parent.add_argument("--db", metavar="PATH", default=default, help="SQLite database file")
    parent.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="TOML configuration file (SAMU_* variables override)",
    )
    return parent


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("samu-teleregulation")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samu",
        description="SAMU télérégulation: devices, triage, records and the régulation console.",
        parents=[_common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"samu {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options(suppress=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:  # pragma: no cover - every subparser sets one
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        # Every command reads --config and SAMU_* the same way, whether it uses them or
        # not: a bad file or variable is one clear line everywhere, never ignored here
        # and a traceback there.
        from console.cli._context import settings_of

        settings_of(args)
        code: int = handler(args)
    except UsageError as exc:
        print(f"samu {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        return EXIT_OK
    return code


def entry() -> None:
    sys.exit(main())
