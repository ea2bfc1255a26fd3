"""The scenario file model and loader: library, strictness, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scenarios
from firmware_sim import FaultKind
from scenarios import ScenarioError, load_scenario, loads_scenario, parse_seconds

MINIMAL = """
schema_version = 1
[scenario]
name = "t"
duration = "10m"
site = "ehpad-a"

[[patients]]
id = "r1"

[[devices]]
id = "spo2-1"
kind = "spo2"
patient = "r1"
format = "masimo-ascii1"
"""


def test_library_has_the_required_situations_and_all_load() -> None:
    names = {p.stem for p in scenarios.library()}
    assert {
        "night-fall-hypoxaemia",
        "sepsis-ehpad",
        "stroke-video-fast",
        "icd-shock-storm",
        "pacemaker-rrt-lead",
        "bronchiolitis-video-withdrawn",
        "device-chaos",
        "load-200-ehpad",
        "quiet-night",
    } <= names
    for path in scenarios.library():
        s = load_scenario(path)
        assert s.scenario.name == path.stem
        assert s.duration_s > 0
    assert load_scenario("quiet-night").scenario.name == "quiet-night"  # by library name


def test_minimal_scenario_and_defaults() -> None:
    s = loads_scenario(MINIMAL)
    assert s.scenario.duration == 600.0
    assert s.scenario.seed == 0
    assert s.devices[0].transport == "serial"
    assert s.devices[0].faults == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("schema_version = 1", "schema_version = 2"),
            "unsupported schema_version 2",
        ),
        (lambda t: t.replace("schema_version = 1", ""), "schema_version is missing"),
        (lambda t: t.replace('patient = "r1"', 'patient = "r9"'), "unknown patient 'r9'"),
        (lambda t: t.replace('format = "masimo-ascii1"', 'format = "masimo"'), "devices[0].format"),
        (lambda t: t + 'colour = "blue"\n', "devices[0].colour: Extra inputs are not permitted"),
        (lambda t: t.replace('duration = "10m"', 'duration = "ten minutes"'), "not a duration"),
        (lambda t: t.replace('kind = "spo2"', 'kind = "bp"'), "oximeter format"),
        (
            lambda t: t + '[[devices.faults]]\nkind = "corrupt"\nrate = 2.0\n',
            "devices[0].faults[0].rate",
        ),
        (lambda t: t + '[[devices.faults]]\nkind = "clock_skew"\n', "needs 'value'"),
        (lambda t: t + '[[devices.faults]]\nkind = "meteor"\n', "devices[0].faults[0].kind"),
        (lambda t: t.replace('id = "spo2-1"', 'id = "spo2/1"'), "devices[0].id"),
        (lambda t: t + "[[patients.course]]\nat = 1\n", "needs vital, preset"),
        (lambda t: "[scenario", "not valid TOML"),
    ],
)
def test_bad_scenarios_fail_with_a_message_that_points_at_the_problem(edit, message) -> None:
    with pytest.raises(ScenarioError) as exc:
        loads_scenario(edit(MINIMAL), "bad.toml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("bad.toml: invalid scenario")


def test_course_steps_validate() -> None:
    text = MINIMAL.replace(
        "[[devices]]",
        '[[patients.course]]\nat = "2m"\nvital = "spo2"\nrate_per_min = -1\nto = 84\n\n'
        '[[patients.course]]\nat = 300\npreset = "sepsis"\nparams = { over_s = 900 }\n\n'
        "[[devices]]",
    )
    s = loads_scenario(text)
    steps = s.patients[0].course
    assert steps[0].at == 120.0 and steps[0].rate_per_min == -1
    assert steps[1].preset == "sepsis" and steps[1].params == {"over_s": 900}
    with pytest.raises(ScenarioError, match="unknown preset"):
        loads_scenario(text.replace('"sepsis"', '"flu"'))
    with pytest.raises(ScenarioError, match="exactly one of 'to' or 'delta'"):
        loads_scenario(text.replace("to = 84", ""))


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(
        ScenarioError, match=r"no such file, nor a library scenario \(library: .*quiet"
    ):
        load_scenario(tmp_path / "nope.toml")


def test_fault_kinds_match_the_simulator() -> None:
    assert set(scenarios.FAULT_KINDS) == {k.value for k in FaultKind}


@given(h=st.integers(0, 48), m=st.integers(0, 59), s=st.integers(0, 59))
def test_durations_parse(h: int, m: int, s: int) -> None:
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else "")
    assert parse_seconds(text) == h * 3600 + m * 60 + s
    assert parse_seconds(float(s)) == float(s)


def test_duration_rejects_booleans_and_infinities() -> None:
    with pytest.raises(ValueError):
        parse_seconds(True)
    with pytest.raises(ScenarioError):
        loads_scenario(MINIMAL.replace('duration = "10m"', "duration = inf"))
