"""``samu devices``, ``samu sim``, ``samu hub`` and ``samu records`` exactly as cases.md
runs them, through a real Mosquitto on a free loopback port, with real processes."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main

SAMU = [sys.executable, "-c", "from console.cli._main import entry; entry()"]


class Hub:
    """``samu hub`` in its own process, its JSON log lines read by a thread."""

    def __init__(self, db: Path, url: str) -> None:
        self.proc = subprocess.Popen(
            [*SAMU, "hub", "--db", str(db), "--mqtt", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, event: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for seen in self.seen:
            if seen["event"] == event and all(seen.get(k) == v for k, v in match.items()):
                return seen
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if line["event"] == event and all(line.get(k) == v for k, v in match.items()):
                return line
        stderr = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
        raise AssertionError(f"no {event} {match} within {timeout} s; stderr: {stderr}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


def sim(url: str, keys: Path, scenario: str, *, speed: float, duration: float) -> None:
    argv = [
        *SAMU, "sim", "--scenario", scenario, "--mqtt", url, "--gateway",
        "--keys", str(keys), "--speed", str(speed), "--duration", str(duration),
    ]  # fmt: skip
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def samu_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def enrol(capsys: pytest.CaptureFixture[str], db: Path, scenario: str, keys: Path) -> None:
    code = main(
        ["devices", "enrol", "--db", str(db), "--scenario", scenario, "--keys-out", str(keys)]
    )
    assert code == EXIT_OK, capsys.readouterr().err
    capsys.readouterr()


@pytest.mark.slow  # ~11 s: hub and simulator processes through a real broker
def test_enrol_sim_hub_records_round_trip(
    mosquitto: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, keys = tmp_path / "samu.db", tmp_path / "keys.json"
    enrol(capsys, db, "icd-shock-storm", keys)
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    hub = Hub(db, mosquitto.url)
    try:
        hub.wait_for("started")
        sim(mosquitto.url, keys, "icd-shock-storm", speed=100, duration=1000)
        opened = hub.wait_for("case_opened")
        assert opened["source"] == "implant"
        hub.wait_for("priority_changed", to="P0")
    finally:
        assert hub.stop() == 0
    stopped = hub.wait_for("stopped")
    assert stopped["received"] == stopped["acked"] >= 4
    code, cases = samu_json(capsys, "records", "cases", "--db", str(db), "--json")
    assert code == EXIT_OK and len(cases) == 1
    case = cases[0]
    assert case["case_id"] == opened["case_id"] and case["status"] == "ACTIF"
    assert case["suggested_priority"] == "P0" and case["decided_priority"] is None
    assert "shock_delivered" in case["implant_alerts"] and case["sources"] == ["implant"]
    assert case["patients"] == ["domicile-0007/pt-0007"] and case["news2"] is None
    code, (shown,) = samu_json(
        capsys, "records", "show", case["case_id"], "--db", str(db), "--json"
    )
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds[0] == "opened" and "implant_alert" in kinds and "priority_changed" in kinds
    assert shown["decisions"] == [] and shown["video"] == []
    assert main(["records", "show", "fr.health.samu075.NOPE", "--db", str(db)]) == EXIT_CHECK_FAILED
    code, devices = samu_json(capsys, "devices", "list", "--db", str(db), "--json")
    (icd,) = [d for d in devices if d["device"] == "icd-0007"]
    assert icd["state"] == "online" and icd["frames"] >= 4 and icd["quarantined"] == 0
    assert set(icd) == {
        "site", "device", "kind", "patient", "state", "last_seen", "battery_pct", "frames",
        "errors", "quarantined",
    }  # fmt: skip
    # The CLI's reads of clinical data are themselves audited, and the trail verifies.
    assert main(["audit", "verify", "--db", str(db)]) == EXIT_OK


class Witness:
    """An independent subscriber recording every envelope id the broker delivered."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.ids: set[str] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="witness", protocol=mqtt.MQTTv5
        )
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.client.on_connect = lambda c, *_: c.subscribe("samu/v1/site/#", qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._message
        # A persistent session too, so a broker restart loses nothing for the witness.
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.connect(host, port, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self._ready.wait(10)

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError), self._lock:
            self.ids.add(json.loads(msg.payload)["id"])

    def close(self) -> set[str]:
        self.client.loop_stop()
        self.client.disconnect()
        with self._lock:
            return set(self.ids)


@pytest.mark.slow  # ~7.5 s: a hub killed mid-stream and restarted
def test_a_hub_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    mosquitto: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.records import Store

    db, keys = tmp_path / "samu.db", tmp_path / "keys.json"
    enrol(capsys, db, "sepsis-ehpad", keys)
    witness = Witness(mosquitto.host, mosquitto.port)
    hub = Hub(db, mosquitto.url)
    hub.wait_for("started")  # the persistent session exists from now on
    runner = threading.Thread(
        target=sim,
        args=(mosquitto.url, keys, "sepsis-ehpad"),
        kwargs={"speed": 300, "duration": 1500},
    )
    runner.start()
    time.sleep(1.5)  # mid-stream (the run lasts ~5 s): a fixed point in time is the test
    hub.kill()
    again = Hub(db, mosquitto.url)
    try:
        again.wait_for("started")
        runner.join(60)
        published = witness.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the broker's backlog drains into the hub
            with Store.open(db, readonly=True) as store:
                stored = {r[0] for r in store.fetchall("SELECT envelope_id FROM ingest_messages")}
            if published <= stored:
                break
            time.sleep(0.2)
    finally:
        assert again.stop() == 0
    assert len(published) > 500
    assert published - stored == set()  # nothing the broker took was lost
    with Store.open(db, readonly=True) as store:
        dup_obs = store.fetchone(
            "SELECT count(*) FROM (SELECT msg_id, code FROM observations"
            " GROUP BY msg_id, code HAVING count(*) > 1)"
        )[0]
        rows, distinct = store.fetchone(
            "SELECT count(*), count(DISTINCT envelope_id) FROM ingest_messages"
        )
    assert dup_obs == 0 and rows == distinct  # and nothing was stored twice
    assert main(["audit", "verify", "--db", str(db)]) == EXIT_OK


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["devices", "enrol", "--device", "x"], "--device needs --site and --kind"),
        (
            ["devices", "enrol", "--scenario", "no-such-scenario", "--keys-out", "{tmp}/k.json"],
            "no-such-scenario",
        ),
        (["devices", "enrol", "--keys", "{tmp}/absent.json"], "no such key file"),
        (["devices", "enrol", "--scenario", "icd-shock-storm"], "give --keys-out"),
        (["hub", "--centre", "lyon"], "samu followed by 3 digits"),
        (["hub", "--mqtt", "mqtt://u:secret@127.0.0.1:1"], "password"),
        (["devices", "list", "--db", "{tmp}/nope.db"], "database not found"),
        (["records", "cases", "--db", "{tmp}"], "is a directory"),
    ],
)
def test_bad_command_lines_say_what_is_wrong(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--db" not in args:
        args += ["--db", str(tmp_path / "samu.db")]
    code = main(args)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_enrolled_keys_rotate_and_the_key_file_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, keys = tmp_path / "samu.db", tmp_path / "k.json"
    enrol(capsys, db, "icd-shock-storm", keys)
    first = json.loads(keys.read_text())["keys"][0]["key"]
    assert (
        main(
            [
                "devices",
                "enrol",
                "--db",
                str(db),
                "--scenario",
                "icd-shock-storm",
                "--keys-out",
                str(keys),
            ]
        )
        == EXIT_USAGE
    )
    assert "never overwritten" in capsys.readouterr().err
    other = tmp_path / "k2.json"
    enrol(capsys, db, "icd-shock-storm", other)
    assert json.loads(other.read_text())["keys"][0]["key"] != first
    os.chmod(other, 0o600)
    assert main(["devices", "enrol", "--db", str(db), "--keys", str(keys)]) == EXIT_OK
    assert "1 key(s) rotated" in capsys.readouterr().out


@pytest.mark.slow  # ~10 s: the broker itself is restarted under load
def test_a_broker_restart_loses_nothing_acknowledged(
    mosquitto: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.records import Store

    db, keys = tmp_path / "samu.db", tmp_path / "keys.json"
    enrol(capsys, db, "sepsis-ehpad", keys)
    witness = Witness(mosquitto.host, mosquitto.port)
    hub = Hub(db, mosquitto.url)
    try:
        hub.wait_for("started")
        runner = threading.Thread(
            target=sim,
            args=(mosquitto.url, keys, "sepsis-ehpad"),
            kwargs={"speed": 300, "duration": 1500},
        )
        runner.start()
        time.sleep(1.5)  # mid-stream: a fixed point in time is the test
        mosquitto.stop()  # the broker goes down; publishers keep their outbox
        time.sleep(1.0)
        mosquitto.start()  # same port, same persistence file
        runner.join(60)
        deadline = time.monotonic() + 30
        published: set[str] = set()
        stored: set[str] = set()
        while time.monotonic() < deadline:
            published = set(witness.ids)
            with Store.open(db, readonly=True) as store:
                stored = {r[0] for r in store.fetchall("SELECT envelope_id FROM ingest_messages")}
            if published and published <= stored:
                break
            time.sleep(0.2)
    finally:
        witness.close()
        assert hub.stop() == 0
    assert len(published) > 500
    assert published - stored == set()
    assert main(["audit", "verify", "--db", str(db)]) == EXIT_OK
