"""The one table of physiologically possible values, shared by every codec.

A decoded value outside these limits cannot come from a living patient or a working
sensor: a bit flip the format's checks missed (masimo-ascii1, nonin-df8 and contec-cms50d
have no checksum at all), a firmware bug, or a test record typed wrong. Every codec
refuses such a value the same way, with the same sentence:

- **encode** raises :class:`~protocols.codecs.EncodeError` — the simulator and
  ``samu protocols encode`` cannot produce a capture no device could;
- **decode** yields a ``payload`` error record (quarantined with its bytes), never a
  reading: a SpO2 of 900 % must not reach triage as a number.

The limits of every value key that is a vital sign are those of
:data:`protocols.vocab.LOINC` — the table the message models validate observations
against — so a decoded value is always one the models, and triage, accept. Keys without
a LOINC code get their limits here, each with its reason. These are *physiological*
limits, not a device's measuring range (hardware/profiles/*.toml pin those in the
simulator) and not normal ranges: 0 % SpO2 or a heart rate of 0 are recordable, they are
emergencies.

Unavailable values (``None``: dashes, 127/511, an IEEE-11073 NaN) are not range errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from protocols.vocab import LOINC, VALUE_KEYS


@dataclass(frozen=True, slots=True)
class ValueRange:
    """Inclusive limits of one value key, in the contract's unit (protocols.md 1.3).

    Attributes:
        low: lowest possible value.
        high: highest possible value.
        unit: UCUM unit of the value key.
        why: the reason for the limits, kept next to them so they can be reviewed.
    """

    low: float
    high: float
    unit: str
    why: str


def _from_vocab() -> dict[str, ValueRange]:
    table: dict[str, ValueRange] = {}
    for key, info in VALUE_KEYS.items():
        if info.loinc is None:
            continue
        code = LOINC[info.loinc]
        assert code.low is not None and code.high is not None
        table[key] = ValueRange(code.low, code.high, info.unit, code.why)
    return table


_HERE: Final[dict[str, ValueRange]] = {
    "map_mmhg": ValueRange(
        0, 300, "mm[Hg]", "A mean pressure lies between diastolic and systolic: 0–300 as systolic."
    ),
    "rr_ms": ValueRange(
        150,
        60_000,
        "ms",
        "The shortest RR intervals recorded (pre-excited atrial fibrillation) are about "
        "150–180 ms; a pause of more than a minute is asystole, not an interval.",
    ),
    "battery_pct": ValueRange(0, 100, "%", "A charge level is a percentage."),
    # Masimo secondary parameters (masimo-ascii1 ``aux``).
    "spco_pct": ValueRange(0, 100, "%", "Carboxyhaemoglobin is a fraction of haemoglobin."),
    "spmet_pct": ValueRange(0, 100, "%", "Methaemoglobin is a fraction of haemoglobin."),
    "pi_pct": ValueRange(
        0, 100, "%", "The perfusion index is the pulsatile fraction of the signal."
    ),
    "pvi": ValueRange(0, 100, "%", "The pleth variability index is a percentage."),
}

#: Value key → its possible range. Read-only: one table for every codec.
PHYSIOLOGICAL_RANGES: Final[Mapping[str, ValueRange]] = MappingProxyType({**_from_vocab(), **_HERE})

#: The same limits as plain tuples, for the decoders' hot paths.
LIMITS: Final[dict[str, tuple[float, float]]] = {
    k: (r.low, r.high) for k, r in PHYSIOLOGICAL_RANGES.items()
}


_LIMITS_GET: Final = LIMITS.get


def describe(key: str, value: float) -> str:
    """The one sentence every codec uses for ``value`` outside the range of ``key``."""
    r = PHYSIOLOGICAL_RANGES[key]
    return f"{key} {value:g} is outside the physiological range {r.low:g}..{r.high:g} {r.unit}"


def out_of_range(key: str, value: object) -> str | None:
    """Why ``value`` is impossible for ``key``, or ``None`` when it is possible.

    ``None`` (unavailable), keys without a range and values that are not numbers are
    not judged here: the codecs' own type checks report those. A list (``rr_ms``) is
    judged element by element. NaN and infinities are outside every range.
    """
    limits = LIMITS.get(key)
    if limits is None or value is None:
        return None
    if isinstance(value, list | tuple):
        for item in value:
            problem = out_of_range(key, item)
            if problem is not None:
                return problem
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if limits[0] <= value <= limits[1]:
        return None
    return describe(key, value)


def check_values(values: Mapping[str, object]) -> str | None:
    """The first impossible value of ``values`` (contract keys), described; or ``None``.

    For records an encoder was given, which may hold anything JSON can: every value is
    judged by :func:`out_of_range` (lists element by element, NaN and infinities
    refused, non-numbers left to the encoder's own type checks).
    """
    for key, value in values.items():
        problem = out_of_range(key, value)
        if problem is not None:
            return problem
    return None


def check_decoded(values: Mapping[str, object]) -> str | None:
    """:func:`check_values` for what a decoder built: the same table and sentence, fast.

    Called on every decoded frame, so it compares directly and takes a list's extremes
    in C. It relies on what decoders produce — finite numbers, ``None``, lists of
    finite numbers (``rr_ms``) — and falls back to :func:`check_values` on anything
    that does not compare with a number.
    """
    get = _LIMITS_GET
    try:
        for key, value in values.items():
            limits = get(key)
            if limits is None or value is None:
                continue
            if type(value) is list:
                if value and not (limits[0] <= min(value) and max(value) <= limits[1]):
                    return out_of_range(key, value)
            elif not limits[0] <= value <= limits[1]:  # type: ignore[operator]
                return out_of_range(key, value)
    except TypeError:
        return check_values(values)
    return None
