"""The serial group commit (``RegulationCore.receive_lines`` → ``Ingest.accept_lines``).

A host reading many bedside serial lines commits what they all decoded at once: every
line's frames in **one** transaction with **one** ``ingest.batch`` audit event, as if
each line had been committed in turn (same rows, same order, same counters). Frames
keep their order per port, none is stored twice, a bad frame is quarantined with its
codec reason in the same commit, and a failure anywhere leaves nothing of any line.

Real sbf1 frames (``protocols.codecs``), a real core over a SQLite file; failures come
from the database itself (a trigger), not from a mock.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.ingest import (
    Accepted,
    Outcome,
    Quarantined,
    Sender,
    SerialSource,
    quarantine_rows,
    raw_opener,
)
from console.records import AuditContext
from console.services import Received, RegulationCore, Services, open_services
from console.settings import Settings
from protocols.codecs import Decoded, DecodeError, get_codec
from tests.support.sqlite import Commits, refusing

SITE = "ehpad-lilas"
T0 = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)
NOW = T0.timestamp()
SBF1 = get_codec("sbf1")
HUB = AuditContext(actor="system:hub", role="system", terminal="hub")
PORTS = tuple(
    SerialSource(f"socket://127.0.0.1:{4000 + i}", "sbf1", SITE, f"ox-{i}", f"res-{i}")
    for i in range(3)
)


def frame(seq: int, spo2: int, pulse: int = 72) -> bytes:
    """One sbf1 SpO2 measurement frame, its device clock right."""
    record = {
        "kind": "spo2",
        "seq": seq,
        "device_time": int(NOW),
        "values": {"spo2_pct": spo2, "pulse_bpm": pulse},
    }
    return SBF1.encode(record)


def corrupted(wire: bytes) -> bytes:
    """``wire`` with one payload bit flipped: a frame that fails its CRC."""
    bad = bytearray(wire)
    bad[5] ^= 0x01
    (item,) = SBF1.decode(bytes(bad))
    assert isinstance(item, DecodeError) and item.reason == "crc"
    return bytes(bad)


BAD = corrupted(frame(99, 97))


def decoded(*wires: bytes) -> list[Decoded | DecodeError]:
    """What a serial reader hands the host: the codec's items for those bytes."""
    return list(SBF1.decode(b"".join(wires)))


def three_lines() -> list[tuple[SerialSource, list[Decoded | DecodeError]]]:
    """ox-0: three frames; ox-1: two; ox-2: a good frame, a corrupted one, a good one.
    Each frame's SpO2 is distinct, so the stored order can be read back."""
    return [
        (PORTS[0], decoded(frame(1, 97), frame(2, 96), frame(3, 95))),
        (PORTS[1], decoded(frame(1, 98), frame(2, 99))),
        (PORTS[2], decoded(frame(1, 94), BAD, frame(2, 93))),
    ]


class Host:
    """A host with three sbf1 ports, enrolled as ``samu hub --serial`` enrols them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        services.devices.enrol(
            HUB, [Sender(p.site, p.device, "serial:sbf1", p.patient) for p in PORTS], now=T0
        )
        self.core = RegulationCore(services, now=NOW)
        self.open_raw = raw_opener(services.master_key)

    def count(self, table: str) -> int:
        return int(self.store.fetchone(f"SELECT count(*) FROM {table}")[0])

    def batches(self) -> list[dict[str, int]]:
        """The detail of every ``ingest.batch`` audit event."""
        return [
            json.loads(d)
            for (d,) in self.store.fetchall(
                "SELECT detail FROM audit_events WHERE action = 'ingest.batch' ORDER BY seq"
            )
        ]

    def stored(self, port: SerialSource) -> list[tuple[int, bytes]]:
        """(msg id, raw bytes) of every message stored from ``port``, in id order."""
        return [
            (int(mid), self.open_raw(bytes(raw)))
            for mid, raw in self.store.fetchall(
                "SELECT msg_id, raw FROM ingest_messages WHERE source = ? ORDER BY msg_id",
                (port.source,),
            )
        ]

    def spo2(self, port: SerialSource) -> list[float]:
        return [
            float(v)
            for (v,) in self.store.fetchall(
                "SELECT value FROM observations WHERE device = ? AND code = '59408-5'"
                " ORDER BY obs_id",
                (port.device,),
            )
        ]

    def counters(self) -> dict[str, tuple[int, int, int, str | None, str]]:
        """device → (frames, errors, quarantined, last seen, state)."""
        return {
            str(r[0]): (int(r[1]), int(r[2]), int(r[3]), r[4], str(r[5]))
            for r in self.store.fetchall(
                "SELECT device, frames, errors, quarantined, last_seen, state FROM devices"
            )
        }

    def snapshot(self) -> dict[str, object]:
        """Everything a batch of frames writes (to compare before and after)."""
        return {
            "tables": {
                t: self.count(t)
                for t in (
                    "ingest_messages",
                    "observations",
                    "quarantine",
                    "residents",
                    "triage_results",
                    "cases",
                    "audit_events",
                )
            },
            "devices": self.counters(),
        }


@contextmanager
def open_host(path: Path) -> Iterator[Host]:
    with open_services(Settings(db=path), create=True) as services:
        yield Host(services)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    with open_host(tmp_path / "samu.db") as h:
        yield h


def shape(outcomes: Sequence[Outcome]) -> list[str]:
    return [type(o).__name__ for o in outcomes]


# ---------------------------------------------------------------------- one commit


@pytest.mark.parametrize(("triage", "commits"), [(False, 2), (True, 1)])
def test_the_lines_of_several_ports_are_one_commit_with_one_audit_event(
    host: Host, triage: bool, commits: int
) -> None:
    """Ingest commits every line at once (and the case book applies them in one more
    commit); with ``triage`` (the hub) it is all one commit."""
    with Commits(host.store.conn) as trace:
        got = host.core.receive_lines(three_lines(), NOW, triage=triage)
    assert trace.commits == commits
    assert [shape(r.outcomes) for r in got] == [
        ["Accepted"] * 3,
        ["Accepted"] * 2,
        ["Accepted", "Quarantined", "Accepted"],
    ]
    assert host.batches() == [{"accepted": 7, "duplicates": 0, "quarantined": 1}]


def test_frames_keep_their_order_per_port_and_are_stored_once(host: Host) -> None:
    lines = three_lines()
    got = host.core.receive_lines(lines, NOW, triage=True)

    assert host.count("ingest_messages") == 7  # the good frames, each once
    for (port, items), received in zip(lines, got, strict=True):
        sent = [bytes(i.raw) for i in items if isinstance(i, Decoded)]
        stored = host.stored(port)
        assert [raw for _, raw in stored] == sent  # in the order the port read them
        accepted = [o for o in received.outcomes if isinstance(o, Accepted)]
        assert [o.msg_id for o in accepted] == [mid for mid, _ in stored]
        assert all(o.source == port.source and o.resident == port.patient for o in accepted)
    assert host.spo2(PORTS[0]) == [97.0, 96.0, 95.0]
    assert host.spo2(PORTS[1]) == [98.0, 99.0]
    assert host.spo2(PORTS[2]) == [94.0, 93.0]
    # Lines in the order given, then each line's frames: ids increase across the batch.
    ids = [o.msg_id for r in got for o in r.outcomes if isinstance(o, Accepted)]
    assert ids == sorted(ids) and len(set(ids)) == 7
    # The observations the outcomes name are the stored rows (id, message, value).
    named = {
        (o.obs_id, a.msg_id, o.code, o.value)
        for r in got
        for a in r.outcomes
        if isinstance(a, Accepted)
        for o in a.observations
    }
    rows = set(host.store.fetchall("SELECT obs_id, msg_id, code, value FROM observations"))
    assert named == rows and len(rows) == 14
    counters = host.counters()
    assert {d: c[0] for d, c in counters.items()} == {"ox-0": 3, "ox-1": 2, "ox-2": 2}


def test_a_bad_frame_is_quarantined_with_its_reason_in_the_same_commit(host: Host) -> None:
    with Commits(host.store.conn) as trace:
        got = host.core.receive_lines(three_lines(), NOW, triage=True)
    assert trace.commits == 1  # the quarantined frame with the good ones

    bad = got[2].outcomes[1]
    assert isinstance(bad, Quarantined)
    assert (bad.reason, bad.source, bad.site, bad.device) == ("crc", PORTS[2].source, SITE, "ox-2")
    (row,) = quarantine_rows(host.store, host.services.master_key)
    assert (row["reason"], row["source"], row["site"], row["device"]) == (
        "crc",
        PORTS[2].source,
        SITE,
        "ox-2",
    )
    assert "CRC" in str(row["detail"])
    assert base64.b64decode(str(row["raw"])) == BAD
    # Never shown as data: no message row, no observation carries its bytes.
    assert BAD not in [raw for _, raw in host.stored(PORTS[2])]
    counters = host.counters()
    assert counters["ox-2"][:3] == (2, 1, 1)  # frames, errors, quarantined
    assert counters["ox-0"][1:3] == counters["ox-1"][1:3] == (0, 0)
    # The line that read it streams a "quarantined" event; the others none.
    assert [[e.event for e in r.events] for r in got] == [[], [], ["quarantined"]]


# ------------------------------------------------------------------------- failure


@pytest.mark.parametrize(
    ("triage", "table", "when"),
    [
        (False, "ingest_messages", f"NEW.source = '{PORTS[2].source}'"),
        (True, "ingest_messages", f"NEW.source = '{PORTS[2].source}'"),
        (True, "triage_results", f"NEW.resident_id = '{SITE}/res-2'"),
    ],
    ids=["ingest-fails", "ingest-fails-triage", "triage-fails"],
)
def test_a_failure_leaves_nothing_of_any_line(
    host: Host, triage: bool, table: str, when: str
) -> None:
    """The last line's rows cannot be written: the first lines' frames, the quarantined
    frame, the counters and the audit event are not stored either. The unacknowledged
    lines then come back whole and are stored once."""
    lines = three_lines()
    before = host.snapshot()
    with refusing(host.store.path, table, when):
        with pytest.raises(sqlite3.DatabaseError, match="refused by the test"):
            host.core.receive_lines(lines, NOW, triage=triage)
        assert host.snapshot() == before
    assert all(host.core.cases.view(f"{SITE}/{p.patient}") is None for p in PORTS)

    got = host.core.receive_lines(lines, NOW, triage=triage)
    assert [shape(r.outcomes) for r in got][2] == ["Accepted", "Quarantined", "Accepted"]
    assert (host.count("ingest_messages"), host.count("quarantine")) == (7, 1)
    assert host.batches() == [{"accepted": 7, "duplicates": 0, "quarantined": 1}]


# ------------------------------------------------------------------- with triage


def test_with_triage_a_rise_on_any_line_is_on_the_board_with_the_batch(host: Host) -> None:
    """ox-1's resident reads SpO2 88 % (scores 3: P1): the case opens with the commit,
    not at the next tick; the batch's case events come with the first line."""
    lines = [
        (PORTS[0], decoded(frame(1, 97))),
        (PORTS[1], decoded(frame(1, 88), frame(2, 88))),
        (PORTS[2], decoded(BAD)),
    ]
    got = host.core.receive_lines(lines, NOW, triage=True)

    first = [(e.event, e.resident_id) for e in got[0].events]
    assert first == [("case_opened", f"{SITE}/res-1"), ("priority_changed", f"{SITE}/res-1")]
    assert [e.event for e in got[1].events] == []
    assert [e.event for e in got[2].events] == ["quarantined"]
    (case_id, sources, suggested) = host.store.fetchone(
        "SELECT case_id, sources, suggested_priority FROM cases"
    )
    assert (json.loads(sources), suggested) == (["vitals"], "P1")
    assert got[0].events[0].case_id == case_id
    results = host.store.fetchall("SELECT resident_id, priority FROM triage_results ORDER BY 1")
    assert results == [(f"{SITE}/res-0", "P3"), (f"{SITE}/res-1", "P1")]


# ------------------------------------------------------------- same as line by line


def test_one_commit_stores_what_a_commit_per_line_stores(tmp_path: Path) -> None:
    """The rows, their ids and the counters are those of ``receive_frames`` called on
    each line in turn; only the audit trail differs (one ``ingest.batch``, not three)."""

    def stored(host: Host) -> dict[str, object]:
        opened = host.open_raw
        return {
            "messages": [
                (*r[:-1], opened(bytes(r[-1])))
                for r in host.store.fetchall(
                    "SELECT msg_id, envelope_id, site, device, seq, kind, source, received_at,"
                    " sent_at, raw FROM ingest_messages ORDER BY msg_id"
                )
            ],
            "observations": host.store.fetchall(
                "SELECT obs_id, msg_id, site, resident, device, code, value, coded, unit,"
                " method, measured_at, observed_ts, clock_skew FROM observations"
                " ORDER BY obs_id"
            ),
            "quarantine": [
                (*r[:-1], opened(bytes(r[-1])))
                for r in host.store.fetchall(
                    "SELECT q_id, received_at, source, site, device, reason, detail, raw"
                    " FROM quarantine ORDER BY q_id"
                )
            ],
            "devices": host.store.fetchall(
                "SELECT site, device, frames, errors, quarantined, last_seen, state,"
                " battery_pct FROM devices ORDER BY device"
            ),
            "results": host.store.fetchall(
                "SELECT resident_id, case_id, at, priority, news2, observations"
                " FROM triage_results ORDER BY result_id"
            ),
        }

    lines = three_lines()
    with open_host(tmp_path / "grouped.db") as grouped:
        together: list[Received] = grouped.core.receive_lines(lines, NOW, triage=True)
        with open_host(tmp_path / "one-by-one.db") as one_by_one:
            apart = [
                one_by_one.core.receive_frames(port, items, NOW, triage=True)
                for port, items in lines
            ]
            assert [shape(r.outcomes) for r in together] == [shape(r.outcomes) for r in apart]
            assert stored(grouped) == stored(one_by_one)
            assert len(grouped.batches()) == 1 and len(one_by_one.batches()) == 3
