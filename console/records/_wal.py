"""Copying the write-ahead log back into the database file, off the writer's thread.

With ``synchronous=FULL`` every commit already makes its pages durable in the WAL.
SQLite's automatic checkpoint then copies them into the database file (and fsyncs it)
inside whichever commit crosses 1 000 pages, on the writer's thread: the audited append
path stalls for that copy while the second core sits idle. :class:`WalCheckpointer`
does the copy from its own connection and thread instead (``PRAGMA
wal_checkpoint(PASSIVE)``, which never blocks the writer or the readers); the writer
turns its automatic checkpoint off while the thread runs. In the store benchmark that is
~5-25 % more appends per second.

Bounds, because a background copy can fall behind a writer that never pauses:

* when the log holds more than ``restart_frames`` frames the thread asks for a
  ``RESTART`` checkpoint, which waits for the current write and makes the next one start
  the log afresh, so the log cannot grow without limit;
* ``journal_size_limit`` (set by the store) truncates the file after such a restart;
* if the thread dies, :meth:`Store.transaction` sees it after the next commit and turns
  the writer's automatic checkpoint back on: never worse than SQLite's default.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: How often the thread copies the log back (seconds).
DEFAULT_INTERVAL_S = 0.25
#: Log size (frames, i.e. pages) past which the thread restarts the log: 256 MiB with
#: 16 KiB pages, about 10 s of sustained appends at the benchmark's rate.
DEFAULT_RESTART_FRAMES = 16_384


class WalCheckpointer:
    """A daemon thread checkpointing one database's WAL from its own connection."""

    def __init__(
        self,
        path: Path,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        restart_frames: int = DEFAULT_RESTART_FRAMES,
        busy_timeout_ms: int = 10_000,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self.checkpoints = 0  # completed runs, for tests and diagnostics
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def run_once(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (RESTART past the bound): ``(busy, log, copied)``."""
        busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= self.restart_frames:
            busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        self.checkpoints += 1
        return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except sqlite3.Error as exc:  # busy past the timeout, disk full: try again
                log.warning("background WAL checkpoint of %s failed: %s", self.path, exc)

    def close(self) -> None:
        """Stop the thread (after its current copy) and close its connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._conn.close()
