"""The account-service test environment: a real store, cheap Argon2, an injectable clock.

``make_env(path)`` opens a store at ``path`` and wraps an ``AccountService`` over it in an
``Env``, which enrols users (keeping their TOTP secrets), logs them in with fresh codes
and reads the audit trail back. ``PW`` is every test user's password, ``FAST`` the cheap
password hasher, ``OP`` the local operator that runs administrative commands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from argon2 import PasswordHasher

from console.auth import AccountService, LocalOperator, code_at

PW = "correct horse battery staple"
#: Cheap Argon2 parameters for tests only (the defaults cost ~0.4 s a hash on CI's 2 cores);
#: test_default_cost_is_argon2_cffi_defaults checks production uses the defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
OP = LocalOperator("tester", "pts/test")


class FakeClock:
    """Injectable time: tests move it forward instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Env:
    path: Path
    store: object
    accounts: AccountService
    clock: FakeClock
    key: bytes
    secrets: dict[str, str]

    def code(self, user: str, offset_s: float = 0) -> str:
        return code_at(self.secrets[user], self.clock.now.timestamp() + offset_s)

    def add(self, user: str, *roles: str, site: str | None = None, password: str = PW) -> None:
        enrolment = self.accounts.create_user(OP, user, roles, password, site=site)
        self.secrets[user] = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]

    def login(self, user: str, terminal: str = "t1", password: str = PW):
        session = self.accounts.login(user, password, self.code(user), terminal)
        self.clock.advance(seconds=30)  # next login uses a fresh TOTP step
        return session

    def events(self, action: str | None = None) -> list[tuple]:
        sql = (
            "SELECT seq, actor, role, terminal, action, object, purpose, outcome, detail"
            " FROM audit_events"
        )
        rows = self.store.db.execute(sql + " ORDER BY seq").fetchall()  # type: ignore[attr-defined]
        return [r for r in rows if action is None or r[4] == action]


def make_env(path: Path, clock: FakeClock | None = None) -> Env:
    from console.records import Store

    store = Store.open(path)
    key = os.urandom(32)
    clock = clock or FakeClock()
    return Env(path, store, AccountService(store, key, clock=clock, hasher=FAST), clock, key, {})
