"""Tampering with an audit trail the way an outsider with the sqlite3 module would.

``DROP`` holds the statements that remove the audit table's protective triggers (a
tamperer's first step), ``tamper(path, *statements)`` runs SQL directly on a database
file, and ``verdict(path)`` runs the verifier and returns ``(exit code, damage kind,
first bad seq)``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from console.records import verify_trail

DROP = ("DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete")


def tamper(path: Path, *statements: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql, params if "?" in sql else ())
    conn.commit()
    conn.close()


def verdict(path: Path, **kw: object) -> tuple[int, str | None, int | None]:
    report = verify_trail(path, **kw)  # type: ignore[arg-type]
    first = report.first
    return report.exit_code, first.kind if first else None, first.seq if first else None
