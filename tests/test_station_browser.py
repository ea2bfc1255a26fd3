"""``samu station --serve`` in a real browser: headless Chromium (Debian's package, which
``make test`` installs) loads the page, runs textual-serve's JavaScript, opens the
station's websocket and draws the login screen.

The terminal is drawn on a canvas, so the test reads what the *browser* received on its
websocket through the DevTools protocol (Network.webSocketFrameReceived), checks that
the page marked its terminal as drawing (textual-serve's ``-first-byte``), and keeps a
screenshot beside the test's temporary files for a person to look at.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from console.services import open_services
from console.settings import Settings

pytestmark = pytest.mark.slow

SITE = "ehpad-les-lilas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return str(reply.read().decode())
        except OSError:
            time.sleep(0.1)  # polling a condition (the port opens), not a fixed wait
    raise AssertionError(f"{url} did not answer within {timeout} s")


class DevTools:
    """The smallest DevTools client: commands with ids, events collected as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await self.ws.receive(timeout=30)).data)
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    async def pump(self, seconds: float) -> None:
        """Collect events for up to ``seconds`` (returns early when none come)."""
        try:
            while True:
                msg = await self.ws.receive(timeout=seconds)
                self.events.append(json.loads(msg.data))
        except TimeoutError:
            return

    def requested(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def websocket_text(self) -> str:
        out = []
        for e in self.events:
            if e.get("method") != "Network.webSocketFrameReceived":
                continue
            frame = e["params"]["response"]
            data = frame["payloadData"]
            out.append(
                base64.b64decode(data).decode(errors="replace") if frame["opcode"] == 2 else data
            )
        return "".join(out)


async def _look(chromium: str, url: str, profile: Path) -> tuple[str, bool, bytes, list[str]]:
    port = free_port()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
         "--remote-debugging-address=127.0.0.1", "--window-size=1280,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        targets = json.loads(wait_http(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t.get("type") == "page")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws,
        ):
            tools = DevTools(ws)
            await tools.call("Network.enable")
            await tools.call("Page.enable")
            await tools.call("Page.navigate", url=url)
            drawn = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await tools.pump(0.5)
                state = await tools.call(
                    "Runtime.evaluate",
                    expression="document.body !== null"
                    " && document.body.classList.contains('-first-byte')",
                    returnByValue=True,
                )
                drawn = bool(state["result"].get("value"))
                if drawn and "connexion" in tools.websocket_text():
                    break
            shot = await tools.call("Page.captureScreenshot", format="png")
            return (tools.websocket_text(), drawn, base64.b64decode(shot["data"]),
                    tools.requested())  # fmt: skip
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()


def test_the_station_served_to_a_browser_draws_its_login_screen(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's chromium package")
    with open_services(Settings(db=tmp_path / "samu.db"), create=True):
        pass  # a database the station may open (the station never creates one)
    port = free_port()
    station = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "station", "--serve", "--port", str(port),
         "--site", SITE, "--db", str(tmp_path / "samu.db")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        page = wait_http(f"http://127.0.0.1:{port}/")
        assert "textual" in page.lower() and "googleapis" not in page
        received, drawn, png, requested = asyncio.run(
            _look(chromium, f"http://127.0.0.1:{port}/", tmp_path / "profile")
        )
    finally:
        station.terminate()
        station.wait(10)
    (tmp_path / "station.png").write_bytes(png)
    assert drawn, "the page never started drawing the terminal"
    assert "connexion" in received and SITE in received, received[-2000:]
    assert png.startswith(b"\x89PNG") and len(png) > 10_000  # a drawn page, not a blank one
    # The station's page asks nothing of anyone but the station (no fonts from the web).
    outside = [u for u in requested if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1"))]
    assert requested and outside == []
