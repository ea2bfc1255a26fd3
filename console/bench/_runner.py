"""Runs every benchmark, prints one JSON object each, keeps the history in bench/results/.

Each benchmark is a function ``(rows: int | None) -> dict`` living beside the code it
measures; this module only knows their import paths, so adding one is one line here.
Machines here are 2-core and noisy: benchmarks report ratios to a baseline measured in
the same run, which hold where absolute times drift.

Where results go, and why there: the history stays in ``bench/results/`` by default, as
performance.md and the README say (``samu bench --results-dir DIR`` chooses another
folder, ``--no-save`` none), but the folder's result files are ignored by git
(``.gitignore``: ``bench/results/*`` except its README). Writing them elsewhere by
default (a user cache directory) would hide the history from the person who ran the
benchmark and break the documented place; committing them would make every ``make
bench`` leave the work tree dirty with machine-specific figures. Ignoring them keeps
both: the history accumulates where it is documented, and a result worth keeping is
committed on purpose (``git add -f``), as ``bench/results/README.md`` explains.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BenchFn = Callable[[], dict[str, Any]]

#: name → "module:function"; the function takes no argument and returns the figures.
BENCHMARKS: dict[str, str] = {
    "decode": "console.bench.decode:run",
    "triage": "console.triage.bench:run_default",
    "store": "console.records.bench:run",
    "sim": "firmware_sim.bench:run",
    "ingest": "console.services.bench:run",
    "replay": "console.bench.replay:run",
    "board": "console.bench.board:run",
    "startup": "console.bench.startup:run",
    "alarm": "console.bench.alarm:run",
}


def _load(target: str) -> BenchFn:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    fn: BenchFn = getattr(module, attr)
    return fn


def run_all(
    names: list[str] | None = None, results_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Run the named benchmarks (all by default), print each result as a JSON line.

    Results are also appended to ``results_dir/<date>.jsonl`` (UTC date) so regressions
    show over time; in ``bench/results/`` those files are ignored by git (module
    docstring).
    """
    selected = names or list(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        raise KeyError(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    results: list[dict[str, Any]] = []
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    path = None if results_dir is None else results_dir / f"{stamp[:10]}.jsonl"
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
    for name in selected:
        started = time.perf_counter()
        result = _load(BENCHMARKS[name])()
        result.setdefault("benchmark", name)
        result["wall_s"] = round(time.perf_counter() - started, 3)
        result["at"] = stamp
        result["machine"] = (
            f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}"
        )
        print(json.dumps(result, ensure_ascii=False), flush=True)
        results.append(result)
        if path is not None:
            # Appended as each benchmark ends: one that fails later loses no result.
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(result, ensure_ascii=False) + "\n")
    if path is not None and results:
        print(f"results appended to {path}", file=sys.stderr)
    return results
