"""Struct-of-arrays of the latest vital signs of every open case.

One contiguous array per parameter, one row per case, so that scoring is a handful of
whole-array numpy operations and never a Python loop per patient.

Values are stored **already rounded**, as small unsigned integers in the chart's units:
whole /min, %, mmHg and beats, and *tenths* of °C for temperature. Rounding happens once,
exactly, at the boundary (see ``_rounding``); float32 would store 38.1 as 38.0999…, which
is exactly the kind of value that lands in the wrong band. Integers are also the smallest
representation (11 bytes per case), which is what the memory-bandwidth roofline of
the benchmark measures against.

Missing is an explicit sentinel, the type's maximum (255 or 65535), never NaN: the engine
masks it on purpose instead of letting it fall into the top band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from console.triage._policy import CONSCIOUSNESS_LEVELS
from console.triage._rounding import round_half_up_floats

MISSING_U8 = 0xFF
MISSING_U16 = 0xFFFF

#: NEWS2 parameters in the chart's order; index = bit in ``missing``/``stale`` masks and
#: row in ``VitalScores.parameter_scores``.
PARAMETERS: tuple[str, ...] = (
    "resp_rate",
    "spo2",
    "oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
)
PARAMETER_LABELS: dict[str, str] = {
    "resp_rate": "respiration rate",
    "spo2": "SpO2",
    "oxygen": "air/oxygen",
    "systolic_bp": "systolic BP",
    "heart_rate": "pulse",
    "consciousness": "consciousness",
    "temperature": "temperature",
}
#: Field of ``VitalsArrays`` holding each parameter.
PARAMETER_FIELDS: dict[str, str] = {
    "resp_rate": "resp_rate",
    "spo2": "spo2",
    "oxygen": "on_oxygen",
    "systolic_bp": "systolic_bp",
    "heart_rate": "heart_rate",
    "consciousness": "consciousness",
    "temperature": "temperature",
}
ALL_PRESENT = (1 << len(PARAMETERS)) - 1

_DTYPES: dict[str, type[np.unsignedinteger[Any]]] = {
    "resp_rate": np.uint8,
    "spo2": np.uint8,
    "on_oxygen": np.uint8,
    "spo2_scale": np.uint8,
    "systolic_bp": np.uint16,
    "heart_rate": np.uint16,
    "consciousness": np.uint8,
    "temperature": np.uint16,
}
_CODE = {c: i for i, c in enumerate(CONSCIOUSNESS_LEVELS)}


@dataclass(frozen=True, slots=True)
class VitalsArrays:
    """Latest rounded vital signs, one row per case (see the module docstring).

    Attributes:
        resp_rate: breaths/min (uint8, 255 = missing).
        spo2: % (uint8, 255 = missing).
        on_oxygen: 0 air, 1 supplemental oxygen (uint8, 255 = missing).
        spo2_scale: NEWS2 SpO2 scale, 1 or 2 (a clinician's per-patient setting).
        systolic_bp: mmHg (uint16, 65535 = missing).
        heart_rate: beats/min (uint16, 65535 = missing).
        consciousness: index in ``A C V P U`` (uint8, 255 = missing).
        temperature: tenths of °C (uint16, 65535 = missing).
    """

    resp_rate: NDArray[np.uint8]
    spo2: NDArray[np.uint8]
    on_oxygen: NDArray[np.uint8]
    spo2_scale: NDArray[np.uint8]
    systolic_bp: NDArray[np.uint16]
    heart_rate: NDArray[np.uint16]
    consciousness: NDArray[np.uint8]
    temperature: NDArray[np.uint16]

    def __post_init__(self) -> None:
        n = len(self.resp_rate)
        for f in fields(self):
            arr = getattr(self, f.name)
            if not isinstance(arr, np.ndarray) or arr.ndim != 1:
                raise TypeError(f"{f.name} must be a 1-D numpy array")
            if arr.dtype != _DTYPES[f.name]:
                raise TypeError(f"{f.name} must be {np.dtype(_DTYPES[f.name])}, not {arr.dtype}")
            if len(arr) != n:
                raise ValueError(f"{f.name} has {len(arr)} rows, resp_rate has {n}")

    def __len__(self) -> int:
        return len(self.resp_rate)

    def arrays(self) -> tuple[NDArray[np.unsignedinteger[Any]], ...]:
        """Every column, in field order (what the roofline benchmark copies)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays())

    def rows(self, start: int, stop: int) -> VitalsArrays:
        """A view of rows ``start:stop`` (no copy)."""
        return VitalsArrays(*(a[start:stop] for a in self.arrays()))

    def take(self, index: ArrayLike) -> VitalsArrays:
        """A copy of the selected rows."""
        idx = np.asarray(index, dtype=np.intp)
        return VitalsArrays(*(a[idx] for a in self.arrays()))

    def parameter(self, name: str) -> NDArray[np.unsignedinteger[Any]]:
        """The stored column of a NEWS2 parameter (``PARAMETERS`` name)."""
        arr: NDArray[np.unsignedinteger[Any]] = getattr(self, PARAMETER_FIELDS[name])
        return arr

    def missing_mask(self) -> NDArray[np.uint8]:
        """Bit ``i`` set when ``PARAMETERS[i]`` is missing."""
        mask = np.zeros(len(self), dtype=np.uint8)
        for bit, name in enumerate(PARAMETERS):
            arr = self.parameter(name)
            sentinel = MISSING_U8 if arr.dtype == np.uint8 else MISSING_U16
            mask |= (arr == sentinel).astype(np.uint8) << np.uint8(bit)
        return mask

    @classmethod
    def empty(cls, n: int) -> VitalsArrays:
        """``n`` cases with every value missing and SpO2 scale 1."""
        return cls(
            resp_rate=np.full(n, MISSING_U8, np.uint8),
            spo2=np.full(n, MISSING_U8, np.uint8),
            on_oxygen=np.full(n, MISSING_U8, np.uint8),
            spo2_scale=np.ones(n, np.uint8),
            systolic_bp=np.full(n, MISSING_U16, np.uint16),
            heart_rate=np.full(n, MISSING_U16, np.uint16),
            consciousness=np.full(n, MISSING_U8, np.uint8),
            temperature=np.full(n, MISSING_U16, np.uint16),
        )

    @classmethod
    def from_values(
        cls,
        *,
        resp_rate: ArrayLike,
        spo2: ArrayLike,
        on_oxygen: ArrayLike,
        systolic_bp: ArrayLike,
        heart_rate: ArrayLike,
        consciousness: Sequence[str | None] | NDArray[Any],
        temperature: ArrayLike,
        spo2_scale: ArrayLike | None = None,
    ) -> VitalsArrays:
        """Build from measured values: floats (NaN or None = missing), rounded half up here.

        ``on_oxygen`` takes booleans/0/1 (NaN or None = missing); ``consciousness`` takes
        ``"A" "C" "V" "P" "U"`` or None; ``spo2_scale`` defaults to 1 (scale 2 only when a
        clinician set it). Values above what the column can hold are clipped, which keeps
        their band (every chart boundary is far below 254).

        Raises:
            ValueError: a negative or infinite value, an unknown code, a scale not 1 or 2.
        """
        rr = _rounded(resp_rate, 0, MISSING_U8, np.uint8)
        n = len(rr)
        scale = (
            np.ones(n, np.uint8)
            if spo2_scale is None
            else np.asarray(spo2_scale, dtype=np.int64).astype(np.uint8)
        )
        if len(scale) != n or not np.isin(scale, (1, 2)).all():
            raise ValueError("spo2_scale must be 1 or 2 for every row")
        return cls(
            resp_rate=rr,
            spo2=_rounded(spo2, 0, MISSING_U8, np.uint8),
            on_oxygen=_oxygen(on_oxygen),
            spo2_scale=scale,
            systolic_bp=_rounded(systolic_bp, 0, MISSING_U16, np.uint16),
            heart_rate=_rounded(heart_rate, 0, MISSING_U16, np.uint16),
            consciousness=consciousness_codes(consciousness),
            temperature=_rounded(temperature, 1, MISSING_U16, np.uint16),
        )


def consciousness_codes(values: Sequence[str | None] | NDArray[Any]) -> NDArray[np.uint8]:
    """ACVPU letters (None or "" = missing) → stored codes.

    Raises:
        ValueError: a letter outside ACVPU.
    """
    out = np.empty(len(values), dtype=np.uint8)
    for i, v in enumerate(values):
        if v is None or v == "":
            out[i] = MISSING_U8
        else:
            code = _CODE.get(str(v))
            if code is None:
                raise ValueError(f"unknown consciousness code {v!r} (expected A, C, V, P or U)")
            out[i] = code
    return out


def _as_float(values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=object if _has_none(values) else None)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr.tolist()], dtype=np.float64)
    return np.asarray(arr, dtype=np.float64)


def _has_none(values: ArrayLike) -> bool:
    return isinstance(values, list | tuple) and any(v is None for v in values)


def _rounded(
    values: ArrayLike, decimals: int, sentinel: int, dtype: type[np.unsignedinteger[Any]]
) -> NDArray[Any]:
    units = round_half_up_floats(_as_float(values), decimals)
    missing = np.isnan(units)
    out = np.clip(np.nan_to_num(units, nan=0.0), 0, sentinel - 1).astype(dtype)
    out[missing] = sentinel
    return out


def _oxygen(values: ArrayLike) -> NDArray[np.uint8]:
    x = _as_float(values)
    missing = np.isnan(x)
    if not np.isin(x[~missing], (0.0, 1.0)).all():
        raise ValueError("on_oxygen must be 0/False (air) or 1/True (oxygen)")
    out = np.nan_to_num(x, nan=0.0).astype(np.uint8)
    out[missing] = MISSING_U8
    return out
