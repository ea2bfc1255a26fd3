"""Password policy and Argon2id hashing.

The policy is the one of records-security.md, and nothing more: at least 12
characters, not in the shipped list of common/breached passwords, not containing the
user id. There are deliberately no character-class rules: NIST SP 800-63B and the ANSSI
both found they push people to predictable patterns (``Password1!``) without adding
strength, while length and a deny-list do.

Every rule judges what the person meant, not how the keyboard encoded it: the text is
first normalised (:func:`normalise_password`: Unicode format characters — category Cf,
zero-width spaces and joiners, bidi marks — removed, then NFKC, which folds full-width
and other compatibility forms and composes accents), so ``ｐａｓｓｗｏｒｄ１２３４`` is
the listed ``password1234`` and ``jd\u200bupont`` contains ``jdupont``. Two further
refusals close what length alone let through: control characters (category Cc: NUL,
tab, line breaks — they cannot be typed reliably at every terminal and truncate in C
code) and lone surrogates, with a message saying so; and passwords made of fewer than
:data:`MIN_DISTINCT` different characters (twelve spaces, ``éééééééééééé``,
``abababababab``), which are guessed first. This is a deny-list rule, not a
character-class one: any five characters will do.

Hashing uses argon2-cffi's :class:`~argon2.PasswordHasher` with its defaults (Argon2id,
RFC 9106 low-memory profile); the encoded hash carries its own parameters, so raising
them later only needs :func:`needs_rehash` at the next successful login. What is hashed
is the normalised text, at set and at verify alike, so the same password typed on
another keyboard (composed or decomposed accents) still opens its hash. Hashes made
before normalisation hashed the raw text: when normalising changes nothing (every ASCII
password) they verify as before, and otherwise the raw text is tried too, so nobody is
locked out by the change.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
#: Fewest different characters (after normalisation and case folding) a password holds.
MIN_DISTINCT = 5

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


def _without_format_characters(text: str) -> str:
    if text.isascii():  # the common case: ASCII has no format character
        return text
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def normalise_password(password: str) -> str:
    """The text every rule, the hash and its verification see.

    Unicode format characters (category Cf) are removed, then the text is NFKC
    normalised (and format characters a compatibility mapping might yield removed
    again). Removing first lets an accent separated from its letter by a zero-width
    space compose with it.
    """
    text = unicodedata.normalize("NFKC", _without_format_characters(password))
    return _without_format_characters(text)


def _refuse_unusable_characters(password: str) -> None:
    for char in password:
        category = unicodedata.category(char)
        if category == "Cc":
            raise PasswordPolicyError(
                "control",
                "password refused: it contains a control character (such as NUL, a tab "
                "or a line break), which cannot be typed reliably at every terminal",
            )
        if category == "Cs":
            raise PasswordPolicyError(
                "control",
                "password refused: it is not valid Unicode text (a lone surrogate, as "
                "left by a badly decoded input)",
            )


def check_password_policy(user_id: str, password: str) -> None:
    """Raise :class:`PasswordPolicyError` if ``password`` is not acceptable for ``user_id``.

    Rules are checked from the cheapest to explain to the most specific, and the first
    broken rule is reported so the message is actionable; all of them judge the
    normalised text (:func:`normalise_password`), the user id normalised the same way.
    Comparisons are case-insensitive: ``AZERTYuiop123`` is as guessable as
    ``azertyuiop123``.
    """
    _refuse_unusable_characters(password)
    text = normalise_password(password)
    if len(text) < MIN_LENGTH:
        raise PasswordPolicyError(
            "length",
            f"password too short: at least {MIN_LENGTH} characters are required (got {len(text)})",
        )
    folded = text.casefold()
    distinct = len(set(folded))
    if distinct < MIN_DISTINCT:
        raise PasswordPolicyError(
            "distinct",
            f"password refused: it uses only {distinct} different character"
            f"{'' if distinct == 1 else 's'}; at least {MIN_DISTINCT} are required",
        )
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise PasswordPolicyError(
            "common",
            "password refused: it is in the list of common or breached passwords",
        )
    uid = normalise_password(user_id).casefold() if user_id else ""
    if uid and uid in folded:
        raise PasswordPolicyError(
            "contains-user-id", "password refused: it must not contain the user id"
        )


def default_hasher() -> PasswordHasher:
    """argon2-cffi's defaults (the contract). Services accept another hasher only so
    tests can run with cheap parameters; production never passes one."""
    return _HASHER


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """Argon2id-encoded hash (``$argon2id$v=19$m=…``) of the normalised password, with a
    fresh random salt.

    Raises:
        PasswordPolicyError: ``control`` — the text is not valid Unicode (a lone
            surrogate cannot be encoded, so it cannot be hashed).
    """
    try:
        return (hasher or _HASHER).hash(normalise_password(password))
    except UnicodeError:
        _refuse_unusable_characters(password)
        raise


def verify_password(encoded: str, password: str) -> bool:
    """True when ``password`` matches ``encoded``; False on mismatch or unusable hash.

    An unusable stored hash (corrupted, or the ``!`` placeholder of an account that
    never had a password) is a refusal, not an exception: the caller treats it as any
    other failed attempt and audits it.
    """
    normalised = normalise_password(password)
    if _verify(encoded, normalised):
        return True
    # A hash made before normalisation hashed the raw text; when normalising changed
    # it, that text may still be the one that opens it.
    return normalised != password and _verify(encoded, password)


def _verify(encoded: str, text: str) -> bool:
    try:
        # The encoded hash carries its own parameters: any hasher verifies any hash.
        return _HASHER.verify(encoded, text)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeError):
        return False


def needs_rehash(encoded: str) -> bool:
    """True when ``encoded`` was made with weaker parameters than today's defaults."""
    try:
        return _HASHER.check_needs_rehash(encoded)
    except InvalidHashError:
        return True
