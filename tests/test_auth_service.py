"""Account service over the real store: login, TOTP replay, back-off, disable, 12 h, roles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from argon2 import PasswordHasher

from console.auth import (
    AccountError,
    AccountExistsError,
    AccountService,
    AuthenticationFailedError,
    BackoffError,
    PasswordPolicyError,
    Role,
    SessionExpiredError,
    code_at,
)
from tests.support.accounts import OP, PW, Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path / "samu.db")
    try:
        yield e
    finally:
        e.store.close()  # type: ignore[attr-defined]


def test_login_with_password_and_totp(env: Env) -> None:
    env.add("drmartin", "regulateur", "arm")
    session = env.login("drmartin")
    assert session.roles == {Role.REGULATEUR, Role.ARM}
    assert session.signer is not None and session.signer_key_id
    env.accounts.check_session(session)
    ok = [e for e in env.events("auth.login") if e[7] == "success"]
    assert ok and ok[-1][1] == "drmartin"


def test_totp_code_accepted_once_only(env: Env) -> None:
    env.add("drmartin", "regulateur")
    code = env.code("drmartin")
    env.accounts.login("drmartin", PW, code, "t1")
    with pytest.raises(AuthenticationFailedError):
        env.accounts.login("drmartin", PW, code, "t2")
    last = env.events("auth.login")[-1]
    assert last[7] == "failure" and '"totp-replay"' in last[8]


def test_wrong_password_or_code_backs_off_then_reopens(env: Env) -> None:
    env.add("drmartin", "regulateur")
    with pytest.raises(AuthenticationFailedError) as first:
        env.accounts.login("drmartin", PW + "x", env.code("drmartin"), "t1")
    assert first.value.retry_after_s == 1
    # During the wait even the right credentials are refused, unchecked and uncounted.
    with pytest.raises(BackoffError):
        env.accounts.login("drmartin", PW, env.code("drmartin"), "t1")
    env.clock.advance(seconds=1)
    with pytest.raises(AuthenticationFailedError) as second:
        env.accounts.login(
            "drmartin", PW, "000000" if env.code("drmartin") != "000000" else "111111", "t1"
        )
    assert second.value.retry_after_s == 2  # doubling
    env.clock.advance(seconds=2)
    assert env.login("drmartin").user_id == "drmartin"
    failures = [e for e in env.events("auth.login") if e[7] == "failure"]
    assert [
        ('"bad-password"' in e[8], '"backoff"' in e[8], '"bad-totp"' in e[8]) for e in failures
    ] == [(True, False, False), (False, True, False), (False, False, True)]
    # Success reset the counter: a new failure waits 1 s again.
    with pytest.raises(AuthenticationFailedError) as again:
        env.accounts.login("drmartin", "nope", "123456", "t1")
    assert again.value.retry_after_s == 1


def test_backoff_is_capped_never_a_permanent_lock(env: Env) -> None:
    env.add("drmartin", "regulateur")
    for _ in range(15):
        with pytest.raises(AuthenticationFailedError) as exc:
            env.accounts.login("drmartin", "wrong password!", "123456", "t1")
        env.clock.advance(seconds=exc.value.retry_after_s)
    assert exc.value.retry_after_s == 900
    assert env.login("drmartin").user_id == "drmartin"
    # One security incident per burst and per scope (known account + terminal).
    incidents = env.store.db.execute(  # type: ignore[attr-defined]
        "SELECT category, object FROM incidents ORDER BY id"
    ).fetchall()
    assert incidents == [
        ("failed-login-burst", "user:drmartin"),
        ("failed-login-burst", "terminal:t1"),
    ]


def test_backoff_per_terminal_across_accounts(env: Env) -> None:
    env.add("drmartin", "regulateur")
    waits = []
    for user in ("alice", "bob", "carol"):
        env.clock.advance(seconds=waits[-1] if waits else 0)
        with pytest.raises(AuthenticationFailedError) as exc:
            env.accounts.login(user, "guess guess guess", "123456", "kiosk")
        assert not isinstance(exc.value, BackoffError)
        waits.append(exc.value.retry_after_s)
    assert waits == [1, 2, 4]  # each a different account: the terminal counter doubles
    with pytest.raises(BackoffError):  # the terminal is backing off, whatever the account
        env.accounts.login("drmartin", PW, env.code("drmartin"), "kiosk")
    assert env.login("drmartin", terminal="t2").terminal == "t2"  # other terminals unaffected


def test_unknown_user_failure_audited_without_the_typed_text(env: Env) -> None:
    with pytest.raises(AuthenticationFailedError):
        env.accounts.login("my-secret-password", "x" * 12, "123456", "t1")
    (event,) = env.events("auth.login")
    assert event[1] == "unknown-user" and event[7] == "failure"
    assert "my-secret-password" not in repr(event)


def test_disabled_user_cannot_log_in_and_sessions_end(env: Env) -> None:
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    assert env.accounts.disable_user(OP, "drmartin")
    with pytest.raises(SessionExpiredError, match="disabled"):
        env.accounts.check_session(session)
    with pytest.raises(AuthenticationFailedError):
        env.accounts.login("drmartin", PW, env.code("drmartin"), "t1")
    assert '"disabled"' in env.events("auth.login")[-1][8]
    disable = env.events("user.disable")[-1]
    assert disable[1] == "local:tester" and disable[2] == "local-operator"
    env.accounts.enable_user(OP, "drmartin")
    env.clock.advance(seconds=60)
    assert env.login("drmartin").user_id == "drmartin"


def test_sessions_reauthenticate_after_12_hours(env: Env) -> None:
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    env.clock.advance(hours=11, minutes=59)
    env.accounts.check_session(session)
    env.clock.advance(minutes=1)
    with pytest.raises(SessionExpiredError):
        env.accounts.check_session(session)
    with pytest.raises(SessionExpiredError):
        env.accounts.authorize(session, "board.view", "board")


def test_logout_ends_the_session(env: Env) -> None:
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    env.accounts.logout(session)
    with pytest.raises(SessionExpiredError):
        env.accounts.check_session(session)


def test_account_rules(env: Env) -> None:
    env.add("drmartin", "regulateur")
    with pytest.raises(AccountExistsError):
        env.add("DrMartin", "arm")
    with pytest.raises(PasswordPolicyError) as exc:
        env.add("nurse1", "ide_ehpad", password="azertyuiop123")
    assert exc.value.rule == "common"
    with pytest.raises(PasswordPolicyError):
        env.add("nurse1", "ide_ehpad", password="my nurse1 password")
    with pytest.raises(AccountError, match="unknown role"):
        env.add("nurse1", "nurse")
    with pytest.raises(AccountError, match="invalid user id"):
        env.add("bad id!", "arm")


def test_totp_secret_and_password_not_in_the_file(env: Env) -> None:
    env.add("drmartin", "regulateur")
    env.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    raw = env.path.read_bytes()
    wal = env.path.with_name(env.path.name + "-wal")
    if wal.exists():
        raw += wal.read_bytes()
    assert env.secrets["drmartin"].encode() not in raw
    assert PW.encode() not in raw


def test_reset_totp_invalidates_old_secret(env: Env) -> None:
    env.add("drmartin", "regulateur")
    old = env.secrets["drmartin"]
    enrolment = env.accounts.reset_totp(OP, "drmartin")
    new = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
    assert new != old
    with pytest.raises(AuthenticationFailedError):
        env.accounts.login("drmartin", PW, code_at(old, env.clock.now.timestamp()), "t1")
    env.clock.advance(seconds=1)
    env.secrets["drmartin"] = new
    assert env.login("drmartin").user_id == "drmartin"


def test_roles_add_remove_and_limits(env: Env) -> None:
    env.add("boss", "admin")
    env.add("drmartin", "arm")
    assert env.accounts.set_roles(OP, "drmartin", add=["regulateur"]) == {Role.ARM, Role.REGULATEUR}
    assert env.accounts.set_roles(OP, "drmartin", remove=["arm"]) == {Role.REGULATEUR}
    with pytest.raises(AccountError, match="at least one role"):
        env.accounts.set_roles(OP, "drmartin", remove=["regulateur"])
    admin = env.login("boss")
    with pytest.raises(AccountError, match="own roles"):
        env.accounts.set_roles(admin, "boss", add=["regulateur"])
    assert env.accounts.set_roles(admin, "drmartin", add=["auditeur"]) == {
        Role.REGULATEUR,
        Role.AUDITEUR,
    }
    event = env.events("user.roles")[-1]
    assert event[1] == "boss" and event[2] == "admin" and '"added":["auditeur"]' in event[8]


def test_password_change_reseals_the_signing_key(env: Env) -> None:
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    key_id = session.signer_key_id
    with pytest.raises(AuthenticationFailedError) as exc:
        env.accounts.change_password(session, "not my password", "a brand new passphrase")
    env.clock.advance(seconds=exc.value.retry_after_s)  # a wrong guess is throttled
    env.accounts.change_password(session, PW, "a brand new passphrase")
    again = env.login("drmartin", password="a brand new passphrase")
    assert again.signer_key_id == key_id and again.signer is not None


def test_admin_password_reset_retires_the_key(env: Env) -> None:
    env.add("drmartin", "regulateur")
    old_key = env.login("drmartin").signer_key_id
    new_key = env.accounts.reset_password(OP, "drmartin", "forgotten then reset")
    session = env.login("drmartin", password="forgotten then reset")
    assert session.signer_key_id == new_key != old_key
    user, _, retired = env.accounts.public_key(old_key)
    assert user == "drmartin" and retired is not None
    creates = [e for e in env.events("key.create") if "drmartin" in e[8]]
    assert len(creates) == 2 and all('"public_key"' in e[8] for e in creates)
    assert env.events("key.retire")


def test_privacy_unlock_needs_the_password(env: Env) -> None:
    env.add("drmartin", "regulateur")
    session = env.login("drmartin")
    with pytest.raises(AuthenticationFailedError):
        env.accounts.unlock(session, "wrong wrong wrong")
    with pytest.raises(BackoffError):
        env.accounts.unlock(session, PW)
    env.clock.advance(seconds=1)
    env.accounts.unlock(session, PW)
    outcomes = [e[7] for e in env.events("session.unlock")]
    assert outcomes == ["failure", "failure", "success"]


def test_list_users_shows_no_secrets(env: Env) -> None:
    env.add("drmartin", "regulateur", "arm")
    env.add("nurse1", "ide_ehpad", site="ehpad-bellevue")
    users = env.accounts.list_users(OP)
    assert [u.user_id for u in users] == ["drmartin", "nurse1"]
    assert users[1].site == "ehpad-bellevue" and users[1].roles == {Role.IDE_EHPAD}
    assert env.secrets["drmartin"] not in repr(users)
    assert env.events("user.list")


def test_default_cost_is_argon2_cffi_defaults(tmp_path: Path) -> None:
    """Production services (no hasher given) hash and seal with argon2-cffi's defaults."""
    from console.records import Store

    defaults = PasswordHasher()
    with Store.open(tmp_path / "d.db") as store:
        accounts = AccountService(store, os.urandom(32))
        accounts.create_user(OP, "drmartin", ["regulateur"], PW)
        (encoded,) = store.db.execute("SELECT password_hash FROM accounts").fetchone()
        (sealed,) = store.db.execute("SELECT sealed_private_key FROM user_keys").fetchone()
    assert encoded.startswith(
        f"$argon2id$v=19$m={defaults.memory_cost},t={defaults.time_cost},p={defaults.parallelism}$"
    )
    import struct

    assert struct.unpack_from(">BIII", sealed) == (
        1,
        defaults.time_cost,
        defaults.memory_cost,
        defaults.parallelism,
    )
