"""Field encryption, per-patient data keys, the blind index, and the master key check.

Pure cryptography over values handed in: no database, no environment (the store is
duck-typed in :func:`ensure_master_key`, which records which master key a database
was made with).

Key hierarchy (all AES-256, all from ``cryptography``):

* the installation **master key** (32 bytes) lives outside the database (key file
  ``<db>.key`` mode 0600, or ``SAMU_MASTER_KEY``/``SAMU_MASTER_KEY_FILE``; loaded by
  :func:`console.crypto.load_master_key`). It is never used directly: HKDF-SHA256
  derives one sub-key per purpose (wrapping patient keys, the blind index, auth
  secrets, the key-check value), so a weakness in one use cannot leak another;
* each patient has a random 256-bit **data key**, stored only *wrapped* (AES-256-GCM
  under the wrapping sub-key, associated data ``patient_keys|<patient id>|<version>``,
  so a wrapped key copied onto another patient's row does not unwrap). AES-GCM rather
  than RFC 3394 key wrap precisely because it binds that associated data;
* every identity field and free text is sealed with AES-256-GCM under the patient's
  data key with a fresh 96-bit random nonce; the associated data binds **table,
  column, row id and key version**, so moving a ciphertext to another cell, row or
  patient, or replaying an old-version value, fails authentication instead of
  silently showing the wrong data.

Deleting a patient's wrapped data key makes all their ciphertexts undecryptable:
crypto-shredding, used by retention (backups age out with their rotation).

Field blob layout (version 1): ``0x01 | key_version (u32 BE) | nonce (12) | ciphertext+tag``.

**Blind index**: name search without decrypting every row uses
``HMAC-SHA256(index sub-key, normalise_name(name))``. Normalisation strips accents
(NFKD, drop combining marks), upper-cases, and turns every run of spaces, hyphens and
apostrophes into one space (``Lefèvre-Durand`` → ``LEFEVRE DURAND``), which is how a
caller may spell a name on the phone. The index is keyed by the master key, so a stolen
database alone cannot be dictionary-searched; it does reveal which rows share a name,
the accepted cost of searching.

**Master key check**: the database stores ``HMAC(check sub-key, "samu-master-key-id")``
(truncated, not secret); opening with another key is detected up front and reported as
:class:`WrongMasterKeyError` rather than as a puzzling authentication failure on some row.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
FIELD_FORMAT = 1
_HEADER = struct.Struct(">BI")


class CryptoError(Exception):
    """Base of the identity-encryption errors (messages never contain plaintext)."""


class WrongMasterKeyError(CryptoError):
    """The master key in use is not the one this database was encrypted with."""


class DecryptionError(CryptoError):
    """A ciphertext failed authentication: tampered, moved, or its key is gone."""


class PatientShreddedError(CryptoError):
    """The patient's data key was deleted (crypto-shredding): their data is unreadable."""


def _hkdf(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


_SEPARATORS = re.compile(r"[\s\-‐‑‒–—'’`]+")


def normalise_name(name: str) -> str:
    """Name as compared for search: no accents, upper case, one space between parts."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    # Ligatures NFKD leaves alone in French names.
    stripped = stripped.replace("Œ", "OE").replace("œ", "oe").replace("Æ", "AE").replace("æ", "ae")
    return _SEPARATORS.sub(" ", stripped.upper()).strip()


@dataclass(frozen=True)
class Cell:
    """Where a ciphertext lives: table, column and row id (bound as associated data)."""

    table: str
    column: str
    row_id: str

    def aad(self, key_version: int) -> bytes:
        """Associated data binding a ciphertext to this cell and a key version.

        NUL-separated (no part may contain NUL) so ``("a|b", "c")`` and ``("a", "b|c")``
        cannot collide.
        """
        parts = (self.table, self.column, self.row_id, str(key_version))
        if any("\x00" in p for p in parts):
            raise ValueError("table, column and row id must not contain NUL")
        return b"samu-field-v1\x00" + "\x00".join(parts).encode("utf-8")

    def __str__(self) -> str:
        return f"{self.table}.{self.column} of {self.row_id}"


def seal_field(data_key: bytes, cell: Cell, plaintext: str, key_version: int = 1) -> bytes:
    """Encrypt one field value (UTF-8 text) for one cell."""
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(data_key).encrypt(nonce, plaintext.encode("utf-8"), cell.aad(key_version))
    return _HEADER.pack(FIELD_FORMAT, key_version) + nonce + ct


def open_field(data_key: bytes, cell: Cell, blob: bytes) -> str:
    """Decrypt a value sealed by :func:`seal_field` for this exact cell.

    Raises:
        DecryptionError: wrong cell, wrong key, tampered or unknown format.
    """
    blob = bytes(blob)
    if len(blob) < _HEADER.size + NONCE_BYTES + 16:
        raise DecryptionError(f"{cell}: ciphertext truncated")
    fmt, version = _HEADER.unpack_from(blob)
    if fmt != FIELD_FORMAT:
        raise DecryptionError(f"{cell}: unknown ciphertext format {fmt}")
    nonce = blob[_HEADER.size : _HEADER.size + NONCE_BYTES]
    ct = blob[_HEADER.size + NONCE_BYTES :]
    try:
        plain = AESGCM(data_key).decrypt(nonce, ct, cell.aad(version))
    except InvalidTag as exc:
        raise DecryptionError(
            f"{cell}: authentication failed (tampered, moved to another cell, or encrypted "
            "under another key)"
        ) from exc
    return plain.decode("utf-8")


def field_key_version(blob: bytes) -> int:
    """The key version a sealed field was made with."""
    return int(_HEADER.unpack_from(blob)[1])


class MasterKeyRing:
    """The sub-keys derived from the installation master key.

    Not to be confused with :class:`protocols.KeyRing`, the devices' HMAC keys.

    Holds key material in memory only; ``repr`` shows the key id, never a key.
    """

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise WrongMasterKeyError(
                f"the master key must be {KEY_BYTES} bytes (got {len(master_key)}): "
                "check SAMU_MASTER_KEY / SAMU_MASTER_KEY_FILE"
            )
        self._wrap = _hkdf(master_key, b"samu/patient-key-wrap/v1")
        self._index = _hkdf(master_key, b"samu/blind-index/v1")
        self._secrets = _hkdf(master_key, b"samu/auth-secrets/v1")
        check = _hkdf(master_key, b"samu/master-key-check/v1")
        self.key_id = hmac.new(check, b"samu-master-key-id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKeyRing(key_id={self.key_id!r})"

    @staticmethod
    def new_data_key() -> bytes:
        """A fresh random per-patient data key."""
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, patient_id: str, version: int, data_key: bytes) -> bytes:
        """Wrap a patient data key for storage in ``patient_keys``."""
        nonce = os.urandom(NONCE_BYTES)
        aad = f"patient_keys\x00{patient_id}\x00{version}".encode()
        return nonce + AESGCM(self._wrap).encrypt(nonce, data_key, aad)

    def unwrap(self, patient_id: str, version: int, wrapped: bytes) -> bytes:
        """Recover a patient data key.

        Raises:
            DecryptionError: the wrapped key was altered or belongs to another row.
        """
        aad = f"patient_keys\x00{patient_id}\x00{version}".encode()
        try:
            return AESGCM(self._wrap).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise DecryptionError(
                f"the data key of patient {patient_id} does not unwrap: it was altered or "
                "the master key is not this database's"
            ) from exc

    def blind_index(self, name: str) -> bytes:
        """Keyed search token for a name (see the module docstring)."""
        return hmac.new(self._index, normalise_name(name).encode("utf-8"), hashlib.sha256).digest()

    def seal_secret(self, context: str, secret: bytes) -> bytes:
        """Encrypt a small server-side secret (a TOTP seed) bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self._secrets).encrypt(nonce, secret, context.encode("utf-8"))

    def open_secret(self, context: str, blob: bytes) -> bytes:
        """Decrypt :meth:`seal_secret` output.

        Raises:
            DecryptionError: tampered, moved, or another master key.
        """
        try:
            return AESGCM(self._secrets).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode("utf-8")
            )
        except InvalidTag as exc:
            raise DecryptionError(
                f"secret for {context} does not decrypt: altered, or another master key"
            ) from exc


def ensure_master_key(store: Any, ring: MasterKeyRing, clock: Callable[[], datetime]) -> None:
    """Bind the database to a master key on first use; refuse any other key afterwards.

    Raises:
        WrongMasterKeyError: the database was made with another master key. Nothing is
            written, so a wrong key cannot damage anything.
    """
    row = store.fetchone("SELECT master_key_id FROM identity_keyring WHERE id = 1")
    if row is None:
        with store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO identity_keyring (id, master_key_id, created_at)"
                " VALUES (1, ?, ?)",
                (ring.key_id, clock().isoformat()),
            )
            row = conn.execute("SELECT master_key_id FROM identity_keyring WHERE id = 1").fetchone()
    if row[0] != ring.key_id:
        raise WrongMasterKeyError(
            f"wrong master key: this database was encrypted with master key {row[0]}, "
            f"the key given is {ring.key_id}; point SAMU_MASTER_KEY_FILE (or "
            "SAMU_MASTER_KEY) at this database's key — nothing was read or written"
        )
