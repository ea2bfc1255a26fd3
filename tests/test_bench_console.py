"""The console benchmarks (board, startup, alarm) on tiny sizes: the machinery runs end
to end on the real components and reports every figure. The figures themselves are
judged by ``make bench``, never by timed tests."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from console.bench import BENCHMARKS, alarm, board, startup
from transport import mosquitto_binary

COMMON = ("benchmark", "unit", "value", "baseline", "ratio", "meets_targets")


def _finite(result: dict[str, object], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert math.isfinite(value), key


def test_the_three_benchmarks_are_registered() -> None:
    for name in ("board", "startup", "alarm"):
        module, _, fn = BENCHMARKS[name].partition(":")
        assert module == f"console.bench.{name}" and fn == "run"


def test_the_fleet_is_five_signed_devices_per_resident(tmp_path: Path) -> None:
    fleet = board.enrol_fleet(tmp_path / "f.db", tmp_path / "keys.json", 3)
    assert len(fleet) == 3 * len(board.DEVICE_KINDS)
    assert {d.kind for d in fleet} == set(board.DEVICE_KINDS)
    from protocols import KeyRing, decode_envelope_json, verify_envelope

    ring = KeyRing()
    for d in fleet:
        ring.enroll(d.site, d.device, d.key, key_id="k1")
    for d in fleet:
        topic, payload = board.envelope(d, 7, 1_790_000_000.0, sick=1.0)
        assert topic.endswith(f"/{d.device}/vitals")
        verify_envelope(decode_envelope_json(payload), ring)


def test_startup_sees_through_escape_sequences() -> None:
    raw = b"\x1b[?1049h\x1b[1;1H\x1b[38;2;1;2;3mSAMU \xe2\x80\x94 connexion\x1b[0m\x1b]0;t\x07"
    assert "connexion" in startup.visible(raw)


@pytest.mark.slow
def test_board_benchmark_runs_on_a_tiny_board() -> None:
    result = board.run(cases=4, seconds=1.5)
    assert [result[k] is not None for k in COMMON] == [True] * len(COMMON)
    assert result["benchmark"] == "board"
    assert result["incidents"] == 4 and result["devices"] == 4 * len(board.DEVICE_KINDS)
    _finite(result, ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "cpu_cores", "ratio_lag",
                     "ratio_cpu", "cpu_loop_thread_cores"))  # fmt: skip
    assert result["lag_samples"] > 0
    assert result["lag_p50_ms"] <= result["lag_p99_ms"] <= result["lag_max_ms"]
    assert isinstance(result["meets_targets"], bool)


@pytest.mark.slow
def test_startup_benchmark_reaches_the_login_screen() -> None:
    result = startup.run(runs=1)
    assert result["benchmark"] == "startup" and result["runs"] == 1
    _finite(result, ("first_frame_s", "first_frame_max_s", "cli_floor_s", "ratio"))
    assert result["cli_floor_s"] > 0
    assert 0 < result["first_frame_s"] < startup.TIMEOUT_S


@pytest.mark.slow
@pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")
def test_alarm_benchmark_sees_every_crossing() -> None:
    result = alarm.run(samples=4, rate=50, seconds=2)
    assert result["benchmark"] == "alarm"
    assert result["crossings"] == 4 and result["samples"] == 4 and result["missed"] == 0
    _finite(result, ("p50_ms", "p99_ms", "alarm_p99_ms", "ratio", "hub_cpu_cores"))
    assert result["p50_ms"] <= result["p99_ms"]
    assert result["publisher_exit"] == 0
