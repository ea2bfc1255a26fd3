"""``samu hub --serial``: a device wired to the hub itself, over a real socket:// port —
readings stored, bad frames quarantined with the codec's reason, unplug and replug."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from console.cli import EXIT_USAGE, main
from console.ingest import SerialSpecError, parse_serial_spec
from console.services import Hub, open_services
from console.settings import Settings
from protocols.codecs import get_codec

MASIMO = get_codec("masimo-ascii1")


def line(spo2: int) -> bytes:
    return MASIMO.encode({"kind": "spo2", "values": {"spo2_pct": spo2, "pulse_bpm": 72}})


async def until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)  # polling a condition, not a fixed wait


async def test_readings_errors_unplug_and_replug(tmp_path: Path) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def device(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(device, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = f"port=socket://127.0.0.1:{port},format=masimo-ascii1,site=ehpad-x,device=ox-1,patient=res-01"
    source, baud = parse_serial_spec(spec)
    out = io.StringIO()
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        hub = Hub(services, broker=None, centre="samu075", out=out, serial=[(source, baud)])
        running = asyncio.create_task(hub.run())
        await until(lambda: len(connections) == 1)
        connections[0].write(line(97) + line(96) + b"SPO2=0Z7% BPM=072\r\n" + line(95))
        await connections[0].drain()

        def observed() -> int:
            return int(services.store.fetchone("SELECT count(*) FROM observations")[0])

        await until(lambda: observed() == 6)
        connections[0].close()  # unplugged
        await until(lambda: '"state": "disconnected"' in out.getvalue())
        await until(lambda: len(connections) == 2, timeout=30)  # the hub retried: replugged
        connections[1].write(line(94))
        await connections[1].drain()
        await until(lambda: observed() == 8)
        hub.stop()
        await asyncio.wait_for(running, 30)
        (device_row,) = services.store.fetchall(
            "SELECT frames, errors, quarantined, state FROM devices WHERE device = 'ox-1'"
        )
        reasons = services.store.fetchall("SELECT reason, source FROM quarantine")
        incidents = services.store.fetchall("SELECT kind, category FROM incidents")
    server.close()
    assert device_row[:3] == (4, 1, 1)
    assert reasons and reasons[0][1] == f"serial:socket://127.0.0.1:{port}"
    assert ("technical", "device-disconnect") in incidents
    assert '"state": "reconnected"' in out.getvalue()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("port=/dev/ttyUSB0,format=sbf1,site=a", "missing device"),
        ("port=/dev/ttyUSB0,format=morse,site=a,device=b", "unknown format"),
        ("port=/dev/ttyUSB0,format=sbf1,site=a b,device=b", "site"),
        ("port=/dev/ttyUSB0,format=sbf1,site=a,device=b,baud=fast", "baud"),
        ("/dev/ttyUSB0", "expected port=URL"),
        ("port=/dev/x,format=sbf1,site=a,device=b,colour=red", "unknown key"),
    ],
)
def test_bad_serial_specs_say_why(spec: str, message: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SerialSpecError, match=message):
        parse_serial_spec(spec)
    assert main(["hub", "--db", str(tmp_path / "s.db"), "--serial", spec]) == EXIT_USAGE
    assert message.split(maxsplit=1)[0] in capsys.readouterr().err


def test_a_hub_with_nothing_to_ingest_is_a_usage_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["hub", "--db", str(tmp_path / "s.db")]) == EXIT_USAGE
    assert "nothing to ingest" in capsys.readouterr().err


async def test_text_log_lines_when_configured(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from console.settings import load_settings

    monkeypatch.setenv("SAMU_LOG_FORMAT", "text")
    out = io.StringIO()
    with open_services(load_settings(None, db=tmp_path / "s.db"), create=True) as services:
        hub = Hub(services, broker=None, centre="samu075", out=out)
        running = asyncio.create_task(hub.run())
        await until(lambda: "started" in out.getvalue())
        hub.stop()
        await asyncio.wait_for(running, 30)
    first = out.getvalue().splitlines()[0]
    assert " started " in first and not first.startswith("{")
