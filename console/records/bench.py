"""``samu bench store``: audited appends per second and ``audit verify`` time for 1 M events.

Two append figures, both through :meth:`Store.append_audit_many` in batches of
``batch`` events with one commit each (``synchronous=FULL``, checkpoints on):

* ``appends_per_s`` — the store's path: events already built by their producers
  (hashing, SQL insert, commit, checkpoints). This is the figure the ≥ 50 k/s target is
  about: producers build their events in their own tasks.
* ``appends_with_model_per_s`` — the same plus building each pydantic
  :class:`AuditEvent` (validation, canonical pre-rendering) in the writer's thread.

The trail is then extended to ``verify_events`` events and verified with
:func:`verify_trail` (the code behind ``samu audit verify``); target < 5 s for 1 M.
``verify_cpu_s`` (CPU seconds of the verifier and its worker processes) is reported too:
on a busy shared machine it is the stable figure, the wall time depends on neighbours.
Ratios: ``value / target`` for throughput (≥ 1 is good) and ``target / value`` for time
(≥ 1 is good), so every ratio reads "how many times the target".
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

APPENDS_TARGET_PER_S = 50_000.0
VERIFY_TARGET_S = 5.0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (verify forks workers).

    Reported beside the wall time: on a shared 2-core machine the wall time mostly
    measures the neighbours, the CPU time measures the work.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _events(count: int, start: int = 0) -> list[Any]:
    from console.records._audit import AuditEvent

    return [
        AuditEvent(
            actor="user:jdupont",
            role="regulateur",
            terminal="regul-01/pts/3",
            action="observation.read",
            object=f"patient:{(start + i) % 5000}",
            detail={"case": f"case-{(start + i) // 7}", "observations": (start + i) % 13},
        )
        for i in range(count)
    ]


def _fill(store: Any, total: int) -> None:
    """Append benchmark events until the trail holds ``total`` events."""
    filler = _events(10_000)
    current = store.conn.execute("SELECT max(seq) FROM audit_events").fetchone()[0] or 0
    while current < total:
        size = min(len(filler), total - current)
        current = store.append_audit_many(filler[:size])[-1]


def build_trail(db: Path, events: int) -> None:
    """A trail of ``events`` benchmark events at ``db`` (checkpoints and key beside it),
    like the one the verify figure is measured on: for profiling the verifier alone."""
    from console.records._store import Store

    with Store.open(db) as store:
        _fill(store, events)


def run(
    append_events: int | None = None,
    verify_events: int | None = None,
    batch: int = 5000,
    directory: Path | None = None,
    rounds: int | None = None,
) -> dict[str, Any]:
    """Run the store benchmark; sizes default to 200 k appends and 1 M verified events.

    Both timed figures are the median of ``rounds`` (default 3) measurements, with the
    fastest and slowest beside it: on the shared 2-core machine one measurement swings
    by ±30 % with the neighbours' load, and one unlucky moment should neither pass nor
    fail a target. ``SAMU_BENCH_STORE_APPENDS`` / ``SAMU_BENCH_STORE_VERIFY`` /
    ``SAMU_BENCH_STORE_ROUNDS`` override the sizes (tests use small ones).
    """
    from console.records._store import Store
    from console.records._verify import verify_trail

    appends = append_events or int(os.environ.get("SAMU_BENCH_STORE_APPENDS", "200000"))
    total = verify_events or int(os.environ.get("SAMU_BENCH_STORE_VERIFY", "1000000"))
    repeat = rounds or int(os.environ.get("SAMU_BENCH_STORE_ROUNDS", "3"))
    append_rates: list[float] = []
    verify_runs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="samu-bench-store-", dir=directory) as tmp:
        db = Path(tmp) / "bench.db"
        store = Store.open(db)
        try:
            prebuilt = _events(batch)
            for _ in range(repeat):
                done = 0
                started = time.perf_counter()
                while done < appends:
                    store.append_audit_many(prebuilt[: min(batch, appends - done)])
                    done += min(batch, appends - done)
                append_rates.append(appends / (time.perf_counter() - started))

            done = 0
            started = time.perf_counter()
            while done < appends:
                size = min(batch, appends - done)
                store.append_audit_many(_events(size, done))
                done += size
            model_per_s = appends / (time.perf_counter() - started)

            _fill(store, total)
        finally:
            store.close()
        for _ in range(repeat):
            cpu_before = _cpu_seconds()
            report = verify_trail(db)
            verify_runs.append((report.seconds, _cpu_seconds() - cpu_before))
            if report.status != "intact":
                raise RuntimeError(f"benchmark trail does not verify: {report.verdict()}")
        db_bytes = db.stat().st_size

    appends_per_s = statistics.median(append_rates)
    verify_s = statistics.median(seconds for seconds, _ in verify_runs)
    verify_cpu_s = statistics.median(cpu for _, cpu in verify_runs)
    per_million = report.events / 1_000_000
    return {
        "benchmark": "store",
        "rounds": repeat,
        "appends_per_s": round(appends_per_s),
        "appends_per_s_range": [round(min(append_rates)), round(max(append_rates))],
        "appends_with_model_per_s": round(model_per_s),
        "appends_unit": "events/s",
        "appends_baseline": f"target {APPENDS_TARGET_PER_S:.0f} events/s (batches of {batch})",
        "appends_ratio": round(appends_per_s / APPENDS_TARGET_PER_S, 2),
        "appends_with_model_ratio": round(model_per_s / APPENDS_TARGET_PER_S, 2),
        "verify_events": report.events,
        "verify_s": round(verify_s, 3),
        "verify_s_range": [
            round(min(s for s, _ in verify_runs), 3),
            round(max(s for s, _ in verify_runs), 3),
        ],
        "verify_cpu_s": round(verify_cpu_s, 3),
        "verify_unit": "s",
        "verify_baseline": f"target < {VERIFY_TARGET_S:.0f} s for 1 000 000 events",
        "verify_ratio": round(VERIFY_TARGET_S / verify_s * per_million, 2),
        "db_bytes": db_bytes,
    }
