"""``samu bench``: the benchmark suite (``make bench``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from console.cli._main import EXIT_OK, UsageError


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "bench", parents=[common], help="run the benchmark suite, one JSON object per benchmark"
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=Path("bench/results"),
        help="where to append the results history (default: bench/results)",
    )
    p.add_argument("--no-save", action="store_true", help="do not append to the results history")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from console.bench import run_all

    try:
        run_all(args.names or None, None if args.no_save else args.results_dir)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from exc
    return EXIT_OK
