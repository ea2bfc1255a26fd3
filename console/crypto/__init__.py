"""Key cryptography shared by records, accounts and identities, with no database of its own.

A neutral layer under ``console.records``, ``console.auth`` and ``console.identity`` so
none of them reaches into another's private modules for a key:

* the installation **master key** (:func:`load_master_key`) and HKDF sub-keys
  (:func:`derive_key`);
* **field encryption** under per-patient data keys, the blind index and the master-key
  check (:class:`MasterKeyRing`, :func:`seal_field`, :func:`open_field`);
* users' **Ed25519 signing keys**, sealed under their password, and offline-verifiable
  signed records (:func:`generate_user_key`, :func:`signed_content`,
  :func:`make_bundle`, :func:`verify_bundle`);
* **private files**: owner-only creation whatever the umask (:func:`write_private_file`,
  :func:`make_private_dir`, :func:`check_private`).

Everything comes from ``cryptography`` and ``argon2-cffi``; nothing here invents a
primitive. Names load on first use (PEP 562), so ``samu audit verify`` pays for the file
helpers only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.crypto._fields import (
        Cell,
        CryptoError,
        DecryptionError,
        MasterKeyRing,
        PatientShreddedError,
        WrongMasterKeyError,
        ensure_master_key,
        field_key_version,
        normalise_name,
        open_field,
        seal_field,
    )
    from console.crypto._files import (
        PrivateFileError,
        check_private,
        fsync_dir,
        make_private_dir,
        write_private_file,
    )
    from console.crypto._master import (
        MasterKeyError,
        derive_key,
        load_master_key,
        master_key_path,
    )
    from console.crypto._signing import (
        RECORD_KINDS,
        SIGNATURE_ALG,
        KeyUnlockError,
        NewKey,
        decrypt_private_key,
        encrypt_private_key,
        generate_user_key,
        key_id_of,
        make_bundle,
        raw_public,
        sign,
        signed_content,
        verify,
        verify_bundle,
    )

_MODULES = {
    "console.crypto._fields": (
        "Cell",
        "CryptoError",
        "DecryptionError",
        "MasterKeyRing",
        "PatientShreddedError",
        "WrongMasterKeyError",
        "ensure_master_key",
        "field_key_version",
        "normalise_name",
        "open_field",
        "seal_field",
    ),
    "console.crypto._files": (
        "PrivateFileError",
        "check_private",
        "fsync_dir",
        "make_private_dir",
        "write_private_file",
    ),
    "console.crypto._master": (
        "MasterKeyError",
        "derive_key",
        "load_master_key",
        "master_key_path",
    ),
    "console.crypto._signing": (
        "RECORD_KINDS",
        "SIGNATURE_ALG",
        "KeyUnlockError",
        "NewKey",
        "decrypt_private_key",
        "encrypt_private_key",
        "generate_user_key",
        "key_id_of",
        "make_bundle",
        "raw_public",
        "sign",
        "signed_content",
        "verify",
        "verify_bundle",
    ),
}
_EXPORTS: dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "RECORD_KINDS",
    "SIGNATURE_ALG",
    "Cell",
    "CryptoError",
    "DecryptionError",
    "KeyUnlockError",
    "MasterKeyError",
    "MasterKeyRing",
    "NewKey",
    "PatientShreddedError",
    "PrivateFileError",
    "WrongMasterKeyError",
    "check_private",
    "decrypt_private_key",
    "derive_key",
    "encrypt_private_key",
    "ensure_master_key",
    "field_key_version",
    "fsync_dir",
    "generate_user_key",
    "key_id_of",
    "load_master_key",
    "make_bundle",
    "make_private_dir",
    "master_key_path",
    "normalise_name",
    "open_field",
    "raw_public",
    "seal_field",
    "sign",
    "signed_content",
    "verify",
    "verify_bundle",
    "write_private_file",
]
