"""Shared fixtures: hypothesis profiles and a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI has 2 cores and a 20-minute budget for the whole run: fewer examples there, more locally.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# HYPOTHESIS_PROFILE=soak: long runs before trusting a change to a codec or to the verifier.
settings.register_profile(
    "soak", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    config: Path
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def start(self) -> None:
        """(Re)start on the same port, e.g. to test delivery across a broker restart."""
        self.process = _spawn(self.config, self.log)
        _wait_listening(self.host, self.port, self.process, self.log)


def _spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    binary = mosquitto_binary()
    assert binary is not None
    with log.open("ab") as fh:
        return subprocess.Popen([binary, "-c", str(config)], stdout=fh, stderr=subprocess.STDOUT)


def _wait_listening(
    host: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"mosquitto exited with {proc.returncode}: {log.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a condition (port open), not a fixed wait
    raise RuntimeError(f"mosquitto did not listen on {host}:{port} within {timeout}s")


def start_broker(tmp: Path, persistence: bool = True) -> Broker:
    """Start ``mosquitto -c <temp config>`` on a free 127.0.0.1 port (never another address)."""
    if mosquitto_binary() is None:
        # A failure, not a skip: `make test` installs it, so a missing broker means the
        # set-up is broken and the broker tests would silently stop testing anything.
        pytest.fail("mosquitto is not installed: run `make setup` (Debian's mosquitto package)")
    port = free_loopback_port()
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "mosquitto.conf"
    log = tmp / "mosquitto.log"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {tmp}/",
        "log_dest stdout",
        "max_queued_messages 100000",
    ]
    config.write_text("\n".join(lines) + "\n")
    proc = _spawn(config, log)
    _wait_listening("127.0.0.1", port, proc, log)
    return Broker("127.0.0.1", port, proc, config, log)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto 2.x broker for one test, stopped afterwards."""
    broker = start_broker(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify in blocks of 8 events, so that a trail of a few dozen exercises the
    verifier's parallel path (worker processes, Merkle subtrees combined across blocks)."""
    from console.records import _verify

    monkeypatch.setattr(_verify, "BLOCK_BITS", 3)
    monkeypatch.setattr(_verify, "BLOCK", 8)
