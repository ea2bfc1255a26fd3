"""A nurse's manual observations (scenarios.md) reach NEWS2: respiration rate,
consciousness and "air or oxygen", which no bedside device measures."""

from __future__ import annotations

from pathlib import Path

import pytest

import scenarios
from console.services import open_services
from console.settings import Settings
from protocols import BilanBody

SEPSIS = scenarios.LIBRARY_DIR / "sepsis-ehpad.toml"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("observations = { pulse = 80 }", "observations.pulse: unknown"),
        ('observations = { consciousness = "Z" }', "one of A C V P U"),
        ('observations = { on_oxygen = "yes" }', "true or false"),
        ('observations = { resp_rate = "fast" }', "a number"),
    ],
)
def test_bad_manual_observations_are_file_errors(line: str, message: str) -> None:
    text = SEPSIS.read_text().replace(
        "observations = { on_oxygen = false }  # she checked: on room air", line
    )
    with pytest.raises(scenarios.ScenarioError, match=message):
        scenarios.loads_scenario(text, "bad.toml")


def test_typed_values_replace_the_simulated_ones_and_oxygen_is_said() -> None:
    text = SEPSIS.read_text().replace(
        "observations = { on_oxygen = false }",
        'observations = { resp_rate = 31, consciousness = "V", on_oxygen = true }',
    )
    sc = scenarios.loads_scenario(text)
    from firmware_sim import VirtualClock
    from firmware_sim.transports import InprocBus
    from protocols import parse_envelope

    bus = InprocBus()
    run = scenarios.build_scenario(sc, VirtualClock(), link_for=scenarios.inproc_links(bus))
    run.start()
    run.sim.clock.run_until(sc.scenario.duration)
    bodies = [parse_envelope(m.payload).body for m in bus.messages if "/bilan" in m.topic]
    (bilan,) = [b for b in bodies if isinstance(b, BilanBody)]
    values = {o.code: o.value for o in bilan.observations}
    assert values["9279-1"] == 31 and values["67775-7"] == "V" and bilan.on_oxygen is True
    assert all(o.method == "manual" for o in bilan.observations)


def test_the_bilan_completes_news2(tmp_path: Path) -> None:
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("sepsis-ehpad"), services).run()
        complete = services.store.fetchall(
            "SELECT news2, qsofa FROM triage_results WHERE news2_complete = 1 ORDER BY result_id"
        )
    assert complete, "NEWS2 was never complete"
    news2, qsofa = complete[0]
    assert news2 >= 7 and qsofa >= 2  # sepsis: the nurse's RR and confusion count
