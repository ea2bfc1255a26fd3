"""``samu demo``: the whole system on the embedded default (console.md contract).

``--headless`` runs the real thing — a throwaway Mosquitto on a free loopback port, the
simulator playing ``demo-garde``, the hub, a fresh database with the demo account — and
prints the board as JSON lines; without a broker binary the in-process bus carries the
same messages. These runs take the scenario's real time (its first P1 comes at 30 s).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scenarios
from console.services import open_services
from console.settings import Settings

SAMU = [sys.executable, "-c", "from console.cli._main import entry; entry()"]


def run_demo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SAMU, "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.slow
def test_headless_demo_shows_cases_arrive_and_escalate_through_mosquitto() -> None:
    result = run_demo("--headless", "--seconds", "40", "--every", "4")
    assert result.returncode == 0, result.stderr
    assert "transport: MQTT through mosquitto on 127.0.0.1:" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 9
    assert all(line["transport"] == "mqtt" for line in lines)
    assert lines[0]["cases"] == [], "the board starts empty: cases arrive during the demo"
    last = {c["site"]: c for c in lines[-1]["cases"]}
    assert last["ehpad-les-lilas"]["priority"] == "P1", "stroke bilan, FAST positive"
    assert "ehpad-les-tilleuls" in last, "the cough bilan opened a case"
    assert all(c["case_id"].startswith("fr.health.samu075.DRFR15") for c in last.values())
    folder = Path(result.stderr.split("demo database kept in ")[1].split(" ")[0])
    assert (folder / "demo.db").is_file()
    assert '"event": "case_opened"' in (folder / "hub.log").read_text()


@pytest.mark.slow
async def test_without_a_broker_the_in_process_bus_carries_the_same_messages(tmp_path) -> None:
    with open_services(Settings(db=tmp_path / "demo.db"), create=True) as services:
        log = (tmp_path / "hub.log").open("w")
        live = scenarios.LiveRun(
            scenarios.load_scenario("demo-garde"), services, broker=None, log=log
        )
        assert live.transport == "inproc"
        runner = asyncio.create_task(live.run())
        deadline = time.monotonic() + 60
        opened: list[tuple[str, str]] = []
        while time.monotonic() < deadline and len(opened) < 2:
            await asyncio.sleep(0.5)  # polling the store for a condition
            opened = services.store.fetchall("SELECT site, suggested_priority FROM cases")
        live.stop()
        await runner
        log.close()
    sites = dict(opened)
    assert set(sites) >= {"ehpad-les-tilleuls", "ehpad-les-lilas"}
    assert sites["ehpad-les-lilas"] == "P1"


def test_the_console_needs_a_terminal_and_says_so() -> None:
    result = run_demo(timeout=60)
    assert result.returncode == 2
    assert "samu demo --headless" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--headless", "--seconds", "0"], "--seconds 0: give a positive number"),
        (["--headless", "--every", "-1"], "--every -1: give a positive number"),
    ],
)
def test_bad_numbers_are_one_line_errors(args: list[str], message: str) -> None:
    result = run_demo(*args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_existing_database_is_never_reused_for_the_demo(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    db.write_bytes(b"")
    result = run_demo("--db", str(db), "--headless", "--seconds", "1", timeout=60)
    assert result.returncode == 2
    assert "the file exists" in result.stderr
