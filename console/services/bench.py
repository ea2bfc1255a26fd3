"""``samu bench ingest``: signed envelopes through a real Mosquitto into the hub.

performance.md: a **separate process** publishes realistic signed vitals envelopes
(five observations each) at QoS 1 through a throwaway Mosquitto on a free loopback
port into the hub's real ingest — MAC, schema, dedup, observations and the per-batch
audit event committed, each message acknowledged after its commit. Three runs:

1. **ceiling** — the same publisher, payloads and QoS to a subscriber that only counts
   (the bare MQTT rate on this machine: the client library's per-message cost);
2. **sustained** — :data:`DURATION_S` seconds into the hub at half the ceiling (the
   target rate): stored, lost (acknowledged by the broker but never stored: the drain
   stalled), duplicates; ``msg_per_s`` counts the drain time too, so a hub that falls
   behind shows it;
3. **latency** — 1 000 msg/s, envelopes stamped when sent: p50/p99 from the device's
   send to the commit.

Targets: ≥ 0.5 of the ceiling and ≥ 20 k observations/s sustained with 0 lost; p99
< 250 ms at 1 k msg/s. Needs the ``mosquitto`` binary (Debian's package).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

DURATION_S = 60.0
#: A drain that makes no progress for this long has lost what is missing.
DRAIN_IDLE_S = 10.0
CEILING_S = 15.0
LATENCY_S = 15.0
DEVICES = 50
OBSERVATIONS = 5
TARGET_FRACTION = 0.5
TARGET_OBS_PER_S = 20_000.0
TARGET_P99_MS = 250.0

#: The publisher, run as its own process (paho, the plainest fast client): envelopes
#: are signed in advance (sustained, ceiling) or at send time (latency, stamped ``sent``).
_PUBLISHER = textwrap.dedent(
    """
    import json, sys, time, base64, uuid
    import paho.mqtt.client as mqtt
    from protocols import Envelope, Observation, VitalsBody, seal_envelope
    from protocols.topics import topic_for
    port, keys_file, duration, rate, count_file = sys.argv[1:6]
    duration, rate = float(duration), float(rate)
    keys = json.load(open(keys_file))["keys"]
    def envelope(k, seq, now):
        obs = tuple(
            Observation(code=c, value=v, unit=u, time=now, method="device")
            for c, v, u in (("59408-5", 96.0, "%"), ("8867-4", 72.0, "/min"),
                            ("9279-1", 16.0, "/min"), ("8310-5", 36.9, "Cel"),
                            ("8480-6", 124.0, "mm[Hg]"))
        )
        env = Envelope.create(site=k["site"], device=k["device"], seq=seq,
                              body=VitalsBody(v=1, patient=k["patient"], observations=obs),
                              sent=now)
        key = base64.urlsafe_b64decode(k["key"] + "=" * (-len(k["key"]) % 4))
        return topic_for(env), seal_envelope(env, key)
    from datetime import datetime, timezone
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked = [0]
    client.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", int(port))
    client.loop_start()
    seq = int(time.time() * 1000)
    prepared = []
    if rate <= 0:
        now = datetime.now(timezone.utc)
        for i in range(20000):
            seq += 1
            prepared.append(envelope(keys[i % len(keys)], seq, now))
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < duration:
        if rate > 0:
            seq += 1
            topic, payload = envelope(keys[sent % len(keys)], seq, datetime.now(timezone.utc))
            due = start + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        else:
            topic, payload = prepared[sent % len(prepared)]
            if sent and sent % len(prepared) == 0:  # fresh ids and seqs for the next round
                now = datetime.now(timezone.utc)
                prepared = []
                for i in range(20000):
                    seq += 1
                    prepared.append(envelope(keys[i % len(keys)], seq, now))
                topic, payload = prepared[0]
        while sent - acked[0] > 900:
            time.sleep(0.0005)
        client.publish(topic, payload, qos=1)
        sent += 1
    deadline = time.monotonic() + 30
    while acked[0] < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    open(count_file, "w").write(json.dumps({"sent": sent, "acked": acked[0]}))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(binary, os.X_OK):
        raise RuntimeError("mosquitto not installed (make setup installs it)")
    port = _free_port()
    import getpass

    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 1000000\nmax_inflight_messages 1000\nuser {getpass.getuser()}\n"
    )
    proc = subprocess.Popen(  # noqa: S603 - our own broker binary and config
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def _publish(port: int, keys: Path, duration: float, rate: float, tmp: Path) -> dict[str, int]:
    count = tmp / f"count-{time.monotonic_ns()}.json"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, "-c", _PUBLISHER, str(port), str(keys), str(duration), str(rate),
         str(count)],
        check=True, env=env, timeout=duration + 120,
    )  # fmt: skip
    result: dict[str, int] = json.loads(count.read_text())
    return result


def _ceiling(port: int, keys: Path, tmp: Path) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = [0]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-count", protocol=mqtt.MQTTv5)
    client.on_message = lambda *a: got.__setitem__(0, got[0] + 1)
    ready = threading.Event()
    client.on_subscribe = lambda *a: ready.set()
    client.on_connect = lambda c, *a: c.subscribe("samu/v1/#", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    started = time.monotonic()
    _publish(port, keys, CEILING_S, 0, tmp)
    elapsed = time.monotonic() - started
    client.loop_stop()
    client.disconnect()
    return got[0] / elapsed


def _hub_run(
    db: Path, port: int, keys: Path, tmp: Path, *, rate: float, duration: float
) -> dict[str, Any]:
    from console.services import Hub, open_services
    from console.settings import Settings
    from transport import BrokerConfig

    latencies: list[float] = []
    result: dict[str, Any] = {}

    async def main() -> None:
        with open_services(Settings(db=db), create=True) as services:
            hub = Hub(services, broker=BrokerConfig.parse(f"mqtt://127.0.0.1:{port}"),
                      centre="samu075", out=io.StringIO())  # fmt: skip
            running = asyncio.create_task(hub.run())
            while hub.subscriber is None or not hub.subscriber.stats.connected:
                await asyncio.sleep(0.05)
            if rate > 0:
                original = hub.core.receive  # type: ignore[union-attr]

                def timed(items: Any, **kwargs: Any) -> Any:
                    got = original(items, **kwargs)
                    done = time.time()
                    for o in got.outcomes:
                        env = getattr(o, "envelope", None)
                        if env is not None:
                            latencies.append((done - env.sent.timestamp()) * 1000)
                    return got

                hub.core.receive = timed  # type: ignore[union-attr,method-assign]
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            counts = await loop.run_in_executor(None, _publish, port, keys, duration, rate, tmp)
            # Drain: every acknowledged message must reach the store.
            deadline = time.monotonic() + 60
            stored = 0
            while time.monotonic() < deadline:
                stored = int(services.store.fetchone("SELECT count(*) FROM ingest_messages")[0])
                if stored >= counts["acked"]:
                    break
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            hub.stop()
            await running
            observations = int(services.store.fetchone("SELECT count(*) FROM observations")[0])
            duplicates = int(services.store.fetchone("SELECT sum(duplicates) FROM devices")[0] or 0)
            result.update(
                sent=counts["sent"], acked=counts["acked"], stored=stored,
                observations=observations, duplicates=duplicates, elapsed=elapsed,
            )  # fmt: skip

    asyncio.run(main())
    result["latencies"] = latencies
    return result


def _enrol(db: Path, keys: Path) -> None:
    from datetime import UTC, datetime

    from console.ingest import Sender, write_key_file
    from console.records import AuditContext
    from console.services import open_services
    from console.settings import Settings

    with open_services(Settings(db=db), create=True) as services:
        enrolled = services.devices.enrol(
            AuditContext(actor="system:bench", role="system", terminal="bench"),
            [Sender("ehpad-bench", f"ox-{i:03d}", "spo2", f"res-{i:03d}") for i in range(DEVICES)],
            now=datetime.now(UTC),
        )
        write_key_file(keys, [(s, k) for s, k, _ in enrolled])


def _with_broker(tmp: Path, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Each run on a fresh broker: a persistent session must not carry one run's
    backlog into the next."""
    broker, port = _broker(tmp)
    try:
        return fn(port, *args, **kwargs)
    finally:
        broker.terminate()
        broker.wait(10)


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="samu-bench-ingest-") as name:
        tmp = Path(name)
        keys = tmp / "keys.json"
        _enrol(tmp / "sustained.db", keys)
        ceiling = _with_broker(tmp, lambda port: _ceiling(port, keys, tmp))
        # Sustained: half the ceiling (the target) for DURATION_S; the hub must keep up.
        rate = TARGET_FRACTION * ceiling
        sustained = _with_broker(
            tmp,
            lambda port: _hub_run(
                tmp / "sustained.db", port, keys, tmp, rate=rate, duration=DURATION_S
            ),
        )
        _enrol(tmp / "latency.db", tmp / "keys2.json")
        latency = _with_broker(
            tmp,
            lambda port: _hub_run(
                tmp / "latency.db", port, tmp / "keys2.json", tmp, rate=1000, duration=LATENCY_S
            ),
        )
    msg_per_s = sustained["stored"] / sustained["elapsed"]
    obs_per_s = sustained["observations"] / sustained["elapsed"]
    lat = sorted(latency["latencies"]) or [float("nan")]
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    lost = max(0, sustained["acked"] - sustained["stored"])
    fraction = msg_per_s / ceiling if ceiling else 0.0
    ratio = min(fraction / TARGET_FRACTION, obs_per_s / TARGET_OBS_PER_S, TARGET_P99_MS / p99)
    return {
        "benchmark": "ingest",
        "unit": "msg/s",
        "value": round(msg_per_s),
        "baseline": "bare MQTT ceiling: the same publisher, QoS 1 and payloads to a counting "
        "subscriber, in the same run",
        "ratio": round(ratio, 2),
        "meets_targets": bool(ratio >= 1 and lost == 0),
        "msg_per_s": round(msg_per_s),
        "observations_per_s": round(obs_per_s),
        "ceiling_msg_per_s": round(ceiling),
        "fraction_of_ceiling": round(fraction, 3),
        "offered_msg_per_s": round(rate),
        "sent": sustained["sent"],
        "stored": sustained["stored"],
        "lost": lost,
        "duplicates": sustained["duplicates"],
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "duration_s": round(sustained["elapsed"], 1),
        "targets": {
            "fraction_of_ceiling": TARGET_FRACTION,
            "observations_per_s": TARGET_OBS_PER_S,
            "p99_ms": TARGET_P99_MS,
        },
    }
