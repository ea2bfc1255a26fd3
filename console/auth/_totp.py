"""TOTP second factor (RFC 6238 via pyotp) with replay refusal.

pyotp's ``verify(code, valid_window=1)`` answers "is this code valid around now" but
not "was it already used": an observer of a code (shoulder-surfing, a keylogger) could
replay it within the ±1 step window. So we find *which* time step matched and accept
it only if it is strictly after the last step accepted for that user, which the caller
stores. Steps are integers (``unix_time // 30``), monotonic per user.
"""

from __future__ import annotations

import hmac

import pyotp

STEP_S = 30
DIGITS = 6
#: Accepted drift either side of now, in steps (clock skew of the phone).
WINDOW = 1
ISSUER = "SAMU"


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226's recommended HMAC-SHA1 key size)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, user_id: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://totp/…`` URI authenticator apps read from the enrolment QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=user_id, issuer_name=issuer
    )


def time_step(unix_time: float) -> int:
    """The RFC 6238 counter ``T = floor(unix_time / 30)``."""
    return int(unix_time // STEP_S)


def code_at(secret: str, unix_time: float, digits: int = DIGITS) -> str:
    """The code valid at ``unix_time`` (enrolment confirmation and tests)."""
    return pyotp.TOTP(secret, digits=digits, interval=STEP_S).at(int(unix_time))


def match_step(secret: str, code: str, unix_time: float, last_step: int | None) -> int | None:
    """Return the time step ``code`` is valid for, or None if it must be refused.

    Refused when the code matches no step in ``now ± WINDOW`` or when the step it
    matches is not strictly greater than ``last_step`` (replay of an accepted code or
    of an older one). Comparison is constant-time per candidate.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    now_step = time_step(unix_time)
    matched: int | None = None
    # Check every candidate (no early exit) so timing does not reveal which one matched;
    # keep the latest matching step so that a rare code collision between two steps
    # cannot turn a fresh code into a refused "replay".
    for step in range(max(0, now_step - WINDOW), now_step + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    if matched is None:
        return None
    if last_step is not None and matched <= last_step:
        return None
    return matched
