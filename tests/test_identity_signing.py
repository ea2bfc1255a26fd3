"""User signing keys sealed under the password; offline verification of records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from console.crypto import (
    KeyUnlockError,
    decrypt_private_key,
    generate_user_key,
    make_bundle,
    raw_public,
    sign,
    signed_content,
    verify,
    verify_bundle,
)

PW = "correct horse battery staple"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only


@pytest.fixture(scope="module")
def new_key():
    return generate_user_key("drmartin", PW, FAST)


def _content(key_id: str) -> bytes:
    return signed_content(
        record_id="rec_1",
        kind="decision",
        subject="pat_1",
        author="drmartin",
        key_id=key_id,
        signed_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        payload={"priority": "P1"},
    )


def test_private_key_only_with_the_password(new_key) -> None:
    private = decrypt_private_key("drmartin", new_key.key_id, new_key.sealed_private, PW)
    assert raw_public(private) == new_key.public_key
    with pytest.raises(KeyUnlockError, match="does not decrypt"):
        decrypt_private_key("drmartin", new_key.key_id, new_key.sealed_private, PW + "!")
    # Bound to its owner: another user's row cannot use it.
    with pytest.raises(KeyUnlockError):
        decrypt_private_key("other", new_key.key_id, new_key.sealed_private, PW)


def test_sealed_blob_does_not_contain_the_raw_private_key(new_key) -> None:
    from cryptography.hazmat.primitives import serialization

    raw = new_key.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert raw not in new_key.sealed_private


def test_bundle_verifies_offline_and_detects_changes(new_key) -> None:
    content = _content(new_key.key_id)
    bundle = make_bundle(content, sign(new_key.private, content), new_key.public_key)
    assert verify_bundle(json.loads(json.dumps(bundle)))
    other = generate_user_key("intrus", PW, FAST)
    # Content edited.
    edited = _content(new_key.key_id).replace(b"P1", b"P3")
    assert not verify_bundle({**bundle, "content": make_bundle(edited, b"", b"")["content"]})
    # Signature by another key presented with our public key.
    forged = make_bundle(content, sign(other.private, content), new_key.public_key)
    assert not verify_bundle(forged)
    # Re-attribution: another key's valid signature, bundle claiming the other key.
    reattributed = make_bundle(content, sign(other.private, content), other.public_key)
    assert not verify_bundle(reattributed)  # content names the original key id
    assert verify(new_key.public_key, content, sign(new_key.private, content))


def test_signed_content_is_canonical_and_checked(new_key) -> None:
    a = _content(new_key.key_id)
    assert a == _content(new_key.key_id)
    assert b" " not in a
    with pytest.raises(ValueError, match="offset"):
        signed_content(
            record_id="r",
            kind="decision",
            subject="s",
            author="a",
            key_id="k",
            signed_at=datetime(2025, 1, 1),
            payload={},
        )
    with pytest.raises(ValueError, match="kind"):
        signed_content(
            record_id="r",
            kind="memo",
            subject="s",
            author="a",
            key_id="k",
            signed_at=datetime(2025, 1, 1, tzinfo=UTC),
            payload={},
        )
