"""The INS number (NIR or NIA) and its control key.

Layout (15 characters): sex (1) · birth year (2) · birth month (2) · birth department
(2, ``2A``/``2B`` for Corsica, ``99`` abroad) · commune or country (3) · order (3) ·
key (2). The key is ``97 − (N mod 97)`` where ``N`` is the first 13 characters read as
a number, with Corsica's ``2A`` read as ``19`` and ``2B`` as ``18`` for the computation
(the INSEE rule; departments 20 were split in 1976 and the letters kept).

Accepted first digits: 1/2 (NIR, men/women), 3/4 (NIR of persons born abroad in some
historic registrations), 7/8 (NIA, the temporary number of the INS). Months 01–12 are
dates; 20–42 and 50–99 are the INSEE's codes for an unknown or special month and are
accepted (they are not checked against the birth date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FORMAT = re.compile(
    r"^(?P<sex>[1-478])(?P<year>\d{2})(?P<month>\d{2})(?P<dept>\d{2}|2A|2B)"
    r"(?P<commune>\d{3})(?P<order>\d{3})(?P<key>\d{2})$"
)


class NirError(ValueError):
    """The text is not a well-formed INS number or its key is wrong (message says which)."""


def nir_key(first13: str) -> int:
    """The control key of the first 13 characters of a NIR (Corsica handled).

    Raises:
        NirError: not 13 digits (with ``2A``/``2B`` allowed at positions 6–7).
    """
    body = first13.strip().upper().replace(" ", "")
    if len(body) != 13:
        raise NirError(f"a NIR body has 13 characters, not {len(body)}")
    dept = body[5:7]
    if dept == "2A":
        body = body[:5] + "19" + body[7:]
    elif dept == "2B":
        body = body[:5] + "18" + body[7:]
    if not body.isdigit():
        raise NirError("a NIR body is made of digits (2A/2B allowed for Corsica)")
    return 97 - (int(body) % 97)


def month_is_date(month: int) -> bool:
    """True for a real month 1–12 (others are INSEE's unknown/special codes)."""
    return 1 <= month <= 12


@dataclass(frozen=True)
class Nir:
    """A checked INS number, split into its parts."""

    value: str
    sex: int
    year: int
    month: int
    department: str
    commune: str
    order: str
    key: int

    @property
    def birthplace_code(self) -> str:
        """The 5-character INSEE code: commune of birth, or ``99`` + country abroad."""
        return self.department + self.commune

    @property
    def born_abroad(self) -> bool:
        return self.department == "99"

    @property
    def temporary(self) -> bool:
        """NIA (7/8): a temporary number awaiting registration."""
        return self.sex in (7, 8)


def parse_nir(text: str) -> Nir:
    """Parse and check an INS number; spaces are ignored, letters may be lower case.

    Raises:
        NirError: bad length or layout, month 00 or 13–19/43–49, or wrong key.
    """
    value = text.strip().upper().replace(" ", "")
    if len(value) != 15:
        raise NirError(f"an INS/NIR has 15 characters (13 + a 2-digit key), not {len(value)}")
    m = _FORMAT.match(value)
    if m is None:
        raise NirError(
            "an INS/NIR is digits only (2A/2B allowed for Corsica) and starts with 1, 2, 3, "
            "4, 7 or 8"
        )
    month = int(m["month"])
    if not (month_is_date(month) or 20 <= month <= 42 or 50 <= month <= 99):
        raise NirError(f"birth month {m['month']} is not a valid NIR month")
    key = int(m["key"])
    expected = nir_key(value[:13])
    if key != expected:
        raise NirError(f"INS/NIR control key {m['key']} is wrong (expected {expected:02d})")
    return Nir(
        value=value,
        sex=int(m["sex"]),
        year=int(m["year"]),
        month=month,
        department=m["dept"],
        commune=m["commune"],
        order=m["order"],
        key=key,
    )


def is_valid_nir(text: str) -> bool:
    """True when :func:`parse_nir` accepts ``text``."""
    try:
        parse_nir(text)
    except NirError:
        return False
    return True
