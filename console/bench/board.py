"""``samu bench board``: the régulation console under a full board (issue 12).

performance.md: 500 open cases, 2 500 devices at 1 Hz, the console headless
(``App.run_test``); targets: event-loop lag p99 < 50 ms and less than one core.

What runs, all real:

* **the feeder** — a separate process hosting the régulation core
  (:class:`~console.services.RegulationCore`) on a fresh SQLite file, as ``samu hub``
  does: every second each of the 2 500 enrolled devices (five per resident: oximeter,
  ECG patch, blood-pressure cuff, thermometer, glucometer) sends one signed vitals
  envelope, committed through the real ingest in batches of the hub's ``batch_max``,
  then the triage tick and the store's tick. The residents' vitals drift slowly (each
  on its own phase), so NEWS2 scores and priorities move and the board changes every
  second. Before the timed part the feeder replays a coarse past (:data:`PRELUDE_S`,
  one round every :data:`PRELUDE_STEP_S`) whose first round puts every resident at P0
  or P1, which opens its case; by the time the console starts, the de-escalation hold
  has run out and priorities move both ways.
* **the console** — this process: the real :class:`~console.tui.RegulationApp` on the
  same database through its own :class:`~console.services.RegulationService`, built as
  ``samu console --db`` builds it when no broker is configured (the board re-read every
  two seconds, database calls on one worker thread), headless (``App.run_test``), signed
  in as a régulateur by typing the id, password and TOTP code. The headless driver
  normally skips turning each frame into terminal escape sequences; the app here is a
  subclass that does not (its output is discarded), so the whole render is counted.

Measured over :data:`DEFAULT_SECONDS` once the board shows every case: the **event-loop
lag** — a probe task sleeps :data:`PROBE_S` in the app's event loop and records how late
it wakes (p50, p99, max) — and the **CPU** of the console process (``getrusage``: the
event loop, the database worker thread, everything in it, but nothing of the feeder,
which is another process), in cores; the event loop thread's own share is reported too.
The feeder's achieved rate is reported beside (``feeder_msg_per_s``): on a 2-core
machine it competes with the console for the CPU, as a hub on the same machine would.

Sizes: ``SAMU_BENCH_BOARD_CASES`` (default 500; five devices each),
``SAMU_BENCH_BOARD_SECONDS`` (default 45).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

TARGET_LAG_P99_MS: Final = 50.0
TARGET_CPU_CORES: Final = 1.0
DEFAULT_CASES: Final = 500
DEFAULT_SECONDS: Final = 45.0
#: The probe's sleep: how often the event loop's responsiveness is sampled.
PROBE_S: Final = 0.05
#: Devices per resident, and what each sends (LOINC code, unit) every second.
DEVICE_KINDS: Final = (
    "pulse_oximeter",
    "ecg_patch",
    "blood_pressure_monitor",
    "thermometer",
    "glucometer",
)
#: The feeder's coarse past (s): longer than the de-escalation hold (120 s by default).
PRELUDE_S: Final = 130
PRELUDE_STEP_S: Final = 10
#: The board must show every case within this long after sign-in.
LOAD_TIMEOUT_S: Final = 120.0
SETTLE_S: Final = 3.0
PASSWORD: Final = "bench board correct horse staple"  # noqa: S105 - a throwaway account
_AUDIT = {"actor": "system:bench", "role": "system", "terminal": "bench"}


# ---------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class Device:
    """One enrolled device and its key, as the key file lists it."""

    site: str
    device: str
    kind: str
    patient: str
    key: bytes
    #: The resident's index (its physiology's phase).
    resident: int


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def enrol_fleet(db: Path, keys: Path, residents: int, *, site_size: int = 50) -> list[Device]:
    """Enrol ``residents`` × 5 devices in a fresh database; write their keys to ``keys``."""
    from console.ingest import Sender, write_key_file
    from console.records import AuditContext
    from console.services import open_services
    from console.settings import Settings

    senders = [
        Sender(f"ehpad-{r // site_size:03d}", f"{kind[:4]}-{r:04d}", kind, f"res-{r:04d}")
        for r in range(residents)
        for kind in DEVICE_KINDS
    ]
    with open_services(Settings(db=db), create=True) as services:
        enrolled = services.devices.enrol(AuditContext(**_AUDIT), senders, now=datetime.now(UTC))
    write_key_file(keys, [(s, k) for s, k, _ in enrolled])
    return load_fleet(keys)


def load_fleet(keys: Path) -> list[Device]:
    """The devices of a key file written by :func:`enrol_fleet`."""
    out = []
    for k in json.loads(keys.read_text())["keys"]:
        out.append(
            Device(
                site=k["site"],
                device=k["device"],
                kind=k["kind"],
                patient=k["patient"],
                key=_b64decode(k["key"]),
                resident=int(k["patient"].rsplit("-", 1)[-1]),
            )
        )
    return out


def observations(device: Device, t: float, *, sick: float = 0.0) -> list[tuple[str, float, str]]:
    """What ``device`` measures at ``t`` (epoch s): (LOINC code, value, unit).

    Every resident drifts on a slow wave of its own phase (period 5 min) between NEWS2
    ≈ 2 and ≈ 8, with a little noise, so scores and priorities move. ``sick`` (0–1)
    pushes the values towards P0 on top of the wave: at 1 every resident is at P0/P1
    (a single reading opens the case), at 0 the wave alone.
    """
    r = device.resident
    wave = math.sin(2 * math.pi * t / 300.0 + r * 0.37)
    jitter = math.sin(t * 1.7 + r) * 0.6
    if device.kind == "pulse_oximeter":
        return [
            ("59408-5", round(95.0 - 1.5 * wave + jitter - 6 * sick), "%"),
            ("8867-4", round(92.0 + 12 * wave + 3 * jitter + 20 * sick), "/min"),
        ]
    if device.kind == "ecg_patch":
        return [
            ("8867-4", round(92.0 + 12 * wave + 3 * jitter + 20 * sick), "/min"),
            ("9279-1", round(20.0 + 2.5 * wave + jitter + 6 * sick), "/min"),
        ]
    if device.kind == "blood_pressure_monitor":
        systolic = round(112.0 - 8 * wave + 2 * jitter - 25 * sick)
        return [("8480-6", systolic, "mm[Hg]"), ("8462-4", round(systolic * 0.6), "mm[Hg]")]
    if device.kind == "thermometer":
        return [("8310-5", round(38.0 + 0.5 * wave + 0.1 * jitter, 1), "Cel")]
    return [("41653-7", round(120.0 + 10 * wave), "mg/dL")]


def envelope(device: Device, seq: int, t: float, *, sick: float = 0.0) -> tuple[str, bytes]:
    """One signed vitals envelope of ``device`` at ``t``: (topic, bytes), as a gateway
    publishes it (signed as JSON data: the same canonical bytes and MAC as a model)."""
    return vitals_envelope(device, seq, t, observations(device, t, sick=sick))


def vitals_envelope(
    device: Device, seq: int, t: float, values: Sequence[tuple[str, float, str]]
) -> tuple[str, bytes]:
    """A signed vitals envelope of ``device`` at ``t`` carrying ``values`` (LOINC code,
    value, UCUM unit): (topic, bytes)."""
    from protocols import seal_envelope
    from protocols.topics import device_topic

    at = datetime.fromtimestamp(t, UTC).isoformat()
    data = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "kind": "vitals",
        "site": device.site,
        "device": device.device,
        "seq": seq,
        "sent": at,
        "body": {
            "v": 1,
            "patient": device.patient,
            "observations": [
                {"code": c, "value": v, "unit": u, "time": at, "method": "device"}
                for c, v, u in values
            ],
        },
    }
    return device_topic(device.site, device.device, "vitals"), seal_envelope(data, device.key)


# ---------------------------------------------------------------------- the feeder


def feed(db: Path, keys: Path, stop: Path, stats: Path) -> None:
    """The feeder process (see the module docstring): until ``stop`` exists, every
    device sends once a second into the core on ``db``; ``stats`` holds its counters."""
    from console.ingest import Incoming
    from console.services import RegulationCore, open_services
    from console.settings import Settings

    fleet = load_fleet(keys)
    seq = int(time.time() * 1000)
    with open_services(Settings(db=db)) as services:
        batch_max = services.settings.hub.batch_max
        core = RegulationCore(services, now=time.time())

        def step(now: float, sick: float) -> int:
            nonlocal seq
            seq += 1
            items = [Incoming(*envelope(d, seq, now, sick=sick), now) for d in fleet]
            got = 0
            for i in range(0, len(items), batch_max):
                got += len(core.receive(items[i : i + batch_max]).events)
            return got + len(core.tick(now))

        # The past, on a coarse clock: every resident presented at P0/P1 (which opens
        # its case) PRELUDE_S ago, then the wave every PRELUDE_STEP_S; by now the
        # de-escalation hold has run out, so priorities move from the first second on.
        for k, past in enumerate(range(PRELUDE_S, 0, -PRELUDE_STEP_S)):
            step(time.time() - past, 1.0 if k == 0 else 0.0)
        services.store.tick()
        started = time.monotonic()
        rounds = sent = events = late_rounds = 0
        busy = 0.0
        while not stop.exists():
            due = started + rounds
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:
                late_rounds += 1
            t0 = time.monotonic()
            events += step(time.time(), 0.0)
            services.store.tick()
            sent += len(fleet)
            rounds += 1
            busy += time.monotonic() - t0
            (cases,) = services.store.fetchone(
                "SELECT count(*) FROM cases WHERE status IN ('PROGRAM', 'ACTIF')"
            )
            elapsed = time.monotonic() - started
            stats.write_text(
                json.dumps(
                    {
                        "rounds": rounds,
                        "sent": sent,
                        "events": events,
                        "cases_open": cases,
                        "elapsed_s": elapsed,
                        "busy_s": busy,
                        "late_rounds": late_rounds,
                        "cpu_s": time.process_time(),
                    }
                )
            )


def feeder_main() -> None:
    """``python -c 'from console.bench.board import feeder_main; feeder_main()' DB KEYS
    STOP STATS``."""
    db, keys, stop, stats = (Path(a) for a in sys.argv[1:5])
    feed(db, keys, stop, stats)


def start_feeder(db: Path, keys: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """The feeder as its own process: (process, stop file, stats file)."""
    stop, stats = tmp / "feeder.stop", tmp / "feeder.json"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    code = "from console.bench.board import feeder_main; feeder_main()"
    proc = subprocess.Popen(  # noqa: S603 - this interpreter and our own module
        [sys.executable, "-c", code, str(db), str(keys), str(stop), str(stats)], env=env
    )
    return proc, stop, stats


def read_stats(stats: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(stats.read_text())
    except (OSError, ValueError):
        return {}
    return data


# ---------------------------------------------------------------------- the console


def totp_now(otpauth_uri: str) -> str:
    """The current TOTP code of an account (what its authenticator app shows)."""
    import pyotp

    otp = pyotp.parse_uri(otpauth_uri)
    assert isinstance(otp, pyotp.TOTP)
    return str(otp.now())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _probe(lags: list[float], stop: asyncio.Event) -> None:
    """How late the event loop wakes a task sleeping :data:`PROBE_S` (ms)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(PROBE_S)
        lags.append(max(0.0, (time.perf_counter() - t0 - PROBE_S) * 1000))


def _app_class() -> Any:
    """The real console, rendering every frame to terminal escape sequences although
    the driver is headless (the headless driver discards them)."""
    from console.tui import RegulationApp

    class RenderingApp(RegulationApp):
        @property
        def is_headless(self) -> bool:
            return False

    return RenderingApp


async def drive_console(
    db: Path,
    user: str,
    otpauth_uri: str,
    *,
    cases: int,
    seconds: float,
    size: tuple[int, int] = (200, 60),
) -> dict[str, Any]:
    """Sign in, wait for the full board, then measure for ``seconds`` (see the module
    docstring). Returns the lag samples' summary and the CPU figures."""
    from textual.widgets import DataTable

    from console.services import RegulationService, open_services
    from console.settings import Settings
    from console.tui import Backend

    writer = ThreadPoolExecutor(1, thread_name_prefix="samu-console")

    async def run_db(fn: Any, *a: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(writer, fn, *a)

    out: dict[str, Any] = {}
    with open_services(Settings(db=db)) as services:
        backend = Backend(
            services=services,
            api=RegulationService(services, run=run_db),
            live=False,
            stop=lambda: writer.shutdown(wait=False),
            notes=[f"database: {db} (board re-read every 2 s)"],
        )
        app = _app_class()(backend)
        async with app.run_test(size=size) as pilot:

            async def until(condition: Any, timeout: float, what: str) -> None:
                deadline = time.monotonic() + timeout
                while not condition():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"board benchmark: {what} not reached in {timeout} s")
                    await pilot.pause(0.05)

            # Screens are found by what they show: console.tui exports no screen class.
            await until(lambda: bool(app.screen.query("#user")), 30, "login screen")
            code = totp_now(otpauth_uri)
            await pilot.press(*user, "tab", *PASSWORD, "tab", *code, "enter")
            signed_in = time.monotonic()

            def loaded() -> bool:
                model = getattr(app.screen, "model", None)
                tables = app.screen.query(DataTable)
                return (
                    model is not None
                    and len(model.rows) >= cases
                    and any(t.id == "board" and t.row_count >= cases for t in tables)
                )

            await until(loaded, LOAD_TIMEOUT_S, f"a board of {cases} cases")
            out["board_loaded_s"] = round(time.monotonic() - signed_in, 2)
            await pilot.pause(SETTLE_S)
            board: Any = app.screen
            lags: list[float] = []
            stop = asyncio.Event()
            cpu0, loop_cpu0, wall0 = _rusage_cpu(), time.thread_time(), time.perf_counter()
            probe = asyncio.create_task(_probe(lags, stop))
            await asyncio.sleep(seconds)
            stop.set()
            await probe
            wall = time.perf_counter() - wall0
            out["cpu_cores"] = (_rusage_cpu() - cpu0) / wall
            out["cpu_loop_thread_cores"] = (time.thread_time() - loop_cpu0) / wall
            out["duration_s"] = wall
            out["lags"] = lags
            out["rows_shown"] = len(board.model.rows)
            out["alarms_raised"] = len(board.alarms)
            await app.action_quit()
    return out


def run(cases: int | None = None, seconds: float | None = None) -> dict[str, Any]:
    """The ``board`` benchmark (``samu bench board``); sizes from the arguments or
    ``SAMU_BENCH_BOARD_CASES`` / ``SAMU_BENCH_BOARD_SECONDS``."""
    from console.auth import LocalOperator
    from console.services import open_services
    from console.settings import Settings

    cases = cases or int(os.environ.get("SAMU_BENCH_BOARD_CASES", DEFAULT_CASES))
    seconds = seconds or float(os.environ.get("SAMU_BENCH_BOARD_SECONDS", DEFAULT_SECONDS))
    with tempfile.TemporaryDirectory(prefix="samu-bench-board-") as name:
        tmp = Path(name)
        db, keys = tmp / "board.db", tmp / "keys.json"
        fleet = enrol_fleet(db, keys, cases)
        with open_services(Settings(db=db)) as services:
            enrolment = services.accounts.create_user(
                LocalOperator("bench", "bench"), "drbench", ["regulateur"], PASSWORD
            )
        proc, stop, stats = start_feeder(db, keys, tmp)
        try:
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while read_stats(stats).get("cases_open", 0) < cases:
                if proc.poll() is not None:
                    raise RuntimeError(f"board benchmark: the feeder exited ({proc.returncode})")
                if time.monotonic() > deadline:
                    raise RuntimeError("board benchmark: the cases did not all open")
                time.sleep(0.2)
            before = read_stats(stats)
            console = asyncio.run(
                drive_console(db, "drbench", enrolment.otpauth_uri, cases=cases, seconds=seconds)
            )
            after = read_stats(stats)
        finally:
            stop.touch()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    lags = console.pop("lags")
    p50, p99 = _percentile(lags, 0.5), _percentile(lags, 0.99)
    lag_max = max(lags) if lags else float("nan")
    cpu = console["cpu_cores"]
    feeder_wall = after.get("elapsed_s", 0.0) - before.get("elapsed_s", 0.0)
    feeder_sent = after.get("sent", 0) - before.get("sent", 0)
    feeder_cpu = after.get("cpu_s", 0.0) - before.get("cpu_s", 0.0)
    ratio_lag = TARGET_LAG_P99_MS / p99 if p99 > 0 else math.inf
    ratio_cpu = TARGET_CPU_CORES / cpu if cpu > 0 else math.inf
    ratio = min(ratio_lag, ratio_cpu)
    return {
        "benchmark": "board",
        "unit": "ms",
        "value": round(p99, 1),
        "baseline": "targets: event-loop lag p99 < 50 ms, console process < 1 core "
        "(performance.md); ratio = target / measured",
        "ratio": round(ratio, 2),
        "ratio_lag": round(ratio_lag, 2),
        "ratio_cpu": round(ratio_cpu, 2),
        "meets_targets": bool(ratio >= 1),
        "mode": "samu console --db (board re-read every 2 s), feeder core in its own process",
        "lag_p50_ms": round(p50, 1),
        "lag_p99_ms": round(p99, 1),
        "lag_max_ms": round(lag_max, 1),
        "lag_mean_ms": round(statistics.fmean(lags), 1) if lags else None,
        "lag_samples": len(lags),
        "probe_s": PROBE_S,
        "cpu_cores": round(cpu, 3),
        "cpu_loop_thread_cores": round(console["cpu_loop_thread_cores"], 3),
        "incidents": console["rows_shown"],
        "devices": len(fleet),
        "alarms_raised": console["alarms_raised"],
        "board_loaded_s": console["board_loaded_s"],
        "duration_s": round(console["duration_s"], 1),
        "feeder_msg_per_s": round(feeder_sent / feeder_wall) if feeder_wall > 0 else None,
        "feeder_cpu_cores": round(feeder_cpu / feeder_wall, 3) if feeder_wall > 0 else None,
        "feeder_late_rounds": after.get("late_rounds", 0) - before.get("late_rounds", 0),
        "targets": {"lag_p99_ms": TARGET_LAG_P99_MS, "cpu_cores": TARGET_CPU_CORES},
    }
