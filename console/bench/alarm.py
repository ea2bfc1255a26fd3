"""``samu bench alarm``: a device value crossing into P1 → the new priority on the board
stream (issue 14).

performance.md: end to end, p99 < 1 s at 1 k msg/s background load. The real path:

* a throwaway **Mosquitto** on a free loopback port, with the production flow-control
  settings (:func:`production_broker`);
* the **hub** (:class:`~console.services.Hub`) in this process, on a fresh SQLite file:
  its MQTT subscriber, ingest, the triage tick every ``tick_s`` (1 s), the single writer
  thread, and its :class:`~console.services.RegulationService` — whose board stream
  (:meth:`~console.services.RegulationService.updates`) a signed-in régulateur follows
  here, as the console does;
* a **publisher process** (paho, QoS 1, envelopes signed at send time): the background —
  :data:`DEFAULT_RATE` msg/s from five devices per resident of the board benchmark's
  fleet, spread evenly over each second — and the **crossings**.

A crossing: each of :data:`DEFAULT_SAMPLES` test residents has a blood-pressure cuff
(a spot-check device, the common case in an EHPAD) whose previous reading, 70 s earlier
and normal (systolic 125 mmHg: P3), is published during the warm-up; at its own time the
cuff sends systolic 85 mmHg (NEWS2 score 3 on one parameter: P1). The hub triages device
streams on the median of the last 60 s (``CaseBook`` smoothing), so a spot reading with no
other reading in its minute *is* the triage input: the priority must move at the next
tick. Crossings are spaced 1/``rate`` s apart at an interval unrelated to the tick, so
they fall at every phase of it. Latency = the moment the board stream delivers a row of
that resident's case at P1 (or P0) − the envelope's ``sent`` time (one machine, one
clock). A continuous 1 Hz stream needs half its 60-s window past the threshold before
the median moves: that smoothing is a clinical choice (cases.md), not a latency, and is
outside this figure.

``ratio`` = 1 s / p99. Sizes: ``SAMU_BENCH_ALARM_SAMPLES`` (crossings, default 200),
``SAMU_BENCH_ALARM_RATE`` (background msg/s, default 1000), ``SAMU_BENCH_ALARM_SECONDS``
(the crossing window, default 40).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from console.bench.board import (
    DEVICE_KINDS,
    Device,
    enrol_fleet,
    envelope,
    load_fleet,
    totp_now,
    vitals_envelope,
)

TARGET_P99_S: Final = 1.0
DEFAULT_SAMPLES: Final = 200
DEFAULT_RATE: Final = 1000
DEFAULT_SECONDS: Final = 40.0
#: The test residents' previous (normal) reading, this long before their crossing.
BEFORE_S: Final = 70.0
#: Background alone before the first crossing, and after the last (s).
WARMUP_S: Final = 5.0
DRAIN_S: Final = 10.0
SITE: Final = "ehpad-alarm"
PASSWORD: Final = "bench alarm correct horse staple"  # noqa: S105 - a throwaway account
NORMAL_SYSTOLIC: Final = 125
P1_SYSTOLIC: Final = 85


def _cuff_envelope(device: Device, seq: int, t: float, systolic: int) -> tuple[str, bytes]:
    values = [("8480-6", systolic, "mm[Hg]"), ("8462-4", round(systolic * 0.6), "mm[Hg]")]
    return vitals_envelope(device, seq, t, values)


@contextlib.contextmanager
def production_broker(tmp: Path) -> Iterator[int]:
    """A throwaway Mosquitto on a free loopback port with the production flow-control
    settings of ``hardware/mosquitto/mosquitto.conf`` (``max_inflight_messages 100``,
    ``max_queued_messages 500000``; no persistence): :class:`transport.ThrowawayBroker`
    keeps Mosquitto's default of 20 messages in flight per client, which with PUBACK
    after commit caps the hub at 20 messages per commit and would be measured instead
    of the system. Yields the port."""
    from transport import free_loopback_port, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("alarm benchmark: mosquitto is not installed (make setup)")
    port = free_loopback_port()
    conf = tmp / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        "log_dest none",
        "max_queued_messages 500000",
        "max_inflight_messages 100",
    ]
    if os.geteuid() == 0:
        lines.append(f"user {getpass.getuser()}")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(  # noqa: S603 - our own broker binary and config
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("alarm benchmark: mosquitto did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def publish(
    port: int, background: Path, cuffs: Path, *, rate: float, seconds: float, out: Path
) -> None:
    """The publisher process (see the module docstring); writes each crossing's sent
    time and the counters to ``out``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    fleet = load_fleet(background)
    tests = load_fleet(cuffs)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-alarm-pub", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    acked = [0]
    client.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    seq = int(time.time() * 1000)
    sent = 0

    def send(topic: str, payload: bytes) -> None:
        nonlocal sent
        while sent - acked[0] > 900:
            time.sleep(0.0005)
        client.publish(topic, payload, qos=1)
        sent += 1

    # The test residents' previous, normal reading: BEFORE_S before their crossing.
    start = time.time() + 1.0
    gap = seconds / max(1, len(tests))
    crossing_at = [start + WARMUP_S + i * gap for i in range(len(tests))]
    for d, at in zip(tests, crossing_at, strict=True):
        seq += 1
        send(*_cuff_envelope(d, seq, at - BEFORE_S, NORMAL_SYSTOLIC))
    crossings: dict[str, float] = {}
    total = WARMUP_S + seconds + DRAIN_S
    next_test = 0
    n = 0
    interval = 1.0 / rate if rate > 0 else math.inf
    began = time.monotonic()
    wall0 = time.time()
    while True:
        t_rel = n * interval if rate > 0 else total
        test_rel = crossing_at[next_test] - wall0 if next_test < len(tests) else math.inf
        if min(t_rel, test_rel) >= total:
            break
        if test_rel <= t_rel:
            delay = began + test_rel - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            d = tests[next_test]
            seq += 1
            now = time.time()
            send(*_cuff_envelope(d, seq, now, P1_SYSTOLIC))
            crossings[f"{d.site}/{d.patient}"] = now
            next_test += 1
            continue
        delay = began + t_rel - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        d = fleet[n % len(fleet)]
        if n % len(fleet) == 0:
            seq += 1
        send(*envelope(d, seq, time.time()))
        n += 1
    deadline = time.monotonic() + 30
    while acked[0] < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.monotonic() - began
    client.disconnect()
    client.loop_stop()
    out.write_text(
        json.dumps(
            {"crossings": crossings, "sent": sent, "acked": acked[0], "background": n,
             "elapsed_s": elapsed}
        )
    )  # fmt: skip


def publisher_main() -> None:
    """``python -c 'from console.bench.alarm import publisher_main; publisher_main()'
    PORT BACKGROUND_KEYS CUFF_KEYS RATE SECONDS OUT``."""
    port, background, cuffs, rate, seconds, out = sys.argv[1:7]
    publish(
        int(port), Path(background), Path(cuffs), rate=float(rate), seconds=float(seconds),
        out=Path(out),
    )  # fmt: skip


def _enrol_cuffs(db: Path, keys: Path, samples: int) -> None:

    from console.ingest import Sender, write_key_file
    from console.records import AuditContext
    from console.services import open_services
    from console.settings import Settings

    senders = [
        Sender(SITE, f"cuff-{i:04d}", "blood_pressure_monitor", f"res-{i:04d}")
        for i in range(samples)
    ]
    with open_services(Settings(db=db)) as services:
        enrolled = services.devices.enrol(
            AuditContext(actor="system:bench", role="system", terminal="bench"),
            senders,
            now=datetime.now(UTC),
        )
    write_key_file(keys, [(s, k) for s, k, _ in enrolled])


async def _hub_side(
    db: Path,
    port: int,
    *,
    argv: list[str],
    env: dict[str, str],
    otpauth_uri: str,
    residents: set[str],
) -> dict[str, Any]:
    """The hub and a board follower in this process; the publisher as a subprocess."""
    from console.services import Hub, open_services
    from console.settings import Settings
    from transport import BrokerConfig

    seen: dict[str, float] = {}
    alarms: dict[str, float] = {}
    deltas = 0
    with open(os.devnull, "w", encoding="utf-8") as log, open_services(Settings(db=db)) as services:
        hub = Hub(
            services,
            broker=BrokerConfig.parse(f"mqtt://127.0.0.1:{port}"),
            centre="samu075",
            out=log,
        )
        running = asyncio.create_task(hub.run(), name="hub")
        await asyncio.wait_for(hub.ready.wait(), 30)
        api = hub.api
        assert api is not None
        session = await api.login("drbench", PASSWORD, totp_now(otpauth_uri), "bench")
        cases: dict[str, str] = {}

        async def follow() -> None:
            nonlocal deltas
            async for delta in api.updates(session):
                now = time.time()
                deltas += 1
                for row in delta.upserts:
                    prio = row.decided_priority or row.suggested_priority
                    for rid in row.patients:
                        if rid in residents:
                            cases[row.case_id] = rid
                            if prio in ("P0", "P1") and rid not in seen:
                                seen[rid] = now
                for alarm in delta.alarms:
                    who = cases.get(alarm.case_id)
                    if who is not None and who not in alarms:
                        alarms[who] = now

        follower = asyncio.create_task(follow(), name="board-follower")
        await asyncio.sleep(0.2)  # the subscription is registered
        cpu0, wall0 = time.process_time(), time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*argv, env=env)
        await proc.wait()
        # Until the last crossing has shown (or the drain runs out).
        deadline = time.monotonic() + DRAIN_S
        while len(seen) < len(residents) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        follower.cancel()
        hub.stop()
        await running
        stats = hub.subscriber.stats if hub.subscriber is not None else None
    return {
        "seen": seen,
        "alarms": alarms,
        "deltas": deltas,
        "returncode": proc.returncode,
        "hub_cpu_cores": cpu,
        "hub_received": stats.received if stats is not None else None,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(
    samples: int | None = None, rate: float | None = None, seconds: float | None = None
) -> dict[str, Any]:
    """The ``alarm`` benchmark (``samu bench alarm``); sizes from the arguments or
    ``SAMU_BENCH_ALARM_SAMPLES`` / ``_RATE`` / ``_SECONDS``."""
    from console.auth import LocalOperator
    from console.services import open_services
    from console.settings import Settings

    samples = samples or int(os.environ.get("SAMU_BENCH_ALARM_SAMPLES", DEFAULT_SAMPLES))
    if rate is None:
        rate = float(os.environ.get("SAMU_BENCH_ALARM_RATE", DEFAULT_RATE))
    seconds = seconds or float(os.environ.get("SAMU_BENCH_ALARM_SECONDS", DEFAULT_SECONDS))
    background_residents = max(1, math.ceil(rate / len(DEVICE_KINDS)))
    with tempfile.TemporaryDirectory(prefix="samu-bench-alarm-") as name:
        tmp = Path(name)
        db = tmp / "alarm.db"
        background, cuffs, out = tmp / "background.json", tmp / "cuffs.json", tmp / "pub.json"
        enrol_fleet(db, background, background_residents)
        _enrol_cuffs(db, cuffs, samples)
        with open_services(Settings(db=db)) as services:
            enrolment = services.accounts.create_user(
                LocalOperator("bench", "bench"), "drbench", ["regulateur"], PASSWORD
            )
        residents = {f"{SITE}/{d.patient}" for d in load_fleet(cuffs)}
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        code = "from console.bench.alarm import publisher_main; publisher_main()"
        with production_broker(tmp) as port:
            argv = [sys.executable, "-c", code, str(port), str(background), str(cuffs),
                    str(rate), str(seconds), str(out)]  # fmt: skip
            hub = asyncio.run(
                _hub_side(db, port, argv=argv, env=env, otpauth_uri=enrolment.otpauth_uri,
                          residents=residents)
            )  # fmt: skip
        published = json.loads(out.read_text()) if out.exists() else {}
    crossings: dict[str, float] = published.get("crossings", {})
    latencies = [hub["seen"][r] - t for r, t in crossings.items() if r in hub["seen"]]
    alarm_latencies = [hub["alarms"][r] - t for r, t in crossings.items() if r in hub["alarms"]]
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    missed = len(crossings) - len(latencies)
    ratio = TARGET_P99_S / p99 if p99 > 0 else math.inf
    return {
        "benchmark": "alarm",
        "unit": "ms",
        "value": round(p99 * 1000, 1),
        "baseline": "target: p99 < 1 s from the crossing reading's send to its P1 row on the "
        "board stream, at 1 k msg/s background (performance.md); ratio = 1 s / p99",
        "ratio": round(ratio, 2),
        "meets_targets": bool(ratio >= 1 and missed == 0),
        "path": "publisher process → Mosquitto (loopback) → Hub (MQTT subscriber, ingest, "
        "triage tick, SQLite) → RegulationService.updates",
        "p50_ms": round(p50 * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "alarm_p99_ms": round(_percentile(alarm_latencies, 0.99) * 1000, 1),
        "samples": len(latencies),
        "crossings": len(crossings),
        "missed": missed,
        "background_msg_per_s": round(published.get("background", 0) / published["elapsed_s"])
        if published.get("elapsed_s")
        else None,
        "background_devices": background_residents * len(DEVICE_KINDS),
        "published": published.get("sent"),
        "hub_received": hub["hub_received"],
        "board_deltas": hub["deltas"],
        "hub_cpu_cores": round(hub["hub_cpu_cores"], 3),
        "publisher_exit": hub["returncode"],
        "target_p99_ms": TARGET_P99_S * 1000,
    }
