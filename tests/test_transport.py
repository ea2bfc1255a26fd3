"""The shared MQTT transport: one strict URL rule, a back-off that never overflows, and a
publisher that says when the broker is unreachable (against a real closed port)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.support.brokers import free_loopback_port
from transport import Backoff, BrokerConfig, BrokerConfigError, BrokerUnreachableError, MqttLink


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user"),
    [
        ("mqtt://127.0.0.1:1884", "127.0.0.1", 1884, False, None),
        ("mqtt://broker.example", "broker.example", 1883, False, None),
        ("mqtts://hub.samu075@[::1]", "::1", 8883, True, "hub.samu075"),
        ("  mqtt://u%40x@127.0.0.1:1  ", "127.0.0.1", 1, False, "u@x"),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool, user: str | None) -> None:
    b = BrokerConfig.parse(url)
    assert (b.host, b.port, b.tls, b.username) == (host, port, tls, user)


def test_the_password_comes_apart_and_never_shows() -> None:
    b = BrokerConfig.parse("mqtt://hub.samu075@127.0.0.1:1884", password="s3cret")
    assert b.password == "s3cret"
    assert "s3cret" not in repr(b) and "s3cret" not in b.display
    assert b.display == "mqtt://hub.samu075@127.0.0.1:1884"
    # An anonymous URL never sends a configured password anywhere.
    assert BrokerConfig.parse("mqtt://127.0.0.1", password="s3cret").password is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mqtt://hub:pw@127.0.0.1:1883", "SAMU_MQTT_PASSWORD"),
        ("http://127.0.0.1", "mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://127.0.0.1:99999", "bad port"),
        ("mqtt://h:notaport", "bad port"),
        ("mqtt://127.0.0.1/x", "no path"),
        ("mqtt://127.0.0.1?q=1", "no path"),
    ],
)
def test_bad_broker_urls_say_why(url: str, says: str) -> None:
    with pytest.raises(BrokerConfigError, match=says):
        BrokerConfig.parse(url)


def test_the_ca_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(BrokerConfigError, match="CA file"):
        BrokerConfig.parse("mqtts://127.0.0.1", ca_file=tmp_path / "missing.crt")
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    assert BrokerConfig.parse("mqtts://127.0.0.1", ca_file=ca).ca_file == ca
    assert BrokerConfig.parse("mqtt://127.0.0.1", ca_file=ca).ca_file is None  # no TLS


def test_backoff_is_capped_jittered_and_never_overflows() -> None:
    b = Backoff(0.1, 5.0, seed="gw-1")
    delays = [b.delay(a) for a in range(12)]
    assert all(0.05 <= d <= 7.5 for d in delays)
    assert delays[0] < 0.16 and max(delays[8:]) > 2.5
    assert 2.5 <= b.delay(10**6) <= 7.5  # hours of outage: still a number, still capped
    same, other = Backoff(0.1, 5.0, seed="gw-1"), Backoff(0.1, 5.0, seed="gw-2")
    assert [same.delay(a) for a in range(12)] == delays
    assert [other.delay(a) for a in range(12)] != delays
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)


async def test_an_unreachable_broker_is_said_once_and_can_end_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = BrokerConfig.parse(f"mqtt://127.0.0.1:{free_loopback_port()}")
    link = MqttLink(dead, "gw-test", backoff=(0.01, 0.05), give_up_after_s=0.5)
    link.publish("samu/v1/site/s/device/d/vitals", b"{}")
    with (
        caplog.at_level(logging.INFO, logger="transport.mqtt"),
        pytest.raises(BrokerUnreachableError, match=r"unreachable for 0\.5 s"),
    ):
        await asyncio.wait_for(link.run(), timeout=10)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert dead.display in warnings[0].getMessage()
    assert link.stats.failures >= 2 and link.backlog == 1  # kept, never dropped


async def test_a_link_has_one_consumer_a_second_run_is_refused() -> None:
    dead = BrokerConfig.parse(f"mqtt://127.0.0.1:{free_loopback_port()}")
    link = MqttLink(dead, "gw-once", backoff=(0.01, 0.05), give_up_after_s=0.3)
    first = asyncio.create_task(link.run())
    await asyncio.sleep(0)  # let the first run start (it owns the outbox from here)
    with pytest.raises(RuntimeError, match="already running"):
        await link.run()
    with pytest.raises(BrokerUnreachableError):
        await asyncio.wait_for(first, timeout=10)
    with pytest.raises(BrokerUnreachableError):  # once stopped, it may run again
        await asyncio.wait_for(link.run(), timeout=10)


def test_a_throwaway_broker_dies_with_the_process_that_started_it() -> None:
    """Its terminal closed or killed with -9, the demo never calls stop(): the broker
    must not stay behind listening (it is asked to die with its parent)."""
    import os
    import subprocess
    import sys
    import time

    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom transport import ThrowawayBroker\n"
         "b = ThrowawayBroker().start()\nprint(b._proc.pid, flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    broker = int(child.stdout.readline())
    child.kill()
    child.wait(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(broker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)  # polling for the broker's exit, not a fixed wait
    os.kill(broker, 9)
    raise AssertionError("the throwaway broker outlived its parent")
