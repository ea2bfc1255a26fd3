"""Attacks on the account service that once held: each secret check is throttled, and a
break-glass grant does not outlive the role that opened it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.auth import (
    Action,
    AuthenticationFailedError,
    BackoffError,
    Denied,
    Target,
)
from tests.support.accounts import OP, PW, Env, make_env

OTHER = Target("patient:p-other", site="ehpad-other")


@pytest.fixture
def env(tmp_path) -> Iterator[Env]:
    e = make_env(tmp_path / "samu.db")
    try:
        yield e
    finally:
        e.store.close()  # type: ignore[attr-defined]


def test_wrong_old_passwords_are_throttled_like_logins(env: Env) -> None:
    """change_password must not be an unthrottled password oracle."""
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    with pytest.raises(AuthenticationFailedError) as first:
        env.accounts.change_password(session, "guess 1 guess 1", "a brand new passphrase")
    assert first.value.retry_after_s > 0
    # The next guess, even the right password, waits: it is not even checked.
    with pytest.raises(BackoffError):
        env.accounts.change_password(session, PW, "a brand new passphrase")
    events = env.events("user.password_change")
    reasons = [e[8] for e in events]
    assert '"reason":"bad-password"' in reasons[0] and '"reason":"backoff"' in reasons[1]
    # Back-off grows with each counted failure, shared with logins on this terminal.
    waits = [first.value.retry_after_s]
    for i in range(3):
        env.clock.advance(seconds=waits[-1])
        with pytest.raises(AuthenticationFailedError) as exc:
            env.accounts.change_password(session, f"guess {i} guess {i}", "a brand new pass")
        waits.append(exc.value.retry_after_s)
    assert waits == sorted(waits) and waits[-1] > waits[0]
    env.clock.advance(seconds=waits[-1])
    env.accounts.change_password(session, PW, "a brand new passphrase")
    # A success clears the counters: a login right after is not delayed.
    env.login("drmartin", password="a brand new passphrase")


def test_unlock_failures_are_counted_too(env: Env) -> None:
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    with pytest.raises(AuthenticationFailedError) as exc:
        env.accounts.unlock(session, "not my password")
    with pytest.raises(BackoffError):
        env.accounts.unlock(session, PW)
    env.clock.advance(seconds=exc.value.retry_after_s)
    env.accounts.unlock(session, PW)


def test_a_grant_does_not_outlive_the_clinical_role(env: Env) -> None:
    env.add("nurse1", "ide_ehpad", site="ehpad-bellevue")
    nurse = env.login("nurse1")
    env.accounts.breakglass.open(nurse, OTHER.ref, "neighbouring EHPAD, cardiac arrest")
    assert env.accounts.authorize(nurse, Action.CLINICAL_READ, OTHER).break_glass
    # The nurse becomes an auditor; she logs in again within the grant's 15 minutes.
    env.accounts.set_roles(OP, "nurse1", add=["auditeur"], remove=["ide_ehpad"])
    auditor = env.login("nurse1")
    with pytest.raises(Denied):
        env.accounts.authorize(auditor, Action.CLINICAL_READ, OTHER)
