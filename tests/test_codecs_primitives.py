"""CRC-16/CCITT-FALSE, COBS and IEEE-11073 SFLOAT/FLOAT: the building blocks of sbf1."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codecs import (
    CobsError,
    cobs_decode,
    cobs_encode,
    crc16_ccitt_false,
    float_decode,
    float_encode,
    sfloat_decode,
    sfloat_encode,
)


def _crc_reference(data: bytes) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE, straight from its definition."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_crc_of_empty_is_init() -> None:
    assert crc16_ccitt_false(b"") == 0xFFFF


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_definition(data: bytes) -> None:
    assert crc16_ccitt_false(data) == _crc_reference(data)


# Vectors from Cheshire & Baker's paper / the Wikipedia COBS article.
COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
]


@pytest.mark.parametrize(("plain", "encoded"), COBS_VECTORS)
def test_cobs_vectors(plain: bytes, encoded: bytes) -> None:
    assert cobs_encode(plain) == encoded
    assert cobs_decode(encoded) == plain


def test_cobs_accepts_trailing_empty_block_after_full_block() -> None:
    """Some encoders add a 0x01 after a final 254-byte block; it decodes the same."""
    data = bytes(range(1, 255))
    assert cobs_decode(b"\xff" + data + b"\x01") == data


@given(st.binary(max_size=700))
def test_cobs_round_trip_has_no_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert b"\x00" not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"", b"\x05\x11\x22", b"\x02\x11\x00", b"\x03\x11"])
def test_cobs_rejects_bad_encodings(bad: bytes) -> None:
    with pytest.raises(CobsError):
        cobs_decode(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x0062, 98),
        (0x0048, 72),
        (0xF16F, 36.7),  # exponent -1, mantissa 367
        (0xFFFF, -0.1),  # exponent -1, mantissa -1
        (0x0FFF, -1),  # exponent 0, mantissa -1
        (0x0803, -2045),  # most negative mantissa that is not a special value
        (0x07FD, 2045),
        (0x2001, 100),  # exponent +2
        (0xE3E8, 10.0),  # exponent -2, mantissa 1000
        (0x8001, 1e-8),  # exponent -8
        (0x7001, 10_000_000),  # exponent +7
    ],
)
def test_sfloat_decode(raw: int, expected: float) -> None:
    value = sfloat_decode(raw)
    assert not isinstance(value, str)
    assert value == pytest.approx(expected, rel=1e-12)


def test_sfloat_integers_stay_integers_and_decimals_are_exact() -> None:
    assert isinstance(sfloat_decode(0x0062), int)
    assert repr(sfloat_decode(0xF16F)) == "36.7"


@pytest.mark.parametrize(
    ("raw", "code"),
    [(0x07FF, "nan"), (0x0800, "nres"), (0x07FE, "+inf"), (0x0802, "-inf"), (0x0801, "reserved")],
)
def test_sfloat_special_values(raw: int, code: str) -> None:
    assert sfloat_decode(raw) == code
    assert sfloat_encode(code) == raw


@pytest.mark.parametrize("exponent", [1, 0xF, 0x8])
def test_sfloat_specials_are_checked_on_the_raw_mantissa(exponent: int) -> None:
    """0x800 sign-extends to -2048: comparing after extension would miss NRes."""
    assert sfloat_decode(exponent << 12 | 0x800) == "nres"
    assert sfloat_decode(exponent << 12 | 0x7FF) == "nan"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (0x007FFFFF, "nan"),
        (0x00800000, "nres"),
        (0x007FFFFE, "+inf"),
        (0x00800002, "-inf"),
        (0x00800001, "reserved"),
    ],
)
def test_float_special_values(raw: int, code: str) -> None:
    assert float_decode(raw) == code
    assert float_decode(0xFF000000 | raw) == code
    assert float_encode(code) == raw


def test_float_decode_negative_exponent_and_sign() -> None:
    assert float_decode(0xFF00016F) == pytest.approx(36.7)
    assert float_decode(0xFEFFFFFF) == pytest.approx(-0.01)
    assert float_decode(0x02000003) == 300


def test_encode_none_is_nan() -> None:
    assert sfloat_encode(None) == 0x07FF
    assert float_encode(None) == 0x007FFFFF


def test_encode_is_canonical_as_in_the_vectors() -> None:
    assert sfloat_encode(98) == 0x0062
    assert sfloat_encode(98.0) == 0x0062
    assert sfloat_encode(120) == 0x0078
    assert float_encode(36.7) == 0xFF00016F
    assert sfloat_encode(0.001) == 0xD001


def test_encode_rejects_non_finite_and_out_of_range() -> None:
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            sfloat_encode(bad)
    with pytest.raises(ValueError):
        sfloat_encode(1e12)
    with pytest.raises(ValueError):
        sfloat_encode("bogus")


@given(st.integers(min_value=-2045, max_value=2045), st.integers(min_value=-8, max_value=7))
def test_sfloat_round_trip_exact_numbers(mantissa: int, exponent: int) -> None:
    value = mantissa * 10**exponent if exponent >= 0 else mantissa / 10**-exponent
    decoded = sfloat_decode(sfloat_encode(value))
    assert not isinstance(decoded, str)
    assert decoded == pytest.approx(value, rel=1e-9, abs=1e-12)


@given(st.floats(min_value=-2000, max_value=2000, allow_nan=False))
def test_sfloat_round_trip_within_resolution(value: float) -> None:
    """Half a unit in the last place: the finest exponent overflowed, so the mantissa
    is at least 204.5 and the relative error at most 0.5 / 204.5 (absolute 0.5e-8 at
    the finest exponent)."""
    decoded = sfloat_decode(sfloat_encode(value))
    assert not isinstance(decoded, str)
    assert abs(decoded - value) <= max(abs(value) * 0.5 / 204.5, 0.5e-8) * (1 + 1e-9)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_float_round_trip_within_resolution(value: float) -> None:
    decoded = float_decode(float_encode(value))
    assert not isinstance(decoded, str)
    assert abs(decoded - value) <= max(abs(value) * 0.5 / 838860.5, 0.5e-20) * (1 + 1e-9)
