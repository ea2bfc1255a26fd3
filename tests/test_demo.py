"""``samu demo``: ends by itself, without a terminal, showing live readings and one
quarantined frame decoded through real pseudo-terminals."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

_SAMU = shutil.which("samu", path=str(Path(sys.executable).parent))
SAMU = [_SAMU] if _SAMU else [sys.executable, "-c", "from console.cli._main import entry; entry()"]
DEVICES = ["oxi-ch12", "cuff-ch12", "thermo-ch12", "radical7-ch14", "nonin-ch15"]


def run_demo(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "CI": "true"}
    started = time.monotonic()
    result = subprocess.run(
        [*SAMU, "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal anywhere: stdin, stdout, stderr
    )
    return result, time.monotonic() - started


@pytest.mark.slow  # ~3.2 s: the whole `samu demo` in a subprocess
def test_demo_runs_decodes_every_device_and_quarantines_one_frame() -> None:
    result, elapsed = run_demo("--seconds", "3", "--speed", "4")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert elapsed < 20
    assert "done in" in out
    assert out.count("QUARANTINED") == 1
    assert re.search(r"oxi-ch12 +sbf1 +QUARANTINED crc at byte \d+", out)
    assert "HELLO BPM-Core" in out
    readings = {
        "oxi-ch12": r"SpO2 \d+ %  pulse \d+ /min",
        "cuff-ch12": r"BP \d+/\d+ mmHg",
        "thermo-ch12": r"temp \d+\.\d °C",
        "radical7-ch14": r"SpO2 \d+ %",
        "nonin-ch15": r"SpO2 \d+ %",
    }
    for device, pattern in readings.items():
        assert re.search(rf"\d\d:\d\d:\d\d\.\d  {device} +\S+ +{pattern}", out), device
    summary = dict(re.findall(r"^  (\S+) .* decoded (\d+), errors \d+$", out, re.MULTILINE))
    assert sorted(summary) == sorted(DEVICES)
    assert int(summary["oxi-ch12"]) >= 6  # 4 readings a second for 3 s, one corrupted
    assert re.search(r"oxi-ch12 .* errors 1$", out, re.MULTILINE)
    # Every byte written was read and decoded: the other devices have no errors.
    for device in DEVICES[1:]:
        assert re.search(rf"^  {device} .* errors 0$", out, re.MULTILINE), device


def test_demo_rejects_bad_durations() -> None:
    result, _ = run_demo("--seconds", "0")
    assert result.returncode == 2
    assert "--seconds" in result.stderr
