"""Receiving: each kind of bad message is refused with its reason code, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocols import (
    MAX_ENVELOPE_BYTES,
    EnvelopeError,
    KeyRing,
    MacError,
    canonical_json,
    decode_envelope_json,
    encode_envelope,
    open_envelope,
    parse_envelope,
    sign_envelope,
)

KEY = b"k" * 32
RING = KeyRing({("ehpad-lilas", "ox-1"): KEY})
T = "2026-11-23T17:02:03.120+01:00"


def envelope(**overrides: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "v": 1,
        "id": "0b7e7c1e-4d4c-4a55-9b8e-2a1e6f3c9d10",
        "kind": "vitals",
        "site": "ehpad-lilas",
        "device": "ox-1",
        "seq": 42,
        "sent": T,
        "body": {
            "v": 1,
            "patient": "res-12",
            "observations": [
                {"code": "59408-5", "value": 91, "unit": "%", "time": T, "method": "device"}
            ],
        },
    }
    env.update(overrides)
    return env


def signed_bytes(env: dict[str, Any], key: bytes = KEY) -> bytes:
    return json.dumps(sign_envelope(env, key), ensure_ascii=False).encode()


def reason(data: bytes | str, ring: KeyRing = RING) -> str:
    with pytest.raises(EnvelopeError) as exc:
        open_envelope(data, ring)
    assert str(exc.value).startswith(exc.value.reason)
    return exc.value.reason


def test_good_envelope_opens() -> None:
    env = open_envelope(signed_bytes(envelope()), RING)
    assert env.kind == "vitals" and env.seq == 42


def test_oversize_refused_before_parsing() -> None:
    big = b"{" + b" " * MAX_ENVELOPE_BYTES + b"}"
    assert reason(big) == "oversize"
    with pytest.raises(EnvelopeError) as exc:
        parse_envelope(big)
    assert exc.value.reason == "oversize" and "65536" in exc.value.detail


def test_size_limit_is_64_kib_of_utf8() -> None:
    """65 536 bytes pass the size check (then fail as JSON here); 65 537 do not."""
    at_limit = b"x" * MAX_ENVELOPE_BYTES
    assert reason(at_limit) == "json"
    assert reason(at_limit + b"x") == "oversize"
    # Counted in UTF-8 bytes, not characters: 32 769 "é" are 65 538 bytes.
    assert reason("é" * 32769) == "oversize"


def test_an_envelope_of_exactly_64_kib_is_read() -> None:
    """At the limit the message reaches the MAC and schema checks; one byte more does not."""
    env = envelope(pad="")
    base = len(canonical_json(sign_envelope(env, KEY)))
    env["pad"] = "x" * (MAX_ENVELOPE_BYTES - base)
    raw = canonical_json(sign_envelope(env, KEY))
    assert len(raw) == MAX_ENVELOPE_BYTES
    assert reason(raw) == "schema"  # authenticated; `pad` is not a field
    env["pad"] += "x"
    assert reason(canonical_json(sign_envelope(env, KEY))) == "oversize"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b'{"v":1',
        b"\xff\xfe{}",
        b'{"v":NaN}',
        b'{"v":Infinity}',
        b'{"v":1e400}',
        b'{"a":1,"a":2}',
        b'{"body":{"x":1,"x":1}}',
        b"[1,2,3]",
        b'"string"',
        b"null",
    ],
)
def test_invalid_json_refused(data: bytes) -> None:
    assert reason(data) == "json"
    with pytest.raises(EnvelopeError) as exc:
        decode_envelope_json(data)
    assert exc.value.reason == "json"


def test_unknown_sender_before_schema() -> None:
    assert reason(signed_bytes(envelope(device="ox-9"))) == "unknown-sender"
    junk = {"site": "nowhere", "device": "x", "mac": "A" * 43}
    assert reason(json.dumps(junk).encode()) == "unknown-sender"


def test_bad_mac_before_schema() -> None:
    raw = signed_bytes(envelope(), key=b"z" * 32)
    assert reason(raw) == "mac"
    with pytest.raises(MacError):
        open_envelope(raw, RING)
    unsigned = json.dumps(envelope()).encode()
    assert reason(unsigned) == "mac"


def test_schema_failures_of_authenticated_messages() -> None:
    bad_unit = envelope()
    bad_unit["body"]["observations"][0]["unit"] = "mmHg"
    assert reason(signed_bytes(bad_unit)) == "schema"

    naive = envelope(sent="2026-11-23T17:02:03")
    assert reason(signed_bytes(naive)) == "schema"

    unknown_field = envelope(priority="P0")
    with pytest.raises(EnvelopeError) as exc:
        open_envelope(signed_bytes(unknown_field), RING)
    assert exc.value.reason == "schema" and "priority" in exc.value.detail

    body_field = envelope()
    body_field["body"]["observations"][0]["comment"] = "x"
    with pytest.raises(EnvelopeError) as exc:
        open_envelope(signed_bytes(body_field), RING)
    assert "body.observations.0.comment" in exc.value.detail


def test_parse_envelope_checks_schema_without_keys() -> None:
    env = parse_envelope(canonical_json(envelope()))
    assert env.mac is None
    with pytest.raises(EnvelopeError) as exc:
        parse_envelope(canonical_json(envelope(kind="implant")))
    assert exc.value.reason == "schema"


def test_encode_envelope_refuses_to_produce_oversize() -> None:
    env = envelope(kind="status", body={"v": 1, "state": "ok"}, pad="x" * MAX_ENVELOPE_BYTES)
    with pytest.raises(EnvelopeError) as exc:
        encode_envelope(env)
    assert exc.value.reason == "oversize"
    assert len(encode_envelope(envelope())) < MAX_ENVELOPE_BYTES
