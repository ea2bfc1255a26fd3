"""``make demo`` as a newcomer (or the contract's script) drives it: in a real terminal
(tmux), read the demo password and TOTP code off the login screen, type them in one
burst, watch cases arrive, open one, record a decision, sign the compte rendu, quit.
Then check in the demo database that the decision and the signature are really there."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from console.cases import default_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (default_dir() / "nomenclatures").is_dir(),
        reason=f"Hub Santé nomenclatures absent ({default_dir()}): decisions need them",
    ),
]

ROOT = Path(__file__).resolve().parent.parent


class Tmux:
    def __init__(self, command: str) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: run `make setup` (Debian's tmux package)")
        self.name = f"samu-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "170", "-y", "45", command],
            check=True,
        )

    def screen(self, *, history: bool = False) -> str:
        start = ["-S", "-"] if history else []
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", *start, "-t", self.name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait(self, what: Callable[[str], object], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if what(text):
                return text
            time.sleep(0.2)  # polling the terminal for a condition, not a fixed wait
        raise AssertionError(f"not on screen within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


def test_make_demo_from_login_to_a_signed_compte_rendu() -> None:
    samu = f"{sys.executable} -c 'from console.cli._main import entry; entry()'"
    term = Tmux(f"cd {ROOT} && {samu} demo; sleep 120")
    try:
        login = term.wait(lambda s: re.search(r"TOTP: \d{6}", s) and "password: " in s)
        password = re.search(r"password: (\S+)", login).group(1)  # type: ignore[union-attr]
        code = re.search(r"TOTP: (\d{6})", login).group(1)  # type: ignore[union-attr]
        assert "DEMO" in login
        term.keys("demo-regulateur", "Tab", password, "Tab", code, "Enter")
        board = term.wait(lambda s: re.search(r"\bP[0-3]\b.*DRFR15", s), timeout=90)
        assert "Affaire" in board
        term.keys("Enter")
        term.wait(lambda s: "Vitals" in s and "Trail" in s)
        term.keys("d")
        term.wait(lambda s: "Niveau de soins" in s)
        # Priority is preset to the suggestion; choose care level and decision type as a
        # keyboard user does: Enter opens the list, Down picks the first code, Enter.
        term.keys("Tab")
        for listed in ("R4 — Conseil ou PMT", "ORIENT — "):
            term.keys("Enter")
            term.wait(lambda s, listed=listed: listed in s)
            term.keys("Down", "Enter")
            term.wait(lambda s, listed=listed: listed not in s)
            term.keys("Tab")
        term.keys("C-s")
        term.wait(lambda s: "Decision signed" in s or "Refused" in s)
        assert "Refused" not in term.screen(), term.screen()
        term.keys("r")
        term.wait(lambda s: "preview; s signs" in s)
        term.keys("s")
        term.wait(lambda s: "Compte rendu signed" in s)
        term.keys("Escape", "Escape")
        term.keys("C-q")
        end = term.wait(lambda s: "demo database kept in" in s)
        # The whole scroll-back: a clean stop prints no traceback, not even a task's.
        scrollback = term.screen(history=True)
        assert "Traceback" not in scrollback and "Task exception" not in scrollback, scrollback
    finally:
        term.close()
    folder = Path(re.search(r"demo database kept in (\S+)", end).group(1))  # type: ignore[union-attr]
    with sqlite3.connect(folder / "demo.db") as db:
        assert db.execute("SELECT count(*) FROM decisions").fetchone()[0] == 1
        signed = db.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'report.sign'"
        ).fetchone()[0]
        assert signed == 1
