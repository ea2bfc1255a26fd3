"""Replay benchmark: speed versus real time of each library scenario at ``--speed max``.

For every library scenario (``demo-garde`` included), one in-process replay into a fresh
store — the same core, ingest and triage as ``samu hub`` — timed on the wall clock;
``ratio`` is simulated seconds per wall second (how many times faster than real time).
Target (issue 13): at least 100× for ``load-200-ehpad`` (200 EHPADs × 5 devices at 1 Hz
for 10 minutes: 600 000 readings). ``SAMU_BENCH_REPLAY=name,name`` limits the set (the
load scenario alone takes a few minutes of CPU on a 2-core machine).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 100.0
LOAD = "load-200-ehpad"


def replay_ratio(name: str) -> dict[str, Any]:
    """One scenario at ``--speed max``: simulated and wall seconds, the ratio, the
    expectations met, the messages and observations stored."""
    import scenarios
    from console.records import Store
    from console.services import open_services
    from console.settings import Settings

    scenario = scenarios.load_scenario(name)
    with tempfile.TemporaryDirectory(prefix="samu-bench-replay-") as tmp:
        db = Path(tmp) / "bench.db"
        with open_services(Settings(db=db), create=True) as services:
            started = time.perf_counter()
            result = scenarios.InprocReplay(scenario, services).run()
            wall = time.perf_counter() - started
        with Store.open(db, readonly=True) as store:
            report = scenarios.evaluate(result, store, db)
            (observations,) = store.fetchone("SELECT count(*) FROM observations")
    simulated = float(scenario.scenario.duration)
    return {
        "scenario": name,
        "simulated_s": simulated,
        "wall_s": round(wall, 3),
        "ratio": round(simulated / wall, 1),
        "messages": result.received,
        "observations": observations,
        "met": report.met,
        "missed": report.missed,
    }


def run() -> dict[str, Any]:
    import scenarios

    wanted = [n for n in os.environ.get("SAMU_BENCH_REPLAY", "").split(",") if n]
    names = wanted or [p.stem for p in scenarios.library()]
    rows = [replay_ratio(n) for n in names]
    load = next((r for r in rows if r["scenario"] == LOAD), None)
    return {
        "benchmark": "replay",
        "scenarios": rows,
        "target_ratio": TARGET_RATIO,
        "load_ratio": load["ratio"] if load else None,
        "meets_target": None if load is None else load["ratio"] >= TARGET_RATIO,
    }
