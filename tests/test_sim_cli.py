"""``samu sim`` end to end: device lines, pyserial on the printed path, MQTT, signals."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import aiomqtt
import pytest
import serial

from console.cli import EXIT_USAGE, main
from hardware import load_profile
from protocols.codecs import Decoded, get_codec
from tests.support.brokers import Broker

SAMU = [sys.executable, "-c", "from console.cli._main import entry; entry()"]


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SAMU, "sim", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_lines(proc: subprocess.Popen[str], n: int, timeout: float = 20.0) -> list[str]:
    """The first ``n`` stdout lines (a thread reads, so buffered lines are not missed)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    found: queue.Queue[str | None] = queue.Queue()

    def reader() -> None:
        for _ in range(n):
            line = stdout.readline()
            if not line:
                break
            found.put(line.rstrip("\n"))
        found.put(None)

    threading.Thread(target=reader, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < n:
        try:
            line = found.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        lines.append(line)
    return lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--site", "a", "--devices", "spo2:foo"], "format 'foo' unknown"),
        (["--site", "a", "--devices", "spo2"], "expected KIND:FORMAT[:N]"),
        (["--site", "a", "--devices", "bp:masimo-ascii1"], "oximeter format"),
        (["--site", "a", "--devices", "toaster:sbf1"], "unknown kind 'toaster'"),
        (["--site", "a", "--devices", "spo2:sbf1:0"], "N must be"),
        (["--site", "a", "--devices", "icd:sbf1"], "icd:mqtt"),
        (["--site", "a", "--devices", "icd:mqtt"], "give --mqtt URL"),
        (["--devices", "spo2:sbf1"], "--site ID is required"),
        (["--site", "a", "--devices", "spo2:sbf1", "--mqtt", "http://x"], "mqtt://"),
        (["--site", "a/b", "--devices", "spo2:sbf1"], "--site"),
        (["--scenario", "/no/such/file.toml"], "no such file, nor a library scenario"),
        (["--site", "a", "--devices", "spo2:sbf1", "--speed", "0"], "--speed"),
    ],
)
def test_bad_input_is_a_usage_error(argv: list[str], message: str, capsys) -> None:
    assert main(["sim", *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("samu sim: error:")
    assert message in err


def test_sim_prints_ports_serves_them_and_exits_cleanly_on_sigterm(mosquitto: Broker) -> None:
    devices = ["spo2:masimo-ascii1:2", "bp:sbf1", "icd:mqtt", "video:mqtt"]
    proc = start(
        "--site", "ehpad-cli", "--devices", *devices,
        "--mqtt", mosquitto.url, "--speed", "20", "--seed", "7",
    )  # fmt: skip
    try:
        lines = read_lines(proc, 5)
        assert len(lines) == 5, (lines, proc.stderr.read() if proc.poll() is not None else "")
        serial_lines = [re.fullmatch(r"serial (\S+) (\S+) (\S+)", x) for x in lines[:3]]
        assert all(serial_lines)
        assert [(m[1], m[2]) for m in serial_lines] == [  # type: ignore[index]
            ("spo2-01", "masimo-ascii1"),
            ("spo2-02", "masimo-ascii1"),
            ("bp-01", "sbf1"),
        ]
        assert lines[3] == "mqtt icd-01 samu/v1/site/ehpad-cli/device/icd-01/implant"
        assert lines[4] == "mqtt video-01 samu/v1/video/ehpad-cli-video-01"
        path = serial_lines[0][3]  # type: ignore[index]
        with serial.Serial(path, **load_profile("masimo-rad97").serial_kwargs()) as ser:
            data = b""
            deadline = time.monotonic() + 15
            while data.count(b"\n") < 4 and time.monotonic() < deadline:
                data += ser.read(max(1, ser.in_waiting))
        decoded = [i for i in get_codec("masimo-ascii1").decode(data) if isinstance(i, Decoded)]
        assert len(decoded) >= 2

        async def retained_birth() -> dict:
            async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
                await c.subscribe("samu/v1/site/ehpad-cli/device/+/birth", qos=1)
                async for m in c.messages:
                    assert isinstance(m.payload, bytes)
                    return json.loads(m.payload)
            raise AssertionError("no birth")

        birth = asyncio.run(asyncio.wait_for(retained_birth(), 15))
        assert birth["device"] == "icd-01" and birth["body"]["kind"] == "implant_transmitter"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""
    assert not os.path.exists(path)  # the pty pair is gone


def test_sigint_also_exits_zero_and_duration_stops_by_itself() -> None:
    proc = start("--site", "a", "--devices", "temperature:sbf1", "--speed", "5")
    lines = read_lines(proc, 1)
    assert lines and lines[0].startswith("serial temperature-01 sbf1 ")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    argv = ["--site", "a", "--devices", "weight:sbf1", "--duration", "10", "--speed", "50"]
    done = subprocess.run(
        [*SAMU, "sim", *argv], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("serial weight-01 sbf1 ")


def test_scenario_mode_prints_serial_and_mqtt_lines(mosquitto: Broker, tmp_path) -> None:
    keys = tmp_path / "keys.json"
    proc = start(
        "--scenario", "stroke-video-fast", "--mqtt", mosquitto.url, "--serial", "socket",
        "--speed", "10", "--keys-out", str(keys),
    )  # fmt: skip
    try:
        lines = read_lines(proc, 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert lines[0].startswith("serial bp-0311 sbf1 socket://127.0.0.1:")
    assert lines[1].startswith("serial spo2-0311 sbf1 socket://127.0.0.1:")
    assert lines[2] == "mqtt vs-0311 samu/v1/video/vs-0311"
    exported = json.loads(keys.read_text())["keys"]
    assert {(k["site"], k["device"]) for k in exported} >= {("ehpad-les-tilleuls", "video-gateway")}
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
