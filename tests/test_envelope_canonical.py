"""Canonical JSON and MAC vectors: fixed bytes, written out by hand, and their HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math

import pytest
from hypothesis import given

from protocols import (
    CanonicalJsonError,
    Envelope,
    KeyRing,
    MacError,
    canonical_json,
    open_envelope,
    sign_envelope,
    verify_envelope,
)
from tests.support.strategies import json_values

KEY = b"0123456789abcdef0123456789abcdef"

SAMPLE = {
    "v": 1,
    "id": "6f1c2b1e-8a7d-4c3e-9f10-2b5d7e9a0c41",
    "kind": "video",
    "site": "samu075",
    "device": "video-gw-1",
    "seq": 7,
    "sent": "2026-11-23T17:02:03.120+01:00",
    "body": {
        "v": 1,
        "session": "vs-0042",
        "case": "fr.health.samu075.DRM-2026-0042",
        "event": "consent_granted",
        "time": "2026-11-23T17:02:01.000+01:00",
        "consent": {"by": "FAMILLE", "name": "Élise Durand", "relation": "fille", "how": "verbal"},
    },
}

# Sorted keys at every level, "," and ":" only, "É" as its two UTF-8 bytes C3 89.
EXPECTED = (
    b'{"body":{"case":"fr.health.samu075.DRM-2026-0042","consent":{"by":"FAMILLE",'
    b'"how":"verbal","name":"\xc3\x89lise Durand","relation":"fille"},'
    b'"event":"consent_granted","session":"vs-0042",'
    b'"time":"2026-11-23T17:02:01.000+01:00","v":1},"device":"video-gw-1",'
    b'"id":"6f1c2b1e-8a7d-4c3e-9f10-2b5d7e9a0c41","kind":"video",'
    b'"sent":"2026-11-23T17:02:03.120+01:00","seq":7,"site":"samu075","v":1}'
)

# HMAC-SHA256(KEY, EXPECTED), base64url without padding, computed with
# `openssl dgst -sha256 -hmac KEY -binary | base64 | tr '+/' '-_' | tr -d '='`.
EXPECTED_MAC = "DeIQ1Ij2-6lw6pYkbrpxXgywweLOV_MGWqAxH7qpwls"


def test_canonical_bytes_of_the_sample() -> None:
    assert canonical_json(SAMPLE) == EXPECTED


def test_canonical_equals_the_contract_expression() -> None:
    contract = json.dumps(SAMPLE, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(SAMPLE) == contract.encode()


def test_mac_of_the_sample() -> None:
    independent = base64.urlsafe_b64encode(hmac.new(KEY, EXPECTED, hashlib.sha256).digest()).rstrip(
        b"="
    )
    assert independent.decode() == EXPECTED_MAC
    signed = sign_envelope(SAMPLE, KEY)
    assert signed["mac"] == EXPECTED_MAC
    assert {k: v for k, v in signed.items() if k != "mac"} == SAMPLE
    assert len(signed["mac"]) == 43 and "=" not in signed["mac"]


def test_model_produces_the_same_bytes_and_mac() -> None:
    env = Envelope.model_validate(SAMPLE)
    assert canonical_json(env.to_wire()) == EXPECTED
    assert sign_envelope(env, KEY)["mac"] == EXPECTED_MAC


def test_sample_verifies_from_raw_bytes() -> None:
    raw = canonical_json({**SAMPLE, "mac": EXPECTED_MAC})
    ring = KeyRing({("samu075", "video-gw-1"): KEY})
    env = open_envelope(raw, ring)
    assert env.mac == EXPECTED_MAC
    assert env.body.consent is not None and env.body.consent.name == "Élise Durand"  # type: ignore[union-attr]


def test_verification_uses_received_json_not_a_reserialisation() -> None:
    """Spacing, key order and \\u escapes on the wire do not matter: the parsed data is
    canonicalised, so what was signed is what is checked."""
    pretty = json.dumps({**SAMPLE, "mac": EXPECTED_MAC}, indent=2, ensure_ascii=True)
    ring = KeyRing({("samu075", "video-gw-1"): KEY})
    open_envelope(pretty.encode(), ring)


def test_padded_mac_accepted_other_spellings_refused() -> None:
    ring = KeyRing({("samu075", "video-gw-1"): KEY})
    verify_envelope({**SAMPLE, "mac": EXPECTED_MAC + "="}, ring)
    std_alphabet = EXPECTED_MAC.replace("-", "+").replace("_", "/")
    for bad in (EXPECTED_MAC + "==", std_alphabet, EXPECTED_MAC[:-1], " " + EXPECTED_MAC):
        with pytest.raises(MacError) as exc:
            verify_envelope({**SAMPLE, "mac": bad}, ring)
        assert exc.value.reason == "mac"


def test_integers_and_floats_are_different_texts() -> None:
    assert canonical_json({"a": 98}) == b'{"a":98}'
    assert canonical_json({"a": 98.0}) == b'{"a":98.0}'
    assert canonical_json({"a": 0.1, "b": 1e-7, "c": 1e16}) == b'{"a":0.1,"b":1e-07,"c":1e+16}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_have_no_canonical_form(bad: float) -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json({"value": bad})
    with pytest.raises(ValueError):
        sign_envelope({**SAMPLE, "seq": bad}, KEY)


def test_non_json_values_refused() -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json({"t": object()})
    with pytest.raises(CanonicalJsonError):
        canonical_json({"s": "\ud800"})  # lone surrogate: not encodable as UTF-8


def test_non_ascii_kept_as_is_and_escapes_normalised() -> None:
    assert canonical_json({"n": "Zoë 東京 🚑"}) == '{"n":"Zoë 東京 🚑"}'.encode()
    assert canonical_json({"n": 'a"b\\c\n\u0001'}) == b'{"n":"a\\"b\\\\c\\n\\u0001"}'


@given(json_values)
def test_canonical_form_is_a_fixed_point(value: object) -> None:
    """Parsing canonical bytes and canonicalising again gives the same bytes."""
    raw = canonical_json(value)
    assert canonical_json(json.loads(raw)) == raw
    assert b"\n" not in raw and b": " not in raw
