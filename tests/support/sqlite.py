"""Real SQLite tools for tests: count a connection's commits, run SQL from another
connection, and make the database refuse inserts the way a full disk or a constraint
would (a trigger, not a mock of the code under test)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path


class Commits:
    """Counts the transactions a connection runs (a trace of its SQL)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def __enter__(self) -> Commits:
        self._conn.set_trace_callback(self.statements.append)
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.set_trace_callback(None)

    @property
    def commits(self) -> int:
        return sum(1 for s in self.statements if s.strip().upper() == "COMMIT")


def run_sql(path: Path, sql: str) -> None:
    """``sql`` on another connection to the database file, committed, then closed."""
    with closing(sqlite3.connect(path)) as other, other:
        other.execute(sql)


@contextmanager
def refusing(path: Path, table: str, when: str = "1") -> Iterator[None]:
    """The database refuses rows inserted into ``table`` matching ``when`` (as a full
    disk or a constraint would), installed by another connection; removed afterwards."""
    run_sql(
        path,
        f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} WHEN {when}"
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    try:
        yield
    finally:
        run_sql(path, "DROP TRIGGER test_refuse")
