"""Canonical bytes, leaf/chain hashes and the RFC 6962 Merkle tree of the audit trail."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from console.records import AuditEvent, merkle_root
from console.records._audit import ZERO_CHAIN, canonical_text, event_row
from console.records._merkle import EMPTY_ROOT, Frontier, MerkleLevels, fold
from protocols import canonical_json

# certificate-transparency's merkle_tree_test vectors (leaf inputs and roots for 1..8 leaves).
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_rfc6962_vectors(size: int) -> None:
    leaves = [leaf(x) for x in CT_INPUTS[:size]]
    assert merkle_root(leaves).hex() == CT_ROOTS[size - 1]
    frontier = Frontier()
    frontier.extend(leaves)
    assert frontier.root().hex() == CT_ROOTS[size - 1]


def test_empty_tree_is_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert Frontier().root() == EMPTY_ROOT


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=80), st.data())
def test_incremental_and_levelled_trees_match_the_recursive_definition(
    leaves: list[bytes], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(leaves)))
    frontier = Frontier()
    frontier.extend(leaves[:split])
    restored = Frontier.from_bytes(frontier.size, frontier.to_bytes())
    restored.extend(leaves[split:])
    assert restored.root() == merkle_root(leaves)
    levels = MerkleLevels(list(leaves))
    prefix = data.draw(st.integers(0, len(leaves)))
    assert fold(levels.prefix_frontier(prefix)) == merkle_root(leaves[:prefix])


def test_frontier_refuses_inconsistent_sizes() -> None:
    with pytest.raises(ValueError):
        Frontier(3, [bytes(32)])


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


@given(
    actor=texts.filter(bool),
    role=texts,
    terminal=texts,
    action=texts.filter(bool),
    obj=texts,
    outcome=st.sampled_from(["success", "failure", "denied"]),
    detail=st.dictionaries(texts, json_values, max_size=4),
    seq=st.integers(1, 2**53),
    offset=st.integers(-14 * 60, 14 * 60),
)
def test_canonical_bytes_are_sorted_compact_utf8_json(
    actor: str,
    role: str,
    terminal: str,
    action: str,
    obj: str,
    outcome: str,
    detail: dict,
    seq: int,
    offset: int,
) -> None:
    when = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(minutes=offset)))
    event = AuditEvent(
        time=when,
        actor=actor,
        role=role,
        terminal=terminal,
        action=action,
        object=obj,
        outcome=outcome,
        detail=detail,
    )
    expected = {
        "action": action,
        "actor": actor,
        "detail": detail,
        "object": obj,
        "outcome": outcome,
        "purpose": "normal",
        "role": role,
        "seq": seq,
        "terminal": terminal,
        "time": when.isoformat(),
    }
    reference = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert event.canonical(seq) == reference.encode("utf-8")
    assert event.detail_json == canonical_text(detail)
    assert event.detail_json.encode() == canonical_json(detail)  # one rule: protocols'
    row = event_row(event, seq, ZERO_CHAIN)
    assert row[10] == reference.encode("utf-8")
    assert row[11] == hashlib.sha256(b"\x00" + row[10]).digest()
    assert row[12] == hashlib.sha256(ZERO_CHAIN + row[11]).digest()


def test_default_time_is_now_with_an_explicit_offset() -> None:
    before = datetime.now(UTC)
    event = AuditEvent(actor="a", role="r", terminal="t", action="x")
    assert event.time.utcoffset() is not None
    assert before <= event.time <= datetime.now(UTC)
    assert event.time_text.endswith("+00:00")


@pytest.mark.parametrize(
    "bad",
    [
        {"purpose": "because"},
        {"purpose": "break-glass: "},
        {"outcome": "maybe"},
        {"detail": {"x": float("nan")}},
        {"detail": {"x": object()}},
        {"time": datetime(2025, 1, 1)},  # no offset
        {"actor": ""},
        {"unknown": 1},
    ],
)
def test_bad_events_are_refused_at_construction(bad: dict) -> None:
    fields = {"actor": "a", "role": "r", "terminal": "t", "action": "x", **bad}
    with pytest.raises(ValidationError):
        AuditEvent(**fields)


def test_break_glass_purpose_and_copies_stay_consistent() -> None:
    event = AuditEvent(actor="a", role="r", terminal="t", action="x", purpose="break-glass: arrêt")
    copy = event.model_copy(update={"actor": "b"})
    assert json.loads(copy.canonical(1))["actor"] == "b"
    assert json.loads(event.canonical(1))["purpose"] == "break-glass: arrêt"
