"""A throwaway Mosquitto on a free loopback port, for the embedded demo.

The demo must show the real path (devices → broker → hub), so when Debian's
``mosquitto`` binary is there it runs one of its own: bound to 127.0.0.1 only, anonymous
(nothing else can reach it), no persistence, in a private temporary directory, stopped
with the demo. When the binary is missing the caller falls back to the in-process bus and
says so (console.md).
"""

from __future__ import annotations

import ctypes
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from transport._config import BrokerConfig


def mosquitto_binary() -> str | None:
    """Debian installs the broker in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BrokerStartError(RuntimeError):
    """The broker binary exists but did not start listening."""


def _die_with_parent() -> None:
    """In the broker's child process, before exec: ask Linux to send it SIGTERM when
    its parent dies. A throwaway broker must not outlive the demo or replay that started
    it, even when that process is killed (its terminal closed, kill -9) and never gets
    to call :meth:`ThrowawayBroker.stop`. Elsewhere than Linux this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl here: stop() remains the way out
        return


_PR_SET_PDEATHSIG = 1


class ThrowawayBroker:
    """``with ThrowawayBroker() as broker: broker.config`` (see the module docstring)."""

    def __init__(self, binary: str | None = None, *, timeout_s: float = 10.0) -> None:
        found = binary or mosquitto_binary()
        if found is None:
            raise FileNotFoundError("mosquitto is not installed")
        self._binary = found
        self._timeout_s = timeout_s
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def config(self) -> BrokerConfig:
        return BrokerConfig.parse(f"mqtt://127.0.0.1:{self.port}")

    def start(self) -> ThrowawayBroker:
        self._dir = tempfile.TemporaryDirectory(prefix="samu-broker-")
        root = Path(self._dir.name)
        self.port = free_loopback_port()
        conf = root / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "log_dest none",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # As root Mosquitto drops to user "mosquitto"; stay who we are instead.
            lines.append(f"user {getpass.getuser()}")
        conf.write_text("\n".join(lines) + "\n")
        self._proc = subprocess.Popen(  # noqa: S603 - our own binary path and config
            [self._binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - a single prctl before exec
        )
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise BrokerStartError(f"mosquitto exited at start: {err.strip()[:300]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)  # polling a condition (the port opens), not a fixed wait
        self.stop()
        raise BrokerStartError(f"mosquitto did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ThrowawayBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
