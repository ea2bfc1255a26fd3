"""The installation master key: read from the environment or a 0600 key file.

Order: ``SAMU_MASTER_KEY`` (base64 of 32 bytes; for containers and tests), else the
file named by ``SAMU_MASTER_KEY_FILE``, else ``<database file>.key`` beside the
database. The file holds 32 raw random bytes (base64 text of 32 bytes is accepted too,
for keys typed back from a paper copy). It is created on first use with mode 0600 and
refused when group or others may read it. The key never enters the database, logs or
settings: whoever copies the database alone gets ciphertext.

Uses derive purpose-specific keys with HKDF (:func:`derive_key`) rather than using the
master key directly, so backups, identity field encryption and blind indexes never
share a key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from console.records._checkpoint import _check_private, write_private_file
from console.records._errors import KeyFileError

MASTER_KEY_ENV = "SAMU_MASTER_KEY"
MASTER_KEY_FILE_ENV = "SAMU_MASTER_KEY_FILE"
KEY_BYTES = 32


def master_key_path(db_path: Path | str) -> Path:
    """``$SAMU_MASTER_KEY_FILE`` or ``<database file>.key``."""
    env = os.environ.get(MASTER_KEY_FILE_ENV)
    return Path(env) if env else Path(f"{db_path}.key")


def _decode(raw: bytes, origin: str) -> bytes:
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{origin} is not a 32-byte key (raw or base64)")
    return key


def load_master_key(db_path: Path | str, create: bool = True) -> bytes:
    """The 32-byte installation master key for the database at ``db_path``.

    Raises:
        KeyFileError: the variable is malformed, the file is missing (``create=False``),
            unreadable, of the wrong size, or readable by group/others.
    """
    env = os.environ.get(MASTER_KEY_ENV)
    if env:
        return _decode(env.encode(), f"${MASTER_KEY_ENV}")
    path = master_key_path(db_path)
    if not path.exists():
        if not create:
            raise KeyFileError(
                f"master key file not found: {path} (set {MASTER_KEY_ENV} or "
                f"{MASTER_KEY_FILE_ENV}, or restore the key file)"
            )
        try:
            write_private_file(path, os.urandom(KEY_BYTES))
        except FileExistsError:
            pass
        except OSError as exc:
            raise KeyFileError(f"cannot create master key file {path}: {exc}") from exc
    try:
        _check_private(path)
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read master key file {path}: {exc}") from exc
    return _decode(raw, str(path))


def derive_key(master: bytes, purpose: str, salt: bytes | None = None, length: int = 32) -> bytes:
    """HKDF-SHA256 sub-key of the master key for one ``purpose`` (e.g. ``samu.backup.v1``)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=purpose.encode()).derive(
        master
    )
