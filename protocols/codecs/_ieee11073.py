"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit), the number types of the GATT
health characteristics.

SFLOAT: 4-bit two's-complement exponent (base 10) over a 12-bit two's-complement
mantissa; FLOAT: 8-bit exponent over a 24-bit mantissa. Special values are recognised on
the *raw* mantissa before sign extension (protocols.md), whatever the exponent:

========  ==========  ============
meaning   SFLOAT      FLOAT
========  ==========  ============
NaN       0x7FF       0x7FFFFF
NRes      0x800       0x800000
+INF      0x7FE       0x7FFFFE
-INF      0x802       0x800002
reserved  0x801       0x800001
========  ==========  ============

Decoded numbers are returned exactly as the device meant them: an ``int`` when the
exponent is >= 0 (SpO2 98 stays ``98``), otherwise ``mantissa / 10**-exponent``, which
Python rounds correctly to the nearest double, so 367e-1 prints as ``36.7`` and no
spurious digits leak into JSON.
"""

from __future__ import annotations

import functools
import math
from typing import Final

SFLOAT_SPECIALS: Final[dict[int, str]] = {
    0x07FF: "nan",
    0x0800: "nres",
    0x07FE: "+inf",
    0x0802: "-inf",
    0x0801: "reserved",
}
FLOAT_SPECIALS: Final[dict[int, str]] = {
    0x7FFFFF: "nan",
    0x800000: "nres",
    0x7FFFFE: "+inf",
    0x800002: "-inf",
    0x800001: "reserved",
}
_SFLOAT_CODES: Final[dict[str, int]] = {v: k for k, v in SFLOAT_SPECIALS.items()}
_FLOAT_CODES: Final[dict[str, int]] = {v: k for k, v in FLOAT_SPECIALS.items()}

#: Largest mantissa magnitude that is not a special value.
SFLOAT_MAX_MANTISSA: Final[int] = 0x7FD
FLOAT_MAX_MANTISSA: Final[int] = 0x7FFFFD

Number = int | float


class Special(Exception):  # noqa: N818 - a value, not a failure
    """Raised internally for a special value; ``code`` is ``nan``, ``nres``, ``+inf``…"""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


#: Exact powers of ten for every exponent a FLOAT can carry (-128..127).
_POW10: Final[list[int]] = [10**i for i in range(129)]


def _scale(mantissa: int, exponent: int) -> Number:
    if exponent >= 0:
        return mantissa * _POW10[exponent]
    return mantissa / _POW10[-exponent]


#: Decoded values are cached: a device repeats a small set of raw values (SpO2 98,
#: pulse 72 …) and a cache hit costs a third of the arithmetic. Bounded: the cache holds
#: at most this many raw values, whatever the input.
DECODE_CACHE: Final[int] = 4096


@functools.lru_cache(maxsize=DECODE_CACHE)
def sfloat_decode(raw: int) -> Number | str:
    """Value of a 16-bit SFLOAT, or its special code (``"nan"``, ``"nres"``, …)."""
    mantissa = raw & 0x0FFF
    special = SFLOAT_SPECIALS.get(mantissa)
    if special is not None:
        return special
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    if mantissa >= 0x800:
        mantissa -= 0x1000
    return _scale(mantissa, exponent)


@functools.lru_cache(maxsize=DECODE_CACHE)
def float_decode(raw: int) -> Number | str:
    """Value of a 32-bit FLOAT, or its special code."""
    mantissa = raw & 0xFFFFFF
    special = FLOAT_SPECIALS.get(mantissa)
    if special is not None:
        return special
    exponent = raw >> 24
    if exponent >= 0x80:
        exponent -= 0x100
    if mantissa >= 0x800000:
        mantissa -= 0x1000000
    return _scale(mantissa, exponent)


def _mantissa_exponent(
    value: Number, max_mantissa: int, min_exp: int, max_exp: int, decimals: int | None
) -> tuple[int, int]:
    """Shortest exact (mantissa, exponent) for ``value``.

    Takes the finest exponent whose mantissa fits (most precision, or exactly
    ``-decimals`` when a resolution is imposed), then strips trailing zeros down to
    exponent 0, so that 98 encodes as 98e0 (not 980e-1) and 120 as 120e0 (not 12e1):
    the canonical form the protocols.md vectors use.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    if decimals is not None:
        exps: range | list[int] = [max(-decimals, min_exp)]
    else:
        exps = range(min_exp, max_exp + 1)
    for exponent in exps:
        if exponent < 0:
            mantissa = round(value * _POW10[-exponent])
        else:
            mantissa = round(value / _POW10[exponent])
        if abs(mantissa) <= max_mantissa:
            break
    else:
        if decimals is not None:
            return _mantissa_exponent(value, max_mantissa, min_exp, max_exp, None)
        raise ValueError(f"{value!r} is out of range")
    if mantissa == 0:
        return 0, 0
    while mantissa % 10 == 0 and exponent < 0:
        mantissa //= 10
        exponent += 1
    return mantissa, exponent


def sfloat_encode(value: Number | str | None, decimals: int | None = None) -> int:
    """16-bit SFLOAT for ``value``; ``None`` gives NaN, a special code gives that code.

    Args:
        value: Number, ``None`` (unavailable → NaN) or a special code string.
        decimals: Fixed resolution (e.g. 1 for 0.1 kPa) instead of the finest that fits;
            used where the value came from a unit conversion and the device's resolution
            is known, so re-encoding a decoded value gives back the same bytes.
    """
    if value is None:
        return 0x07FF
    if isinstance(value, str):
        try:
            return _SFLOAT_CODES[value]
        except KeyError:
            raise ValueError(f"unknown SFLOAT special value {value!r}") from None
    mantissa, exponent = _mantissa_exponent(value, SFLOAT_MAX_MANTISSA, -8, 7, decimals)
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def float_encode(value: Number | str | None, decimals: int | None = None) -> int:
    """32-bit FLOAT for ``value`` (see :func:`sfloat_encode`)."""
    if value is None:
        return 0x007FFFFF
    if isinstance(value, str):
        try:
            return _FLOAT_CODES[value]
        except KeyError:
            raise ValueError(f"unknown FLOAT special value {value!r}") from None
    mantissa, exponent = _mantissa_exponent(value, FLOAT_MAX_MANTISSA, -20, 20, decimals)
    return ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)
