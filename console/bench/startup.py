"""``samu bench startup``: ``samu console`` to its first frame (issue 12).

performance.md: ``samu console`` to first frame < 1.5 s. Each run spawns the real
command, ``samu console --db <fresh database>`` (the entry point installed beside this
interpreter), on a fresh pseudo-terminal of 160 × 45 with ``TERM=xterm-256color``, and
reads what it draws; the clock runs from just before the spawn until the login screen's
title (``connexion``) appears in the output, escape sequences stripped — the first frame
the physician can act on. The console is then quit with ``ctrl+q`` (killed if it does
not go). Each run gets its own fresh database (created beforehand, as ``samu users add``
would leave it: schema, master key, one account), so no run reuses another's files; the
interpreter's own files stay in the page cache after the first run, as on a terminal
used all day, so the first run is reported apart (``first_run_s``).

For scale, the same pseudo-terminal measures ``samu console --help`` too
(``cli_floor_s``, median): the interpreter and the command line alone, below which no
console can start.

``ratio`` = 1.5 s / the median. ``SAMU_BENCH_STARTUP_RUNS`` sets the repetitions
(default 7).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any, Final

TARGET_S: Final = 1.5
DEFAULT_RUNS: Final = 7
#: What the login screen draws (its title line: "SAMU — régulation — connexion").
MARKER: Final = "connexion"
TIMEOUT_S: Final = 30.0
SIZE: Final = (45, 160)
_ANSI = re.compile(rb"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def samu_command() -> list[str]:
    """The installed ``samu`` entry point beside this interpreter, else ``-m console.cli``."""
    script = Path(sys.executable).with_name("samu")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "console.cli"]


def visible(raw: bytes) -> str:
    """The text a terminal would show, escape sequences removed (positions lost)."""
    return _ANSI.sub(b"", raw).decode("utf-8", "replace")


def time_to_marker(argv: list[str], marker: str, *, cwd: Path) -> tuple[float, bytes]:
    """Spawn ``argv`` on a fresh pty; seconds until ``marker`` is visible (or the
    process ends: then ``marker`` must be in what it printed). Returns (seconds, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[0], SIZE[1], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(SIZE[1]), "LINES": str(SIZE[0])}
    env.pop("TEXTUAL", None)
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own command
        argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
    )
    os.close(slave)
    out = bytearray()
    found: float | None = None
    try:
        deadline = started + TIMEOUT_S
        while found is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if chunk:
                    out += chunk
                    if marker in visible(bytes(out)):
                        found = time.perf_counter() - started
                        break
                elif proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
        if found is None:
            raise RuntimeError(
                f"startup benchmark: {marker!r} never appeared; the output ends "
                f"{visible(bytes(out))[-300:]!r}"
            )
        return found, bytes(out)
    finally:
        _quit(proc, master)
        os.close(master)


def _quit(proc: subprocess.Popen[bytes], master: int) -> None:
    """ctrl+q, then SIGTERM, then SIGKILL; drain the terminal meanwhile."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            os.write(master, b"\x11")
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
        if proc.poll() is not None:
            return
    proc.wait()


def fresh_database(path: Path) -> None:
    """A new database as ``samu users add`` leaves it: schema, master key, one account."""
    from console.auth import LocalOperator
    from console.services import open_services
    from console.settings import Settings

    with open_services(Settings(db=path), create=True) as services:
        services.accounts.create_user(
            LocalOperator("bench", "bench"), "drbench", ["regulateur"], "bench startup pass phrase"
        )


def run(runs: int | None = None) -> dict[str, Any]:
    """The ``startup`` benchmark (``samu bench startup``); repetitions from the argument
    or ``SAMU_BENCH_STARTUP_RUNS``."""
    runs = runs or int(os.environ.get("SAMU_BENCH_STARTUP_RUNS", DEFAULT_RUNS))
    samu = samu_command()
    times: list[float] = []
    floors: list[float] = []
    with tempfile.TemporaryDirectory(prefix="samu-bench-startup-") as name:
        tmp = Path(name)
        for i in range(runs):
            db = tmp / f"run-{i}" / "samu.db"
            db.parent.mkdir()
            fresh_database(db)
            seconds, _ = time_to_marker([*samu, "console", "--db", str(db)], MARKER, cwd=db.parent)
            times.append(seconds)
        for _ in range(min(runs, 3)):
            seconds, _ = time_to_marker([*samu, "console", "--help"], "usage", cwd=tmp)
            floors.append(seconds)
    median = statistics.median(times)
    return {
        "benchmark": "startup",
        "unit": "s",
        "value": round(median, 3),
        "baseline": "target: first frame < 1.5 s (performance.md); ratio = 1.5 s / median",
        "ratio": round(TARGET_S / median, 2),
        "meets_targets": median < TARGET_S,
        "first_frame_s": round(median, 3),
        "first_frame_max_s": round(max(times), 3),
        "first_frame_min_s": round(min(times), 3),
        "first_run_s": round(times[0], 3),
        "runs": runs,
        "times_s": [round(t, 3) for t in times],
        "cli_floor_s": round(statistics.median(floors), 3),
        "command": f"{' '.join(samu)} console --db <fresh db>",
        "marker": MARKER,
        "terminal": f"{SIZE[1]}x{SIZE[0]} xterm-256color pty",
        "target_s": TARGET_S,
    }
