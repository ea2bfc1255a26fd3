"""The verifier's fast path is never more lenient than its exact comparison.

``samu audit verify`` vouches for most rows with one SQL comparison of the columns with
the canonical bytes (``_FAST_FLAG`` plus a backslash test in Python) and only gives the
others the exact JSON comparison. These tests hold the fast comparison to that contract
with values chosen to fool it: NUL bytes (SQLite's ``printf`` and ``GLOB`` stop at
them), quotes, backslashes and non-ASCII text; and they check the block scan's
shortcuts (continuity by count, no ``count(*)``) on damaged and on huge-``seq`` trails.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from console.records import AuditEvent, Store, verify_trail
from console.records import _verify as verify_module
from console.records._audit import EVENT_KEYS
from console.records._schema import AUDIT_TRIGGERS
from tests.support.tampering import DROP, tamper, verdict

TEXT_COLUMNS = (
    "time",
    "actor",
    "role",
    "terminal",
    "action",
    "object",
    "purpose",
    "outcome",
    "detail",
)
RESTORE = (AUDIT_TRIGGERS["audit_events_no_update"], AUDIT_TRIGGERS["audit_events_no_delete"])
N_EVENTS = 30  # plus the key event at seq 1


def make_trail(directory: Path, events: list[AuditEvent] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "samu.db"
    with Store.open(path, checkpoint_every=10) as store:
        for event in events or []:
            store.append_audit(event)
        if events is None:
            for i in range(N_EVENTS):
                store.append_audit(
                    AuditEvent(
                        actor=f"user:u{i % 3}",
                        role="regulateur",
                        terminal="regul-01",
                        action="observation.read",
                        object=f"patient:{i}",
                        detail={"case": f"c-{i}", "n": i},
                    )
                )
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_trail(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def trail(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "t"
    shutil.copytree(pristine.parent, target)
    return target / "samu.db"


@pytest.mark.parametrize("hidden", ["x", '"x'])
@pytest.mark.parametrize("column", TEXT_COLUMNS)
@pytest.mark.usefixtures("small_blocks")
def test_a_nul_byte_and_text_hidden_after_a_column_is_an_edit(
    trail: Path, column: str, hidden: str
) -> None:
    # printf('%s') and GLOB stop at the NUL: the rebuilt bytes still equal the canonical
    # ones and a quote after it goes unseen. The triggers are put back, so only the row
    # comparison can tell.
    tamper(
        trail,
        *DROP,
        f"UPDATE audit_events SET {column} = {column} || char(0) || ? WHERE seq = 17",
        *RESTORE,
        params=(hidden,),
    )
    for workers in (1, 2):
        assert verdict(trail, workers=workers) == (1, "edited", 17)
    assert verify_trail(trail).missing_triggers == []


def test_a_row_moved_to_a_huge_seq_is_found_without_planning_its_blocks(trail: Path) -> None:
    # max(seq) is then 2**62: the scan must not plan 2**46 blocks before noticing the gap.
    tamper(trail, *DROP, f"UPDATE audit_events SET seq = {2**62} WHERE seq = 20")
    assert verdict(trail) == (1, "edited", 20)
    assert verify_trail(trail).events == N_EVENTS + 1  # counted, not taken from max(seq)


@pytest.mark.usefixtures("small_blocks")
def test_a_gap_in_any_block_is_a_deletion_in_both_paths(trail: Path) -> None:
    tamper(trail, *DROP, "DELETE FROM audit_events WHERE seq = 9")
    for workers in (1, 2):
        assert verdict(trail, workers=workers) == (1, "deleted", 9)
        assert verify_trail(trail, workers=workers).events == N_EVENTS


# Values a real trail may hold: quotes, backslashes, control characters, NUL, non-ASCII.
odd_text = st.text(
    st.sampled_from(
        ['"', "\\", "\x00", "\x01", "\n", "é", "€", "😀", "a", "Z", ":", ",", "{", "}"]
    ),
    min_size=1,
    max_size=8,
)


def odd_events(actor: str, obj: str, reason: str, note: str) -> list[AuditEvent]:
    """A break-glass read whose fields hold the odd text, then a plain event."""
    return [
        AuditEvent(
            actor=f"user:{actor}",
            role="regulateur",
            terminal="regul-01",
            action="record.read",
            object=obj,
            purpose=f"break-glass: {reason}x",
            detail={"note": note, note: [1, {"n": note}]},
        ),
        AuditEvent(actor="user:plain", role="r", terminal="t", action="a", object="o"),
    ]


@pytest.mark.slow  # ~4.5 s: a trail built and verified for each hypothesis example
@given(actor=odd_text, obj=odd_text, reason=odd_text, note=odd_text)
def test_unusual_legitimate_values_verify_intact(
    actor: str, obj: str, reason: str, note: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = make_trail(Path(tmp) / "t", odd_events(actor, obj, reason, note))
        for workers in (1, 2):
            report = verify_trail(path, workers=workers)
            assert report.exit_code == 0, report.verdict()
            assert report.events == 3


STRING_COLUMNS = tuple(c for c in TEXT_COLUMNS if c != "detail")
TEMPLATE_ORDER = EVENT_KEYS  # the canonical keys, sorted: the template's order


def edit_row(
    pristine: Path, tmp: str, row: int, column: str, insert: bytes, at: int, forge: bool
) -> sqlite3.Connection:
    """A copy of the trail with ``insert`` spliced into a column of ``row``; with ``forge``,
    ``canonical`` rebuilt the way a forger using SQLite would (its printf cuts at NUL)."""
    path = Path(tmp) / "samu.db"
    shutil.copy(pristine, path)
    conn = sqlite3.connect(path)
    for sql in DROP:
        conn.execute(sql)
    (value,) = conn.execute(
        f"SELECT CAST({column} AS BLOB) FROM audit_events WHERE seq = ?", (row,)
    ).fetchone()
    at %= len(value) + 1
    edited = value[:at] + insert + value[at:]
    conn.execute(f"UPDATE audit_events SET {column} = CAST(? AS TEXT) WHERE seq = ?", (edited, row))
    if forge:
        conn.execute(
            f"UPDATE audit_events SET canonical = CAST(printf('{verify_module._TEMPLATE}', "
            f"{', '.join(TEMPLATE_ORDER)}) AS BLOB) WHERE seq = ?",
            (row,),
        )
    conn.commit()
    return conn


def fast_accepts(conn: sqlite3.Connection, row: int) -> tuple[bool, bytes]:
    ok, canonical = conn.execute(
        f"SELECT {verify_module._FAST_FLAG}, canonical FROM audit_events WHERE seq = ?", (row,)
    ).fetchone()
    return bool(ok) and verify_module._BACKSLASH not in canonical, bytes(canonical)


@example(row=17, column="actor", insert=b"\x00x", at=100, forge=True)
@example(row=17, column="detail", insert=b"\x00x", at=100, forge=True)
@given(
    row=st.integers(1, N_EVENTS + 1),
    column=st.sampled_from(TEXT_COLUMNS),
    insert=st.binary(min_size=1, max_size=6) | odd_text.map(str.encode),
    at=st.integers(0, 100),
    forge=st.booleans(),
)
def test_the_fast_comparison_vouches_only_for_columns_spelled_out_in_the_canonical_bytes(
    pristine: Path, row: int, column: str, insert: bytes, at: int, forge: bool
) -> None:
    """What the fast path promises, checked byte for byte in Python: the canonical bytes
    are the template filled with the columns' *whole* bytes, no string column holds a
    quote (so each one's extent is unambiguous) and nothing was escaped."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = edit_row(pristine, tmp, row, column, insert, at, forge)
        fast, canonical = fast_accepts(conn, row)
        values = conn.execute(
            "SELECT "
            + ", ".join(c if c == "seq" else f"CAST({c} AS BLOB)" for c in TEMPLATE_ORDER)
            + " FROM audit_events WHERE seq = ?",
            (row,),
        ).fetchone()
        conn.close()
        columns = dict(zip(TEMPLATE_ORDER, values, strict=True))
        spelled_out = (
            verify_module._TEMPLATE.encode() % values == canonical
            and not any(b'"' in columns[c] for c in STRING_COLUMNS)
            and b"\\" not in canonical
        )
        assert spelled_out or not fast, (column, insert, canonical)


@given(
    row=st.integers(1, N_EVENTS + 1),
    column=st.sampled_from(STRING_COLUMNS),
    insert=st.text(
        st.sampled_from(['"', "\\", "\x00", "é", "€", "😀", "a", ":", ",", "{", "}"]),
        min_size=1,
        max_size=6,
    ),
    at=st.integers(0, 100),
    forge=st.booleans(),
)
def test_the_fast_comparison_never_vouches_for_a_column_the_exact_one_rejects(
    pristine: Path, row: int, column: str, insert: str, at: int, forge: bool
) -> None:
    """String columns edited with quotes, backslashes, NULs or non-ASCII text (and the
    canonical bytes forged to match): the fast path accepts only what the exact JSON
    comparison accepts as far as the columns go. (Raw control characters or a ``detail``
    that is not JSON would make the canonical bytes invalid JSON, and a forged time or
    outcome breaks the event's rules, which only the exact path notices: rewriting
    ``canonical`` means recomputing every later hash, which the checkpoints catch.)"""
    with tempfile.TemporaryDirectory() as tmp:
        conn = edit_row(pristine, tmp, row, column, insert.encode(), at, forge)
        fast, canonical = fast_accepts(conn, row)
        _, exact, why = verify_module._exact_check(conn, row, canonical)
        conn.close()
        breaks_event_rules = why != "" and why == _rules_broken(canonical)
        assert exact or not fast or breaks_event_rules, (column, insert, canonical, why)


def _rules_broken(canonical: bytes) -> str:
    """The event-rule verdict (time, outcome, purpose) of canonical bytes that parse."""
    try:
        obj = json.loads(canonical)
    except ValueError:
        return ""
    if not isinstance(obj, dict) or not all(
        isinstance(obj.get(k), str) for k in ("time", "outcome", "purpose", "actor", "action")
    ):
        return ""
    return verify_module._event_rules(obj)


LOOSE_TABLE = (
    "CREATE TABLE audit_events (seq {seq_type} PRIMARY KEY, time, actor, role, terminal, "
    "action, object, purpose, outcome, detail, canonical, leaf_hash, chain_hash)"
)


def rebuild_loose(path: Path, seq_type: str = "INTEGER") -> tuple[str, ...]:
    """Statements replacing the STRICT table by one that accepts any type in any column,
    the way a forger working with the sqlite3 shell would before storing odd values."""
    return (
        *DROP,
        "CREATE TABLE copy AS SELECT * FROM audit_events",
        "DROP TABLE audit_events",
        LOOSE_TABLE.format(seq_type=seq_type),
        "INSERT INTO audit_events SELECT * FROM copy",
        "DROP TABLE copy",
    )


@pytest.mark.parametrize(
    "edit",
    [
        "canonical = CAST(canonical AS TEXT)",
        "canonical = NULL",
        "canonical = 5",
        "leaf_hash = NULL",
        "leaf_hash = lower(hex(leaf_hash))",
        "chain_hash = 'abc'",
        "actor = NULL",
        "actor = 42",
        "detail = NULL",
    ],
)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.usefixtures("small_blocks")
def test_a_column_of_another_type_is_an_edit_not_a_crash(
    trail: Path, edit: str, workers: int
) -> None:
    tamper(trail, *rebuild_loose(trail), f"UPDATE audit_events SET {edit} WHERE seq = 17")
    assert verdict(trail, workers=workers) == (1, "edited", 17)


@pytest.mark.parametrize("value", ["'x'", "17.5", "x'11'"])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.usefixtures("small_blocks")
def test_a_seq_that_is_no_integer_leaves_its_position_empty(
    trail: Path, value: str, workers: int
) -> None:
    # Only a table rebuilt without INTEGER PRIMARY KEY accepts it; the event is then
    # nowhere in the sequence, and its position is where the damage is.
    tamper(
        trail, *rebuild_loose(trail, "INT"), f"UPDATE audit_events SET seq = {value} WHERE seq = 17"
    )
    assert verdict(trail, workers=workers) == (1, "edited", 17)


def test_odd_rows_in_the_key_table_are_not_trusted_and_do_not_crash() -> None:
    from console.records._checkpoint import trusted_keys

    anchor = bytes(range(32))
    rows = [(None, None, None), ("k1", anchor, None), ("k2", "text", b"sig"), ("k3", anchor, 5)]
    assert trusted_keys(rows) == {}  # the first row (the anchor) is unusable
    assert trusted_keys(rows[1:]) == {"k1": anchor}


def test_importing_the_verifier_leaves_the_heavy_parts_unloaded() -> None:
    # ``samu audit verify`` starts in a fraction of a second: the records package loads
    # its parts on first use, and the verifier needs neither sqlite-utils (which pulls in
    # numpy), nor the MQTT client, nor the backup code.
    import subprocess
    import sys

    code = (
        "import sys; from console.records import verify_trail; "
        "print(sorted(m for m in ('sqlite_utils', 'numpy', 'aiomqtt', "
        "'console.records._store', 'console.records._backup') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import console.records

    # every public name is reachable through the lazy map, and nothing else is in it
    assert set(console.records.__all__) == set(console.records._EXPORTS)


@pytest.mark.slow  # ~4 s: a trail built and verified for each example, no checkpoint
@given(actor=odd_text, obj=odd_text, reason=odd_text, note=odd_text)
def test_unusual_legitimate_values_verify_intact_under_no_checkpoint_too(
    actor: str, obj: str, reason: str, note: str
) -> None:
    # Rows after the last checkpoint take the exact path (canonical form, own seq): the
    # writer's bytes must pass it whatever they hold. The store is abandoned after its
    # commits, as by a crash, so no closing checkpoint covers them.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samu.db"
        store = Store.open(path, checkpoint_every=1000)
        store.append_audit_many(odd_events(actor, obj, reason, note))
        store.conn.close()  # no Store.close(): nothing checkpoints events 2 and 3
        for workers in (1, 2):
            report = verify_trail(path, workers=workers)
            assert report.exit_code == 0, report.verdict()
            assert report.events == 3
