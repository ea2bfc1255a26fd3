"""Crash safety: a writer killed with SIGKILL at random moments loses no acknowledged event.

The child appends batches of random size and prints the last ``seq`` only after the
commit returned (``synchronous=FULL``); the parent kills it after a random number of
acknowledgements — so mid-insert, mid-commit, mid-checkpoint or mid-outside-file —
restarts, and checks that every acknowledged event is there and the trail verifies
(including the outside checkpoints, which must never be ahead of the log).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.records import Store, verify_trail

CHILD = r"""
import random, sys
from console.records import AuditEvent, Store
store = Store.open(sys.argv[1], checkpoint_every=7)
rng = random.Random(int(sys.argv[2]))
i = 0
while True:
    size = rng.randint(1, 20)
    batch = [AuditEvent(actor="user:x", role="arm", terminal="t", action="observation.read",
                        object=f"patient:{i + k}", detail={"k": k}) for k in range(size)]
    i += len(batch)
    seqs = store.append_audit_many(batch)
    print(seqs[-1], flush=True)
"""

ROUNDS = 6


@pytest.mark.slow  # ~3.5 s: six SIGKILLed writer processes, each restarted and verified
def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(20250601)
    acknowledged = 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for round_no in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(round_no)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        wanted = rng.randint(3, 40)
        for seen, line in enumerate(child.stdout, start=1):  # wait for n acknowledgements
            acknowledged = max(acknowledged, int(line))
            if seen >= wanted:
                break
        child.send_signal(signal.SIGKILL)
        for line in child.stdout:  # acknowledgements already in the pipe count too
            acknowledged = max(acknowledged, int(line))
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""

        report = verify_trail(db)
        assert report.exit_code == 0, (round_no, report.verdict(), report.details())
        conn = sqlite3.connect(db)
        last, count = conn.execute("SELECT max(seq), count(*) FROM audit_events").fetchone()
        conn.close()
        assert last == count >= acknowledged, (round_no, last, acknowledged)

        with Store.open(db):  # restart: recovery checkpoint
            pass
        assert verify_trail(db).exit_code == 0
    assert acknowledged > ROUNDS * 3
