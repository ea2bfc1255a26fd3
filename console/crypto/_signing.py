"""Users' Ed25519 signing keys and signed records, verifiable offline.

A record has probative value when its author is identified, its integrity guaranteed
and its date fixed: each decision, received bilan and compte rendu is signed with its
author's Ed25519 key over canonical bytes that include the author, the key id, the
subject (patient) and the signing time.

**Private keys at rest**: encrypted under a key derived from the user's password
(Argon2id with argon2-cffi's default cost, random 16-byte salt) with AES-256-GCM,
associated data ``user_keys|<user id>|<key id>``. The server therefore cannot sign for
a user without their password: the key is decrypted at login and lives only in the
:class:`~console.auth.Session`. When an administrator resets a forgotten password the
old key cannot be decrypted any more; it is *retired* (kept for verifying old
signatures) and a new pair is made. Public keys and every change of key are appended
to the audit trail, so a verifier can learn which key belonged to whom and when.

Blob layout (version 1): ``0x01 | time_cost u32 | memory_cost u32 | parallelism u32 |
salt (16) | nonce (12) | ciphertext+tag`` — the KDF parameters travel with the blob so
they can be raised later without breaking existing keys.

**Offline verification**: :func:`verify_bundle` needs nothing but the bundle (canonical
bytes, signature, public key): no database, no network. The key id is the SHA-256 of
the raw public key (first 16 bytes, hex), so a bundle cannot claim another key's id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.low_level import hash_secret_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols import canonical_json

_DEFAULTS = PasswordHasher()
_KDF_HEADER = struct.Struct(">BIII")
_SALT = 16
_NONCE = 12
KEY_FORMAT = 1
RECORD_KINDS: tuple[str, ...] = ("decision", "bilan", "compte_rendu")
SIGNATURE_ALG = "Ed25519"


class KeyUnlockError(Exception):
    """The private key does not decrypt: wrong password, or the blob was altered."""


def key_id_of(public_key: bytes) -> str:
    """Fingerprint of a raw 32-byte Ed25519 public key (hex, 128 bits)."""
    return hashlib.sha256(public_key).hexdigest()[:32]


def _aad(user_id: str, key_id: str) -> bytes:
    return f"user_keys\x00{user_id}\x00{key_id}".encode()


def _derive(password: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    return hash_secret_raw(
        password.encode("utf-8"),
        salt,
        time_cost=t,
        memory_cost=m,
        parallelism=p,
        hash_len=32,
        type=Type.ID,
    )


def raw_public(private: Ed25519PrivateKey) -> bytes:
    """The raw 32 bytes of the public half."""
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def encrypt_private_key(
    user_id: str, private: Ed25519PrivateKey, password: str, kdf: PasswordHasher | None = None
) -> bytes:
    """Seal a private key under ``Argon2id(password)`` (see the module docstring).

    ``kdf`` supplies the Argon2 cost (argon2-cffi's defaults unless a test passes a
    cheaper one); the parameters are written into the blob.
    """
    params = kdf or _DEFAULTS
    t, m, p = params.time_cost, params.memory_cost, params.parallelism
    salt = os.urandom(_SALT)
    nonce = os.urandom(_NONCE)
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    ct = AESGCM(_derive(password, salt, t, m, p)).encrypt(
        nonce, raw, _aad(user_id, key_id_of(raw_public(private)))
    )
    return _KDF_HEADER.pack(KEY_FORMAT, t, m, p) + salt + nonce + ct


def decrypt_private_key(user_id: str, key_id: str, blob: bytes, password: str) -> Ed25519PrivateKey:
    """Open a sealed private key and check it matches ``key_id``.

    Raises:
        KeyUnlockError: wrong password, altered blob, or a key that is not ``key_id``.
    """
    try:
        fmt, t, m, p = _KDF_HEADER.unpack_from(blob)
    except struct.error as exc:
        raise KeyUnlockError("signing key blob truncated") from exc
    if fmt != KEY_FORMAT:
        raise KeyUnlockError(f"unknown signing key format {fmt}")
    off = _KDF_HEADER.size
    salt, nonce, ct = (
        blob[off : off + _SALT],
        blob[off + _SALT : off + _SALT + _NONCE],
        blob[off + _SALT + _NONCE :],
    )
    try:
        raw = AESGCM(_derive(password, salt, t, m, p)).decrypt(nonce, ct, _aad(user_id, key_id))
    except InvalidTag as exc:
        raise KeyUnlockError(
            f"the signing key of {user_id} does not decrypt with this password"
        ) from exc
    private = Ed25519PrivateKey.from_private_bytes(raw)
    if key_id_of(raw_public(private)) != key_id:
        raise KeyUnlockError(f"the signing key of {user_id} is not key {key_id}")
    return private


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key pair, ready to store."""

    key_id: str
    public_key: bytes
    sealed_private: bytes
    private: Ed25519PrivateKey


def generate_user_key(user_id: str, password: str, kdf: PasswordHasher | None = None) -> NewKey:
    """A new Ed25519 pair for ``user_id``, the private half sealed under the password."""
    private = Ed25519PrivateKey.generate()
    public = raw_public(private)
    return NewKey(
        key_id_of(public), public, encrypt_private_key(user_id, private, password, kdf), private
    )


def signed_content(
    *,
    record_id: str,
    kind: str,
    subject: str,
    author: str,
    key_id: str,
    signed_at: datetime,
    payload: dict[str, Any],
) -> bytes:
    """The canonical bytes a record's signature covers.

    Everything that gives the record its meaning is inside: who (author + key id), when
    (ISO 8601 with offset), about whom (subject id, never an identity) and what.
    """
    if kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r} (one of {', '.join(RECORD_KINDS)})")
    if signed_at.tzinfo is None:
        raise ValueError("signing time must carry its UTC offset")
    return canonical_json(
        {
            "v": 1,
            "alg": SIGNATURE_ALG,
            "record_id": record_id,
            "kind": kind,
            "subject": subject,
            "author": author,
            "key_id": key_id,
            "signed_at": signed_at.isoformat(),
            "payload": payload,
        }
    )


def sign(private: Ed25519PrivateKey, content: bytes) -> bytes:
    """Ed25519 signature (64 bytes) of ``content``."""
    return private.sign(content)


def verify(public_key: bytes, content: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the holder of ``public_key``'s over ``content``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, content)
    except (InvalidSignature, ValueError):
        return False
    return True


def make_bundle(content: bytes, signature: bytes, public_key: bytes) -> dict[str, str]:
    """A self-contained, JSON-serialisable proof to verify offline with :func:`verify_bundle`."""
    return {
        "alg": SIGNATURE_ALG,
        "content": base64.b64encode(content).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
        "public_key": base64.b64encode(public_key).decode("ascii"),
        "key_id": key_id_of(public_key),
    }


def verify_bundle(bundle: dict[str, Any]) -> bool:
    """Verify a bundle from :func:`make_bundle` with no database and no network.

    Checks the signature, that the key id is the public key's fingerprint, and that the
    signed content names that same key id (so a signature cannot be re-attributed).
    """
    try:
        content = base64.b64decode(bundle["content"], validate=True)
        signature = base64.b64decode(bundle["signature"], validate=True)
        public = base64.b64decode(bundle["public_key"], validate=True)
        claimed = json.loads(content)
    except (KeyError, ValueError, TypeError):
        return False
    if bundle.get("alg") != SIGNATURE_ALG or len(public) != 32:
        return False
    kid = key_id_of(public)
    if bundle.get("key_id") != kid or not isinstance(claimed, dict) or claimed.get("key_id") != kid:
        return False
    return verify(public, content, signature)
