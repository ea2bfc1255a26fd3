"""``samu triage score|bench``: the triage engine from the command line.

``score`` follows the contract of design note triage.md: CSV in (file or ``-`` for
stdin), CSV out (stdout, or ``-o`` written to a temporary file and renamed into place so
an interrupted run never leaves half a file nor loses the previous one; mode 0600),
exit 0 when every row scored, 1 when any row was bad (its reasons start with
``error:``), 2 on a usage error. The output columns are exactly the contract's; the
policy that scored the rows (``--policy`` or the shipped one) is named with its version
and SHA-256 on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from console.cli._output import atomic_output

if TYPE_CHECKING:
    from console.triage import Policy


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``samu triage score`` and ``samu triage bench``."""
    triage = sub.add_parser(
        "triage",
        parents=[common],
        help="score vital signs: NEWS2, qSOFA, shock index -> priority P0-P3",
        description="Vectorised triage (NEWS2 RCP 2017, qSOFA, shock index) per policy v1.",
    )
    commands = triage.add_subparsers(dest="triage_command", metavar="COMMAND", required=True)

    score = commands.add_parser(
        "score",
        parents=[common],
        help="score a CSV of vital signs",
        description=(
            "Input columns: id, resp_rate, spo2, spo2_scale (1|2), on_oxygen (0|1), "
            "systolic_bp, heart_rate, consciousness (A|C|V|P|U), temperature; an empty "
            "cell is missing; the file is comma-separated. Output columns: id, news2, "
            "news2_complete, news2_risk, qsofa, shock_index, priority, reasons; the policy "
            "(version and SHA-256) is named on stderr. Exit 0 ok, 1 when any row was bad "
            "(reasons start with 'error:'), 2 on a usage error."
        ),
    )
    score.add_argument("input", metavar="INPUT.csv", help="CSV file to score ('-' reads stdin)")
    score.add_argument(
        "-o", "--output", metavar="OUTPUT.csv", help="write the result here (default: stdout)"
    )
    score.add_argument(
        "--policy",
        metavar="FILE",
        help="triage policy TOML (default: the shipped policy_v1.toml)",
    )
    score.add_argument(
        "--chunk-rows",
        type=_positive,
        default=None,
        metavar="N",
        help="rows scored per chunk; memory is bounded by it (default: 32768)",
    )
    score.set_defaults(handler=_score)

    bench = commands.add_parser(
        "bench",
        parents=[common],
        help="benchmark the numpy engine against the oracle and the copy roofline",
        description="Prints one JSON object (rows/s, speed-up vs oracle, roofline fraction).",
    )
    bench.add_argument(
        "--rows", type=_positive, default=1_000_000, help="rows scored (default: 1000000)"
    )
    bench.add_argument(
        "--oracle-rows",
        type=_positive,
        default=None,
        metavar="N",
        help="rows given to the slow plain-Python oracle (default: min(rows, 50000))",
    )
    bench.add_argument("--seed", type=int, default=2017, help="data generator seed")
    bench.set_defaults(handler=_bench)


def _load_policy(path: str | None) -> Policy:
    from pydantic import ValidationError

    from console.triage import load_policy

    try:
        return load_policy(path)
    except FileNotFoundError:
        raise UsageError(f"policy file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"policy is a directory, not a TOML file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read policy {path}: {exc.strerror}") from None
    except ValidationError as exc:  # one line: the first problems, where they are
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'policy'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)[:3]
        ]
        more = exc.error_count() - len(problems)
        tail = f" (+{more} more)" if more > 0 else ""
        raise UsageError(f"invalid policy {path}: {'; '.join(problems)}{tail}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, UnicodeDecodeError, rule errors
        raise UsageError(f"invalid policy {path}: {' '.join(str(exc).split())}") from None


@contextmanager
def _input(name: str) -> Iterator[TextIO]:
    if name == "-":
        stream = io.TextIOWrapper(
            sys.stdin.buffer, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        try:
            yield stream
        finally:
            stream.detach()
        return
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"input is a directory, not a CSV file: {name}")
    if not path.is_file():
        raise UsageError(f"input file not found: {name}")
    try:
        fh = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from exc
    with fh:
        yield fh


@contextmanager
def _output(name: str | None) -> Iterator[TextIO]:
    """stdout, or a temporary file beside ``name`` renamed over it on success only
    (:func:`console.cli._output.atomic_output`)."""
    if name is None:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # stdout replaced by a text-only object (tests capturing it)
            yield sys.stdout
            return
        stream = io.TextIOWrapper(buffer, encoding="utf-8", errors="surrogateescape", newline="")
        try:
            yield stream
        finally:
            stream.flush()
            stream.detach()
        return
    # Vitals are health data: 0600; replaced whole or not at all (docs/cli.md).
    with atomic_output(
        Path(name), option="-o", private=True, newline="", errors="surrogateescape"
    ) as fh:
        yield fh


def _score(args: argparse.Namespace) -> int:
    from console.triage import DEFAULT_CHUNK_ROWS, CsvInputError, score_csv

    policy = _load_policy(args.policy)
    try:
        with _input(args.input) as src, _output(args.output) as dst:
            report = score_csv(src, dst, policy, chunk_rows=args.chunk_rows or DEFAULT_CHUNK_ROWS)
    except CsvInputError as exc:
        raise UsageError(f"{args.input}: {exc}") from exc
    print(
        f"samu triage score: {report.rows} row(s) scored with policy {policy.version} "
        f"(sha256 {policy.sha256})",
        file=sys.stderr,
    )
    if report.bad_rows:
        print(
            f"samu triage score: {report.bad_rows} of {report.rows} row(s) could not be scored "
            "(reasons start with 'error:')",
            file=sys.stderr,
        )
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    from console.triage.bench import run

    result = run(rows=args.rows, oracle_rows=args.oracle_rows, seed=args.seed)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return EXIT_OK
