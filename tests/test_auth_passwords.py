"""Password policy (records-security.md) and Argon2id hashing."""

from __future__ import annotations

import pytest

from console.auth import PasswordPolicyError, check_password_policy, hash_password, verify_password
from console.auth._passwords import common_passwords


def test_shipped_list_is_large_lowercase_and_has_the_classics() -> None:
    words = common_passwords()
    assert len(words) >= 1000
    assert all(w == w.lower() for w in words)
    for classic in (
        "password",
        "123456",
        "azerty",
        "motdepasse",
        "soleil",
        "doudou",
        "qwertyuiop123",
        "azertyuiop123",
        "password1234",
    ):
        assert classic in words


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short-pass1", "length"),  # 11 characters
        ("", "length"),
        ("Password1234", "common"),  # case-insensitive comparison
        ("AZERTYUIOP123", "common"),
        ("motdepasse123", "common"),
        ("123456789012", "common"),
        ("xx-JDupont-horse-battery", "contains-user-id"),
    ],
)
def test_policy_refuses_with_the_rule_named(password: str, rule: str) -> None:
    with pytest.raises(PasswordPolicyError) as exc:
        check_password_policy("jdupont", password)
    assert exc.value.rule == rule
    # The message says which rule, and never echoes the password.
    assert password not in str(exc.value) or not password
    assert {"length": "12 characters", "common": "common", "contains-user-id": "user id"}[rule] in (
        str(exc.value)
    )


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "twelve chars",  # exactly 12, lower case only: no character-class rules
        "étéàçèùêîôûë",  # 12 accented letters (NFKC keeps them)
        "tempête sur la régulation",
    ],
)
def test_policy_accepts_long_uncommon_passwords(password: str) -> None:
    check_password_policy("jdupont", password)


def test_exactly_eleven_refused_twelve_accepted() -> None:
    with pytest.raises(PasswordPolicyError):
        check_password_policy("u1", "qzmxnwbcvlk")
    check_password_policy("u1", "qzmxnwbcvlkj")


def test_argon2id_hash_round_trip() -> None:
    encoded = hash_password("correct horse battery staple")
    assert encoded.startswith("$argon2id$")
    assert verify_password(encoded, "correct horse battery staple")
    assert not verify_password(encoded, "correct horse battery stapler")
    assert not verify_password("not a hash", "whatever")
    # A fresh salt each time.
    assert hash_password("correct horse battery staple") != encoded
