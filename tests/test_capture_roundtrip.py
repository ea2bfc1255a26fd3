"""``samu capture`` → ``samu replay CAPTURE``: live traffic recorded from a real
Mosquitto and from a pty while ``samu sim`` sends, played back bit-exactly into the core;
truncated or edited captures refused with one line, exit 2."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import scenarios
from console.cli import EXIT_OK, EXIT_USAGE, main
from console.records import Store
from protocols.codecs import get_codec
from tests.support.brokers import Broker

SAMU = [str(Path(sys.executable).parent / "samu")]


def until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a condition, not a fixed wait


def spawn(*argv: str, tmp: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SAMU, *argv],
        stdout=subprocess.PIPE,
        stderr=(tmp / f"{name}.err").open("w"),
        text=True,
        env=dict(os.environ),
    )


def first_line(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix) or json.loads(line).get("event") == prefix:
            return line
    raise AssertionError(f"process ended before {prefix!r}")


def replayed(capsys: pytest.CaptureFixture[str], capture: Path, *extra: str) -> dict:
    assert main(["replay", str(capture), "--json", *extra]) == EXIT_OK
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def observations(db: Path) -> tuple[int, str]:
    with Store.open(db, readonly=True) as store:
        (n,) = store.fetchone("SELECT count(*) FROM observations")
        return n, scenarios.store_digest(store)


@pytest.mark.slow  # ~10 s: broker, hub, capture and simulator processes
def test_mqtt_capture_replays_to_what_the_hub_stored(
    mosquitto: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_db, keys, cap = tmp_path / "hub.db", tmp_path / "keys.json", tmp_path / "mqtt.cap"
    assert main(["devices", "enrol", "--db", str(hub_db), "--scenario", "stroke-video-fast",
                 "--keys-out", str(keys)]) == EXIT_OK  # fmt: skip
    hub = spawn("hub", "--db", str(hub_db), "--mqtt", mosquitto.url, tmp=tmp_path, name="hub")
    capture = spawn("capture", "--out", str(cap), "--mqtt", mosquitto.url, tmp=tmp_path,
                    name="capture")  # fmt: skip
    try:
        first_line(hub, "started")
        first_line(capture, "capturing")
        sim = subprocess.run(
            [*SAMU, "sim", "--scenario", "stroke-video-fast", "--mqtt", mosquitto.url,
             "--gateway", "--keys", str(keys), "--speed", "20", "--duration", "60"],
            check=False, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sim.returncode == 0, sim.stderr
        capture.send_signal(signal.SIGINT)
        assert capture.wait(timeout=30) == 0
        capsys.readouterr()
        got = replayed(capsys, cap, "--keys", str(keys))
        assert got["mqtt_messages"] > 50 and got["observations"] > 20
        assert got["quarantined"] == {} and got["accepted"] == got["mqtt_messages"]
        # the hub, reading the same broker live, stores the same observations
        until(lambda: observations(hub_db)[0] >= got["observations"], "the hub's ingest")
    finally:
        for proc in (hub, capture):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    assert observations(hub_db) == (got["observations"], got["store_sha256"])
    # without the keys nothing could be verified: refused, saying which option is missing
    assert main(["replay", str(cap), "--json"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot be verified" in err and "--keys FILE" in err and "--keys-out" in err


@pytest.mark.slow  # ~5 s
def test_serial_capture_replays_bit_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "serial.cap"
    sim = subprocess.Popen(
        [*SAMU, "sim", "--site", "ehpad-cap", "--devices", "spo2:masimo-ascii1",
         "--seed", "3", "--speed", "10", "--duration", "40"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _kind, device, fmt, path = first_line(sim, "serial").split()
        spec = f"port={path},format={fmt},site=ehpad-cap,device={device}"
        code = main(["capture", "--out", str(cap), "--serial", spec, "--seconds", "60"])
        assert code == EXIT_OK  # ends when the simulator closes its pty
    finally:
        if sim.poll() is None:
            sim.terminate()
        sim.wait(timeout=30)
    capsys.readouterr()
    first = replayed(capsys, cap)
    second = replayed(capsys, cap)
    assert first == second and first["observations"] > 10
    captured = scenarios.read_capture(cap)
    raw = b"".join(r.data for r in captured.records)
    assert first["serial_bytes"] == len(raw)
    assert first["frames"] == len(get_codec("masimo-ascii1").decode(raw))


def write_capture(path: Path) -> None:
    with path.open("xb") as fh:
        w = scenarios.CaptureWriter(fh, [{"id": "mqtt", "kind": "mqtt"}], 1_790_000_000.0)
        w.mqtt("samu/v1/site/ehpad-x/device/d1/vitals", b'{"id":"x"}', 1_790_000_000.5)
        w.mqtt("samu/v1/site/ehpad-x/device/d1/vitals", b"\x00\xffnot json", 1_790_000_001.5)
        w.close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) - 30], "truncated capture"),
        (lambda b: b[: b.rindex(b'{"end"')], "truncated capture (no trailer"),
        (lambda b: b.replace(b'"t":0.5', b'"t":0.6'), "digest mismatch"),
        (
            lambda b: b.replace(base64.b64encode(b'{"id":"x"}'), base64.b64encode(b'{"id":"y"}')),
            "digest mismatch",
        ),
    ],
    ids=["cut-mid-line", "no-trailer", "edited-time", "edited-payload"],
)
def test_truncated_or_edited_capture_is_refused(
    damage: Callable[[bytes], bytes],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = tmp_path / "good.cap"
    write_capture(good)
    assert main(["replay", str(good), "--json"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["quarantined"] == {"json": 1, "unknown_device": 1} and summary["accepted"] == 0
    bad = tmp_path / "bad.cap"
    bad.write_bytes(damage(good.read_bytes()))
    assert main(["replay", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(bad) in err


def test_a_capture_that_cannot_start_leaves_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from console.cli._main import main

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "c.cap"
    argv = ["capture", "--out", str(out), "--mqtt", f"mqtt://127.0.0.1:{port}", "--seconds", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nothing recorded, no file written" in err and "never retrieved" not in err
    assert not out.exists()
