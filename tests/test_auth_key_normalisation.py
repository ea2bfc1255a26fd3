"""Passwords are normalised (NFKC, format characters removed) before every rule and hash:
the signing key sealed under a password must open with any spelling the login accepts."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from argon2 import PasswordHasher

from console.auth import AccountService, LocalOperator, code_at
from console.records import Store

OP = LocalOperator("tester", "pts/test")
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_a_key_opens_with_every_spelling_the_login_accepts(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        accounts = AccountService(store, b"k" * 32, hasher=FAST)
        typed = "ｃｏｒｒｅｃｔ horse battery staple"  # full-width letters, as some keyboards do
        enrolment = accounts.create_user(OP, "drmartin", ["regulateur"], typed)
        secret = parse_qs(urlparse(enrolment.otpauth_uri).query)["secret"][0]
        # The same password typed in plain ASCII, with a zero-width space in it.
        plain = "correct horse\u200b battery staple"
        session = accounts.login("drmartin", plain, code_at(secret, time.time() - 30), "t1")
        assert session.signer is not None  # the key opened: decisions can be signed
        accounts.change_password(session, plain, "a brand new passphrase")
        again = accounts.login(
            "drmartin", "a brand new passphrase", code_at(secret, time.time()), "t1"
        )
        assert again.signer is not None
