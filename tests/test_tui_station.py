"""The EHPAD nurse station, driven with Pilot on a real database, a real pty for its
bedside device and the real ingest for the bilan it sends."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import Checkbox, DataTable, Input, Select, Static

import scenarios
from console.auth import LocalOperator
from console.cases import default_dir
from console.cli.station import _backend
from console.services import Services, open_services
from console.settings import Settings
from console.tui import DemoAccount, SerialPort, StationApp, load_roster
from console.tui._login import LoginScreen
from console.tui._station import StationScreen
from protocols.codecs import get_codec

pytestmark = pytest.mark.skipif(
    not (default_dir() / "nomenclatures").is_dir(),
    reason=f"Hub Santé nomenclatures absent ({default_dir()}): ../shared/reference is not here",
)

PW = "correct horse battery staple"
OP = LocalOperator("tester", "pts/test")
SITE = "ehpad-les-tilleuls"
ROSTER = """
[[residents]]
id = "res-0142"
birth_name = "MARTIN"
first_names = ["Jeanne", "Marie"]
birth_date = "1934-03-12"
sex = "F"
dlu = { history = ["Insuffisance cardiaque"], allergies = ["Pénicilline"] }
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Path]]:
    folder = tmp_path_factory.mktemp("station")
    (folder / "roster.toml").write_text(ROSTER)
    with open_services(Settings(db=folder / "samu.db"), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("demo-garde"), services).run()
        yield services, folder


_COUNT = iter(range(1000))


def nurse(services: Services, site: str = SITE) -> DemoAccount:
    user = f"ide{next(_COUNT)}"
    enrolment = services.accounts.create_user(OP, user, ["ide_ehpad"], PW, site=site)
    return DemoAccount(user, PW, enrolment.otpauth_uri)


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def sign_in(pilot, app: StationApp, account: DemoAccount) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*account.user_id, "tab", *account.password, "tab", *account.totp(), "enter")


async def test_a_bilan_with_live_readings_reaches_the_core_and_the_reply_comes_back(world) -> None:
    services, folder = world
    master, slave = os.openpty()
    backend, outbox = _backend(services, None)
    app = StationApp(
        backend,
        site=SITE,
        outbox=outbox,
        ports=[SerialPort(os.ttyname(slave), "sbf1")],
        roster=load_roster(folder / "roster.toml"),
    )
    before = services.store.fetchone("SELECT count(*) FROM ingest_messages WHERE kind = 'bilan'")
    try:
        async with app.run_test(size=(170, 60)) as pilot:
            await sign_in(pilot, app, nurse(services))
            await wait_for(pilot, lambda: isinstance(app.screen, StationScreen)
                           and app.screen.query_one("#residents", DataTable).row_count)  # fmt: skip
            screen = app.screen
            assert isinstance(screen, StationScreen)
            codec = get_codec("sbf1")
            reading = {"kind": "spo2", "values": {"spo2_pct": 89, "pulse_bpm": 104}, "seq": 1}
            os.write(master, codec.encode(reading))
            await wait_for(pilot, lambda: "59408-5" in screen.latest)
            assert screen.latest["59408-5"][0] == 89
            table = screen.query_one("#residents", DataTable)
            table.move_cursor(row=table.get_row_index("res-0142"))
            await wait_for(pilot, lambda: screen.resident == "res-0142")
            assert screen.query_one("#id-birth_name", Input).value == "MARTIN"
            assert "Pénicilline" in str(screen.query_one("#dlu", Static).render())
            # Nothing is sent without a complaint, and the form is kept.
            await pilot.press("ctrl+s")
            status = screen.query_one("#status", Static)
            await wait_for(pilot, lambda: "complaint" in str(status.render()))
            screen.query_one("#complaint", Input).value = "Dyspnée brutale"
            screen.query_one("#resp_rate", Input).value = "26"
            screen.query_one("#consciousness", Select).value = "A"
            screen.query_one("#fall", Checkbox).value = True
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: "Bilan sent" in str(status.render()))
            await wait_for(pilot, lambda: screen.query_one("#replies", DataTable).row_count)
    finally:
        os.close(master)
        os.close(slave)
    after = services.store.fetchone("SELECT count(*) FROM ingest_messages WHERE kind = 'bilan'")
    assert after[0] == before[0] + 1
    sent = services.store.fetchone(
        "SELECT count(*) FROM audit_events WHERE action = 'bilan.send' AND object = ?",
        (f"site:{SITE}",),
    )
    assert sent[0] >= 1


async def test_a_nurse_of_another_site_is_refused(world) -> None:
    services, _ = world
    backend, outbox = _backend(services, None)
    app = StationApp(backend, site=SITE, outbox=outbox)
    async with app.run_test(size=(170, 60)) as pilot:
        await sign_in(pilot, app, nurse(services, site="ehpad-ailleurs"))
        await wait_for(pilot, lambda: app.session is None and isinstance(app.screen, LoginScreen))
        assert not any(isinstance(s, StationScreen) for s in app.screen_stack)


def test_the_command_line_refuses_bad_input(tmp_path: Path) -> None:
    from console.cli import main

    assert main(["station", "--site", "bad site"]) == 2
    assert main(["station", "--site", SITE, "--serial", "/dev/ttyUSB0"]) == 2
    assert main(["station", "--site", SITE, "--serial", "/dev/ttyUSB0:nope"]) == 2
    (tmp_path / "r.toml").write_text("residents = [ {")
    assert main(["station", "--site", SITE, "--roster", str(tmp_path / "r.toml")]) == 2
    assert main(["station", "--site", SITE, "--db", str(tmp_path / "none.db")]) == 2


async def _first_screen(port: int) -> str:
    import aiohttp

    got = ""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/ws?width=160&height=45") as ws,
    ):
        deadline = time.monotonic() + 30
        while "connexion" not in got and time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(ws.receive(), 5)
            except TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.TEXT:
                got += msg.data
            elif msg.type == aiohttp.WSMsgType.BINARY:
                got += msg.data.decode(errors="replace")
            else:
                break
    return got


def test_serve_puts_the_station_on_loopback_for_a_browser(world) -> None:
    import socket
    import subprocess
    import sys
    import urllib.request

    services, _ = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "console.cli", "station", "--serve", "--port", str(port),
            "--site", SITE, "--db", str(services.db_path)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        page = ""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    page = reply.read().decode()
            except OSError:
                time.sleep(0.1)  # polling a condition (the port opens), not a fixed wait
        assert "textual" in page.lower()
        # A browser's websocket starts the station itself: its login screen arrives.
        assert "connexion" in asyncio.run(_first_screen(port))
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_port_in_use_and_a_missing_database(world, tmp_path: Path) -> None:
    import socket

    from console.cli._main import main

    services, _ = world
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["station", "--serve", "--port", str(port), "--site", SITE]
        assert main([*argv, "--db", str(services.db_path)]) == 2
    assert main(["station", "--serve", "--site", SITE, "--db", str(tmp_path / "no.db")]) == 2
