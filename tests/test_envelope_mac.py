"""MAC coverage (any change anywhere fails) and key ring behaviour (rotation, retirement)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocols import (
    DeviceKey,
    Envelope,
    EnvelopeError,
    KeyRing,
    MacError,
    canonical_json,
    open_envelope,
    seal_envelope,
    sign_envelope,
    verify_envelope,
)
from tests.support.strategies import envelopes, json_values

KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))


class AnySenderRing(KeyRing):
    """Hands the same key to every sender, so a refusal can only come from the MAC."""

    def keys_for(self, site: str, device: str) -> tuple[DeviceKey, ...]:
        return (DeviceKey("k1", KEY1),)


def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += all_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += all_paths(v, (*prefix, i))
    return out


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


@given(envelopes(), st.data())
def test_any_change_to_a_signed_envelope_fails_verification(
    env: Envelope, data: st.DataObject
) -> None:
    signed = sign_envelope(env, KEY1)
    ring = AnySenderRing()
    assert verify_envelope(signed, ring) == env.model_copy(update={"mac": signed["mac"]})

    tampered = copy.deepcopy(signed)
    path = data.draw(st.sampled_from(all_paths(tampered)), label="path")
    parent, last = get(tampered, path[:-1]), path[-1]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
    if action == "replace":
        new = data.draw(json_values, label="new value")
        assume(canonical_json(new) != canonical_json(parent[last]))
        parent[last] = new
    elif action == "delete":
        del parent[last]
    else:
        target = parent[last]
        assume(isinstance(target, dict | list))
        if isinstance(target, dict):
            key = data.draw(st.text(max_size=8), label="new key")
            assume(key not in target)
            target[key] = data.draw(json_values, label="new value")
        else:
            target.append(data.draw(json_values, label="new item"))

    with pytest.raises(MacError) as exc:
        verify_envelope(tampered, ring)
    if path[0] in ("site", "device") and not isinstance(tampered.get(path[0]), str):
        assert exc.value.reason == "unknown-sender"  # no sender to look a key up for
    else:
        assert exc.value.reason == "mac"


def test_mac_is_over_received_json_so_integers_stay_integers() -> None:
    """A device sends 98 (an integer); the model would re-serialise 98.0 and break the MAC."""
    raw = {
        "v": 1,
        "id": "0b7e7c1e-4d4c-4a55-9b8e-2a1e6f3c9d10",
        "kind": "vitals",
        "site": "s1",
        "device": "d1",
        "seq": 1,
        "sent": "2026-11-23T17:02:03+01:00",
        "body": {
            "v": 1,
            "observations": [
                {
                    "code": "59408-5",
                    "value": 98,
                    "unit": "%",
                    "time": "2026-11-23T17:02:03+01:00",
                    "method": "device",
                }
            ],
        },
    }
    signed = sign_envelope(raw, KEY1)
    env = open_envelope(json.dumps(signed).encode(), KeyRing({("s1", "d1"): KEY1}))
    assert sign_envelope(env, KEY1)["mac"] != signed["mac"]  # the model's form differs …
    assert env.mac == signed["mac"]  # … yet the received message verified


def test_sender_identity_is_part_of_the_lookup() -> None:
    ring = KeyRing({("s1", "d1"): KEY1, ("s1", "d2"): KEY2})
    wire = sign_envelope(_env("s1", "d1"), KEY1)
    verify_envelope(wire, ring)
    with pytest.raises(MacError) as exc:
        verify_envelope({**wire, "device": "d2"}, ring)  # known sender, wrong key
    assert exc.value.reason == "mac"
    with pytest.raises(MacError) as exc:
        verify_envelope({**wire, "device": "d3"}, ring)
    assert exc.value.reason == "unknown-sender"


def _env(site: str = "s1", device: str = "d1", seq: int = 1) -> Envelope:
    from protocols import DeathBody

    return Envelope.create(
        site=site,
        device=device,
        seq=seq,
        body=DeathBody(v=1, reason="shutdown"),
        sent=datetime(2026, 11, 23, 17, 2, 3, tzinfo=UTC),
        message_id="0b7e7c1e-4d4c-4a55-9b8e-2a1e6f3c9d10",
    )


def reason_of(raw: bytes, ring: KeyRing) -> str | None:
    try:
        open_envelope(raw, ring)
    except EnvelopeError as exc:
        return exc.reason
    return None


def test_unknown_sender_refused() -> None:
    ring = KeyRing()
    assert reason_of(seal_envelope(_env(), KEY1), ring) == "unknown-sender"
    ring.enroll("s1", "d1", KEY1)
    assert reason_of(seal_envelope(_env(), KEY1), ring) is None
    assert ring.revoke("s1", "d1")
    assert reason_of(seal_envelope(_env(), KEY1), ring) == "unknown-sender"


def test_rotation_window_then_retirement() -> None:
    ring = KeyRing()
    ring.enroll("s1", "d1", KEY1, key_id="2026-01")
    old, new = seal_envelope(_env(), KEY1), seal_envelope(_env(), KEY2)
    assert reason_of(old, ring) is None
    assert reason_of(new, ring) == "mac"

    ring.rotate("s1", "d1", KEY2, key_id="2026-06")
    assert ring.current_key("s1", "d1").key_id == "2026-06"
    assert reason_of(old, ring) is None  # still inside the window
    assert reason_of(new, ring) is None
    message = canonical_json(_env().to_wire())
    assert ring.match("s1", "d1", message, sign_envelope(_env(), KEY1)["mac"]) == "2026-01"
    assert ring.match("s1", "d1", message, sign_envelope(_env(), KEY2)["mac"]) == "2026-06"

    assert ring.retire("s1", "d1") == "2026-01"
    assert reason_of(old, ring) == "mac"  # retired: refused
    assert reason_of(new, ring) is None
    assert ring.retire("s1", "d1") is None


def test_rotation_window_ends_at_its_time() -> None:
    ring = KeyRing({("s1", "d1"): KEY1})
    end = datetime(2026, 12, 1, tzinfo=UTC)
    ring.rotate("s1", "d1", KEY2, key_id="k2", retire_after=end)
    old = seal_envelope(_env(), KEY1)
    assert ring.retire_expired(end - timedelta(seconds=1)) == []
    assert reason_of(old, ring) is None
    assert ring.retire_expired(end) == [("s1", "d1", "k1")]
    assert reason_of(old, ring) == "mac"


def test_a_second_rotation_drops_the_oldest_key() -> None:
    key3 = bytes(range(64, 96))
    ring = KeyRing({("s1", "d1"): KEY1})
    ring.rotate("s1", "d1", KEY2, key_id="k2")
    ring.rotate("s1", "d1", key3, key_id="k3")
    assert [k.key_id for k in ring.keys_for("s1", "d1")] == ["k3", "k2"]
    assert reason_of(seal_envelope(_env(), KEY1), ring) == "mac"


def test_reenrolment_replaces_every_key() -> None:
    ring = KeyRing({("s1", "d1"): KEY1})
    ring.rotate("s1", "d1", KEY2, key_id="k2")
    ring.enroll("s1", "d1", bytes(range(100, 132)), key_id="k9")
    assert reason_of(seal_envelope(_env(), KEY1), ring) == "mac"
    assert reason_of(seal_envelope(_env(), KEY2), ring) == "mac"


def test_key_ring_input_checks() -> None:
    ring = KeyRing()
    with pytest.raises(ValueError, match="at least 16"):
        ring.enroll("s1", "d1", b"short")
    with pytest.raises(ValueError):
        ring.enroll("s/1", "d1", KEY1)
    with pytest.raises(ValueError):
        ring.enroll("s1", "d1", KEY1, key_id="bad id")
    with pytest.raises(KeyError):
        ring.rotate("s1", "d1", KEY2, key_id="k2")
    ring.enroll("s1", "d1", KEY1)
    with pytest.raises(ValueError, match="already the current"):
        ring.rotate("s1", "d1", KEY2, key_id="k1")
    assert ("s1", "d1") in ring and len(ring) == 1 and list(ring) == [("s1", "d1")]
    assert KEY1.hex() not in repr(ring) and repr(KEY1) not in repr(ring.keys_for("s1", "d1"))
    with pytest.raises(ValueError):
        sign_envelope(_env(), b"")


def test_missing_or_malformed_mac() -> None:
    ring = KeyRing({("s1", "d1"): KEY1})
    wire = sign_envelope(_env(), KEY1)
    for mac in (
        None,
        42,
        "",
        "x" * 43,
        wire["mac"][:-1] + ("A" if wire["mac"][-1] != "A" else "B"),
    ):
        tampered = (
            {**wire, "mac": mac}
            if mac is not None
            else {k: v for k, v in wire.items() if k != "mac"}
        )
        with pytest.raises(MacError) as exc:
            verify_envelope(tampered, ring)
        assert exc.value.reason == "mac"
