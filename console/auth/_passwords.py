"""Password policy and Argon2id hashing.

The policy is the one of records-security.md, and nothing more: at least 12
characters, not in the shipped list of common/breached passwords, not containing the
user id. There are deliberately no character-class rules: NIST SP 800-63B and the ANSSI
both found they push people to predictable patterns (``Password1!``) without adding
strength, while length and a deny-list do.

Hashing uses argon2-cffi's :class:`~argon2.PasswordHasher` with its defaults (Argon2id,
RFC 9106 low-memory profile); the encoded hash carries its own parameters, so raising
them later only needs :func:`needs_rehash` at the next successful login.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12

_HASHER = PasswordHasher()


class PasswordPolicyError(ValueError):
    """A proposed password breaks a rule; ``rule`` names which one (for tests and UIs).

    The message is meant for the person choosing the password: it says which rule was
    broken and never echoes the password itself.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped deny-list, lower-cased (loaded once, ~9 k entries)."""
    text = resources.files("console.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password_policy(user_id: str, password: str) -> None:
    """Raise :class:`PasswordPolicyError` if ``password`` is not acceptable for ``user_id``.

    Rules are checked from the cheapest to explain to the most specific, and the first
    broken rule is reported so the message is actionable. Comparisons are
    case-insensitive: ``AZERTYuiop123`` is as guessable as ``azertyuiop123``.
    """
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(
            "length",
            f"password too short: at least {MIN_LENGTH} characters are required "
            f"(got {len(password)})",
        )
    folded = password.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise PasswordPolicyError(
            "common",
            "password refused: it is in the list of common or breached passwords",
        )
    if user_id and user_id.casefold() in folded:
        raise PasswordPolicyError(
            "contains-user-id", "password refused: it must not contain the user id"
        )


def default_hasher() -> PasswordHasher:
    """argon2-cffi's defaults (the contract). Services accept another hasher only so
    tests can run with cheap parameters; production never passes one."""
    return _HASHER


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """Argon2id-encoded hash (``$argon2id$v=19$m=…``) with a fresh random salt."""
    return (hasher or _HASHER).hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """True when ``password`` matches ``encoded``; False on mismatch or unusable hash.

    An unusable stored hash (corrupted, or the ``!`` placeholder of an account that
    never had a password) is a refusal, not an exception: the caller treats it as any
    other failed attempt and audits it.
    """
    try:
        # The encoded hash carries its own parameters: any hasher verifies any hash.
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """True when ``encoded`` was made with weaker parameters than today's defaults."""
    try:
        return _HASHER.check_needs_rehash(encoded)
    except InvalidHashError:
        return True
