"""Hub Santé case ids: ``fr.health.<centre>.DRFR15<NNN><YY><DDD><counter>``.

The dossier number is shaped as in the official examples (cases.md): ``DRFR15`` + the
SAMU's number (3 digits, from ``samu075``) + year (2) + day of year (3) + a counter (5)
that restarts each day, e.g. ``fr.health.samu075.DRFR150752633700042``. The counter lives
in ``case_counters`` and is taken inside the transaction that creates the case, so two
cases never share a number, even across restarts.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

CENTRE = re.compile(r"^samu(\d{3})$")
#: The RS-EDA schema's caseId pattern.
CASE_ID = re.compile(r"^([a-zA-Z0-9_-]+\.?){4,10}$")


class CaseIdMaker:
    """Makes the next case id of a centre (``samu075``)."""

    def __init__(self, centre: str) -> None:
        match = CENTRE.fullmatch(centre)
        if match is None:
            raise ValueError(f"centre {centre!r}: expected samu followed by 3 digits (samu075)")
        self.centre = centre
        self._number = match.group(1)

    def next(self, conn: sqlite3.Connection, now: float) -> str:
        day = datetime.fromtimestamp(now, UTC)
        key = f"{self.centre}:{day:%Y-%j}"
        conn.execute(
            "INSERT INTO case_counters (day, last) VALUES (?, 1)"
            " ON CONFLICT (day) DO UPDATE SET last = last + 1",
            (key,),
        )
        (n,) = conn.execute("SELECT last FROM case_counters WHERE day = ?", (key,)).fetchone()
        if n > 99_999:
            raise RuntimeError(f"more than 99 999 cases on {day:%Y-%m-%d} for {self.centre}")
        case_id = f"fr.health.{self.centre}.DRFR15{self._number}{day:%y}{day:%j}{n:05d}"
        assert CASE_ID.fullmatch(case_id), case_id
        return case_id
