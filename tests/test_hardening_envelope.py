"""The public envelope API refuses what the wire path refuses, with the module's own
error and a reason: not an object, nested beyond reason, no canonical form."""

from __future__ import annotations

from typing import Any

import pytest

from protocols import (
    EnvelopeError,
    KeyRing,
    canonical_json,
    encode_envelope,
    open_envelope,
    sign_envelope,
    verify_envelope,
)
from protocols._canonical import CanonicalJsonError

KEY = bytes(range(32))
RING = KeyRing({("ehpad-lilas", "ox-1"): KEY})


def deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(depth):
        node = {"a": node}
    return node


def envelope(body: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "id": "0b7c1c1e-3f43-4f4e-9a51-2f3f1f1e2d3c",
        "kind": "vitals",
        "site": "ehpad-lilas",
        "device": "ox-1",
        "seq": 1,
        "sent": "2026-11-23T17:02:03.120+01:00",
        "body": body,
        "mac": "A" * 43,
    }


@pytest.mark.parametrize("value", [[], ["site"], "envelope", 42, None, b"{}", 1.5])
def test_verify_refuses_what_is_not_an_object(value: Any) -> None:
    with pytest.raises(EnvelopeError) as exc:
        verify_envelope(value, RING)
    assert exc.value.reason == "json"
    assert "object" in exc.value.detail


def test_verify_refuses_a_100000_deep_body_cleanly() -> None:
    with pytest.raises(EnvelopeError) as exc:
        verify_envelope(envelope(deep(100_000)), RING)
    assert exc.value.reason == "json"
    assert "deep" in exc.value.detail or "nest" in exc.value.detail


def test_the_wire_path_refuses_deep_nesting_with_the_same_reason() -> None:
    text = '{"a":' * 10_000 + "{}" + "}" * 10_000  # 60 002 bytes: under 64 KiB
    with pytest.raises(EnvelopeError) as exc:
        open_envelope(text, RING)
    assert exc.value.reason == "json"


def test_a_deep_key_that_is_not_the_body_is_refused_too() -> None:
    env = envelope({})
    env["extra"] = deep(100_000)
    with pytest.raises(EnvelopeError) as exc:
        verify_envelope(env, RING)
    assert exc.value.reason == "json"


def test_canonical_json_refuses_deep_nesting_with_its_own_error() -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json(deep(100_000))


def test_signing_and_encoding_refuse_cleanly_too() -> None:
    with pytest.raises(ValueError) as exc:
        sign_envelope(envelope(deep(100_000)), KEY)
    assert not isinstance(exc.value, RecursionError)
    with pytest.raises(EnvelopeError) as exc2:
        sign_envelope(["not", "an", "object"], KEY)  # type: ignore[arg-type]
    assert exc2.value.reason == "json"
    with pytest.raises(EnvelopeError) as exc3:
        encode_envelope(["not", "an", "object"])  # type: ignore[arg-type]
    assert exc3.value.reason == "json"
    with pytest.raises(EnvelopeError) as exc4:
        encode_envelope(envelope(deep(100_000)))
    assert exc4.value.reason == "json"


def test_a_sane_envelope_still_goes_through() -> None:
    signed = sign_envelope(envelope({"a": deep(20)}), KEY)
    with pytest.raises(EnvelopeError) as exc:
        verify_envelope(signed, RING)
    assert exc.value.reason == "schema"  # authenticated, then refused on its body only


@pytest.mark.parametrize("value", [10**9, None, {"v": 1}, ["x"]])
def test_the_wire_functions_refuse_what_is_not_bytes_or_text(value: Any) -> None:
    """``bytes(10**9)`` is a gigabyte of zeros: the type is checked before anything."""
    with pytest.raises(EnvelopeError) as exc:
        open_envelope(value, RING)
    assert exc.value.reason == "json" and "bytes or text" in exc.value.detail
