"""The installation master key: given by the settings, or read from a 0600 key file.

Order: the ``master_key`` setting (``SAMU_MASTER_KEY``: base64 of 32 bytes, for
containers and tests), else the ``master_key_file`` setting (``SAMU_MASTER_KEY_FILE``),
else ``<database file>.key`` beside the database. The file holds 32 raw random bytes
(base64 text of 32 bytes is accepted too, for keys typed back from a paper copy). It is
created on first use with mode 0600 and refused when group or others may read it. The
key never enters the database, logs or settings dumps: whoever copies the database alone
gets ciphertext.

This module reads no environment variable: the settings do, and the composition root
hands their values here, so one place decides where a key comes from.

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

from console.crypto._files import PrivateFileError, check_private, write_private_file

KEY_BYTES = 32
#: How a person names where the key comes from, in messages.
KEY_SETTINGS_HINT = "set SAMU_MASTER_KEY or SAMU_MASTER_KEY_FILE, or restore the key file"


class MasterKeyError(Exception):
    """The master key is missing, unreadable, unsafe (group/others) or not 32 bytes."""


def master_key_path(db_path: Path | str, key_file: Path | str | None = None) -> Path:
    """``key_file`` (the ``master_key_file`` setting) or ``<database file>.key``."""
    return Path(key_file) if key_file else Path(f"{db_path}.key")


def _decode(raw: bytes, origin: str) -> bytes:
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{origin} is not a 32-byte key (raw or base64)")
    return key


def load_master_key(
    db_path: Path | str,
    *,
    key: str | None = None,
    key_file: Path | str | None = None,
    create: bool = True,
) -> bytes:
    """The 32-byte installation master key for the database at ``db_path``.

    Args:
        db_path: the database the key belongs to (locates ``<db>.key``).
        key: the key itself, base64 (the ``master_key`` setting); wins when given.
        key_file: the ``master_key_file`` setting.
        create: create a fresh key file when none exists (first use).

    Raises:
        MasterKeyError: the given key is malformed, the file is missing (``create=False``),
            unreadable, of the wrong size, or readable by group/others.
    """
    if key:
        return _decode(key.encode(), "SAMU_MASTER_KEY")
    path = master_key_path(db_path, key_file)
    if not path.exists():
        if not create:
            raise MasterKeyError(f"master key file not found: {path} ({KEY_SETTINGS_HINT})")
        try:
            write_private_file(path, os.urandom(KEY_BYTES))
        except FileExistsError:
            pass
        except OSError as exc:
            raise MasterKeyError(f"cannot create master key file {path}: {exc}") from exc
    try:
        raw = path.read_bytes() if path.is_file() else b""
        # What the file is comes first: "chmod 600" is advice for a key file only (told
        # of /etc/passwd, it would have been a harmful one).
        key_bytes = _decode(raw, str(path))
        check_private(path)
    except PrivateFileError as exc:
        raise MasterKeyError(str(exc)) from exc
    except OSError as exc:
        raise MasterKeyError(f"cannot read master key file {path}: {exc}") from exc
    return key_bytes


def derive_key(master: bytes, purpose: str, salt: bytes | None = None, length: int = 32) -> bytes:
    """HKDF-SHA256 sub-key of the master key for one ``purpose`` (e.g. ``samu.backup.v1``)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=purpose.encode()).derive(
        master
    )
