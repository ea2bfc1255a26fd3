"""Half-up rounding to the chart's resolution, exact on decimal input.

The contract rounds half up (38.05 °C → 38.1, 20.5 /min → 21) *before* banding. Binary
floating point cannot do that naively: 38.05 is stored as 38.04999…, so
``np.floor(x * 10 + 0.5)`` gives 38.0. Two entry points, each exact:

- text (CSV cells): rounded with :mod:`decimal` on the digits as written, so no binary
  representation ever intervenes;
- float arrays (devices, JSON): a float stands for the shortest decimal that ``repr``
  shows (``38.05``), which is what a person or a JSON encoder wrote. The bulk is rounded
  with one vectorised ``floor``; only values within 1e-6 of a tie (rare in real data) are
  re-decided in :mod:`decimal` from their ``repr``. Outside that window the float error
  (about 1e-13 at these magnitudes) cannot flip the decision, so the result is exact.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
from numpy.typing import NDArray

#: A plain decimal number as people and CSV exporters write it (no "nan", "inf", "1_0").
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_TIE_WINDOW = 1e-6
_FIXUP_LIMIT = 1e9


def parse_decimal(text: str) -> Decimal:
    """The exact decimal written in ``text`` (surrounding blanks allowed).

    Raises:
        ValueError: not a plain finite decimal number.
    """
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        raise ValueError(f"not a number: {text!r}")
    try:
        return Decimal(stripped)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid input
        raise ValueError(f"not a number: {text!r}") from exc


def half_up_units(value: Decimal, decimals: int) -> int:
    """``value`` rounded half up to ``decimals`` decimals, as an integer count of units.

    ``half_up_units(Decimal("38.05"), 1) == 381``; ``half_up_units(Decimal("20.5"), 0) == 21``.
    Half up means away from zero on a tie for positive values, which is all the chart has.
    """
    quantum = Decimal(1).scaleb(-decimals)
    return int(value.quantize(quantum, rounding=ROUND_HALF_UP).scaleb(decimals))


def round_half_up_floats(values: NDArray[np.floating], decimals: int) -> NDArray[np.float64]:
    """Round a float array half up to ``decimals``, returned in units (e.g. tenths).

    NaN stays NaN (missing). Infinite and negative values are refused: no vital sign is
    negative, a device cannot measure infinity, and silently banding either would hide a
    fault upstream (ingest quarantines them with a reason).

    Raises:
        ValueError: an infinite or negative value.
    """
    x = np.asarray(values, dtype=np.float64)
    if np.isinf(x).any():
        raise ValueError("infinite vital-sign value")
    if (x < 0).any():
        raise ValueError("negative vital-sign value")
    scale = 10.0**decimals
    scaled = x * scale
    with np.errstate(invalid="ignore"):
        floor = np.floor(scaled)
        frac = scaled - floor
        out = floor + (frac >= 0.5)
        near = (np.abs(frac - 0.5) < _TIE_WINDOW) & (np.abs(scaled) < _FIXUP_LIMIT)
    if near.any():
        idx = np.flatnonzero(near)
        fixed = [half_up_units(Decimal(repr(float(v))), decimals) for v in x[idx]]
        out[idx] = fixed
    return out
