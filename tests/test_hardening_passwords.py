"""Password policy on what the person really typed: NFKC-normalised, Unicode format
characters (category Cf: zero-width spaces, joiners, bidi marks) removed, before every
rule; control characters refused; too few distinct characters refused. Hashing and
verification see the same normalised text, and hashes made before stay usable."""

from __future__ import annotations

import unicodedata

import pytest
from argon2 import PasswordHasher

from console.auth import PasswordPolicyError, check_password_policy, hash_password, verify_password
from console.auth._passwords import normalise_password

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def refused(user_id: str, password: str) -> PasswordPolicyError:
    with pytest.raises(PasswordPolicyError) as exc:
        check_password_policy(user_id, password)
    assert password not in str(exc.value) or not password.strip()
    assert "\n" not in str(exc.value)
    return exc.value


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        (" " * 12, "distinct"),
        ("\x00" * 12, "control"),
        ("é" * 12, "distinct"),
        ("e\u0301" * 12, "distinct"),  # the same é, decomposed
        ("abababababab", "distinct"),
        ("abcdabcdabcd", "distinct"),
        ("tab\there-is-long", "control"),
        ("line\nbreak-is-long", "control"),
        ("delete\x7f-is-long", "control"),
    ],
)
def test_degenerate_passwords_are_refused_with_the_rule_named(password: str, rule: str) -> None:
    assert refused("jdupont", password).rule == rule


def test_control_characters_get_a_clear_message() -> None:
    message = str(refused("jdupont", "correct\x00horse battery"))
    assert "control character" in message


def test_full_width_forms_of_common_passwords_are_common() -> None:
    assert refused("jdupont", full_width("password1234")).rule == "common"
    assert refused("jdupont", full_width("AZERTYUIOP123")).rule == "common"


@pytest.mark.parametrize(
    "password",
    [
        "xx-jd\u200bupont-horse-battery",  # zero-width space inside the user id
        "xx-jdu\u2060pont-horse-battery",  # word joiner
        "xx-" + full_width("JDupont") + "-horse-battery",
        "xx-jdupont\u200d-horse-battery",
    ],
)
def test_the_user_id_rule_sees_through_invisible_and_full_width_characters(password: str) -> None:
    assert refused("jdupont", password).rule == "contains-user-id"


def test_invisible_characters_do_not_count_towards_the_length() -> None:
    assert refused("jdupont", "abcdefghij\u200b\u200b").rule == "length"


def test_the_user_id_is_normalised_too() -> None:
    assert refused(full_width("jdupont"), "xx-jdupont-horse-battery").rule == "contains-user-id"


def test_good_passwords_still_pass() -> None:
    for password in ("correct horse battery staple", "tempête sur la régulation", "twelve chars"):
        check_password_policy("jdupont", password)


def test_normalisation_is_nfkc_without_format_characters() -> None:
    assert normalise_password("e\u0301t\u200be\u0301") == "été"
    assert normalise_password(full_width("Abc")) == "Abc"
    assert unicodedata.is_normalized("NFKC", normalise_password("ﬁne ①"))


def test_set_and_verify_see_the_same_normalised_password() -> None:
    composed, decomposed = (
        "tempête sur la régulation",
        unicodedata.normalize("NFD", "tempête sur la régulation"),
    )
    assert composed != decomposed
    encoded = hash_password(decomposed, FAST)
    assert verify_password(encoded, composed)
    assert verify_password(encoded, decomposed)
    assert verify_password(hash_password(composed, FAST), decomposed)
    assert not verify_password(encoded, "tempête sur la regulation")


def test_hashes_made_before_the_change_still_verify() -> None:
    # Before: the raw text was hashed. When it is already normalised, nothing changes.
    old = FAST.hash("correct horse battery staple")
    assert verify_password(old, "correct horse battery staple")
    assert not verify_password(old, "correct horse battery stapler")
    # A raw text that normalisation changes still opens its old hash when typed again.
    raw = unicodedata.normalize("NFD", "tempête sur la régulation")
    old_raw = FAST.hash(raw)
    assert verify_password(old_raw, raw)


def test_unencodable_text_is_a_refusal_not_a_crash() -> None:
    lone_surrogate = "correct horse\udcff battery"
    assert refused("jdupont", lone_surrogate).rule == "control"
    assert not verify_password(hash_password("correct horse battery", FAST), lone_surrogate)
