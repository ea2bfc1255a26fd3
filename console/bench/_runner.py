"""Runs every benchmark, prints one JSON object each, keeps the history in bench/results/.

Each benchmark is a function ``(rows: int | None) -> dict`` living beside the code it
measures; this module only knows their import paths, so adding one is one line here.
Machines here are 2-core and noisy: benchmarks report ratios to a baseline measured in
the same run, which hold where absolute times drift.
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

    Results are also appended to ``results_dir/<date>.jsonl`` so regressions show over time.
    """
    selected = names or list(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        raise KeyError(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    results: list[dict[str, Any]] = []
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
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
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{stamp[:10]}.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            for r in results:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"results appended to {path}", file=sys.stderr)
    return results
