"""``samu replay --transport serial|mqtt``: the short library scenarios through real
ptys and a real Mosquitto meet their expectations, with the same report as in process;
``--speed N`` paces the run; the load generator is seeded; same seed, same digest."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import scenarios
from console.cli import EXIT_OK, EXIT_USAGE, main
from console.records import Store
from console.services import open_services
from console.settings import Settings
from tests.support.brokers import Broker


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = main(["replay", *argv, "--json", "--headless"])
    return code, [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]


def wired(
    name: str, tmp_path: Path, transport: str, broker: Broker | None
) -> scenarios.ScenarioReport:
    db = tmp_path / f"{name}-{transport}.db"
    config = None
    if broker is not None:
        from transport import BrokerConfig

        config = BrokerConfig.parse(broker.url)
    with open_services(Settings(db=db), create=True) as services:
        result = scenarios.WiredReplay(
            scenarios.load_scenario(name), services, transport=transport, broker=config
        ).run()
    with Store.open(db, readonly=True) as store:
        return scenarios.evaluate(result, store, db)


def inproc(name: str, tmp_path: Path) -> scenarios.ScenarioReport:
    db = tmp_path / f"{name}-inproc.db"
    with open_services(Settings(db=db), create=True) as services:
        result = scenarios.InprocReplay(scenarios.load_scenario(name), services).run()
    with Store.open(db, readonly=True) as store:
        return scenarios.evaluate(result, store, db)


@pytest.mark.slow  # ~10 s for the three
@pytest.mark.parametrize(
    "name", ["icd-shock-storm", "bronchiolitis-video-withdrawn", "device-chaos"]
)
def test_short_library_scenarios_through_a_real_broker(
    name: str, mosquitto: Broker, tmp_path: Path
) -> None:
    got = wired(name, tmp_path, "mqtt", mosquitto)
    assert [v.detail for v in got.verdicts if not v.met] == []
    # publication order is restored whatever the broker interleaved: same as in process
    assert got.store_sha256 == inproc(name, tmp_path).store_sha256


@pytest.mark.slow  # ~10 s for the two
@pytest.mark.parametrize("name", ["device-chaos", "stroke-video-fast"])
def test_short_library_scenarios_through_ptys(name: str, tmp_path: Path) -> None:
    got = wired(name, tmp_path, "serial", None)
    assert [v.detail for v in got.verdicts if not v.met] == []
    expected = inproc(name, tmp_path)
    assert [v.as_dict(got.scenario) for v in got.verdicts] == [
        v.as_dict(expected.scenario) for v in expected.verdicts
    ]
    assert got.store_sha256 == expected.store_sha256


@pytest.mark.slow  # ~6 s
def test_cli_mqtt_on_a_throwaway_broker_twice_gives_the_same_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = report(capsys, "icd-shock-storm", "--transport", "mqtt")
    second = report(capsys, "icd-shock-storm", "--transport", "mqtt")
    assert first[0] == second[0] == EXIT_OK
    assert first[1] == second[1] and first[1][-1]["missed"] == 0


SHORT = """schema_version = 1
[scenario]
name = "short-paced"
seed = 12
duration = 20
site = "ehpad-p"

[[patients]]
id = "res-p1"

[[devices]]
id = "spo2-p1"
kind = "spo2"
patient = "res-p1"
format = "sbf1"
period = 1

[[expect]]
what = "no_loss"
"""


@pytest.mark.parametrize("transport", ["inproc", "serial"])
def test_speed_n_paces_the_virtual_clock(
    transport: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    fast = report(capsys, str(path), "--transport", transport)
    started = time.monotonic()
    paced = report(capsys, str(path), "--transport", transport, "--speed", "20")
    took = time.monotonic() - started
    assert took >= 20 / 20 * 0.95  # 20 simulated seconds at 20×: about a second
    assert paced == fast and paced[0] == EXIT_OK


def test_the_same_seed_gives_the_same_report_and_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    first, second = report(capsys, str(path))[1], report(capsys, str(path))[1]
    assert first == second and first[-1]["seed"] == 12
    other = tmp_path / "other.toml"
    other.write_text(SHORT.replace("seed = 12", "seed = 13"))
    assert report(capsys, str(other))[1][-1]["store_sha256"] != first[-1]["store_sha256"]


def test_the_load_generator_is_seeded_and_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "c.toml"
    for out, seed in ((a, "5"), (b, "5"), (c, "6")):
        assert main(["replay", "--generate", "3x4", "--rate", "0.5", "--duration", "30",
                     "--seed", seed, "--write", str(out)]) == EXIT_OK  # fmt: skip
    assert a.read_text() == b.read_text() != c.read_text()
    load = scenarios.load_scenario(a).load
    assert load is not None and (load.sites, load.devices_per_site, load.period) == (3, 4, 2.0)
    capsys.readouterr()
    code, lines = report(capsys, "--generate", "3x4", "--rate", "0.5", "--duration", "30",
                         "--seed", "5")  # fmt: skip
    assert code == EXIT_OK and lines[-1]["met"] == 1 and lines[0]["what"] == "no_loss"
    assert lines == report(capsys, str(a))[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["icd-shock-storm", "--speed", "0"], "--speed"),
        (["icd-shock-storm", "--mqtt", "mqtt://127.0.0.1:1"], "--mqtt goes with --transport mqtt"),
        (["icd-shock-storm", "--transport", "mqtt", "--mqtt", "mqtt://10.0.0.1:1883"], "loopback"),
        (["--generate", "0x5"], "--generate"),
        (["--generate", "2x2", "--rate", "-1"], "--rate"),
        ([], "give scenario FILE"),
        (["icd-shock-storm", "--write", "x.toml"], "--write goes with --generate"),
    ],
)
def test_bad_usage(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", *argv, "--headless"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
