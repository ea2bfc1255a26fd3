"""TOTP (RFC 6238) with replay refusal."""

from __future__ import annotations

import base64

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.auth._totp import STEP_S, code_at, match_step, new_secret, provisioning_uri

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()

# RFC 6238 appendix B, SHA-1 column.
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("t", "code"), RFC_VECTORS)
def test_rfc6238_sha1_vectors_8_digits(t: int, code: str) -> None:
    totp = pyotp.TOTP(RFC_SECRET, digits=8, interval=30)
    assert totp.at(for_time=t) == code
    assert totp.verify(code, for_time=t)


@pytest.mark.parametrize(("t", "code"), RFC_VECTORS)
def test_rfc6238_vectors_6_digits_are_the_last_six(t: int, code: str) -> None:
    assert code_at(RFC_SECRET, t) == code[-6:]
    assert match_step(RFC_SECRET, code[-6:], t, None) == t // 30


def test_code_accepted_once_only() -> None:
    t = 1_700_000_000.0
    code = code_at(RFC_SECRET, t)
    step = match_step(RFC_SECRET, code, t, None)
    assert step == int(t // STEP_S)
    assert match_step(RFC_SECRET, code, t, step) is None  # replay refused
    assert match_step(RFC_SECRET, code, t + 5, step) is None


def test_window_is_plus_minus_one_step() -> None:
    t = 1_700_000_010.0
    step = int(t // STEP_S)
    window = {d: code_at(RFC_SECRET, (step + d) * STEP_S) for d in (-1, 0, 1)}
    for d, code in window.items():
        assert match_step(RFC_SECRET, code, t, None) == step + d
    for d in (-3, -2, 2, 3):
        code = code_at(RFC_SECRET, (step + d) * STEP_S)
        if code not in window.values():  # a 6-digit collision is legitimately accepted
            assert match_step(RFC_SECRET, code, t, None) is None


def test_older_step_than_last_accepted_refused() -> None:
    t = 1_700_000_010.0
    step = int(t // STEP_S)
    newer = code_at(RFC_SECRET, t)
    assert match_step(RFC_SECRET, newer, t, None) == step
    older = code_at(RFC_SECRET, (step - 1) * STEP_S)
    assert match_step(RFC_SECRET, older, t, step) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_refused(bad: str) -> None:
    assert match_step(RFC_SECRET, bad, 59, None) is None


@given(t=st.integers(min_value=60, max_value=4_000_000_000))
def test_fresh_code_always_accepted_then_replay_refused(t: int) -> None:
    code = code_at(RFC_SECRET, t)
    step = match_step(RFC_SECRET, code, t, t // STEP_S - 2)
    assert step is not None and step >= t // STEP_S - 1
    assert match_step(RFC_SECRET, code, t, step) is None


def test_enrolment_uri() -> None:
    secret = new_secret()
    assert len(base64.b32decode(secret)) == 20
    uri = provisioning_uri(secret, "jdupont")
    assert uri.startswith("otpauth://totp/")
    assert f"secret={secret}" in uri
    assert "jdupont" in uri
    assert pyotp.parse_uri(uri).secret == secret
