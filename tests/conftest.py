"""Shared fixtures: hypothesis profiles and a real Mosquitto broker on a free loopback port.

Helpers that test modules import live in tests/support/, not here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.brokers import Broker, start_broker

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
