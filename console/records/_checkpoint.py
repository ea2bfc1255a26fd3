"""Signed checkpoints: the installation key, the statement, and the outside copies.

A checkpoint is an Ed25519 signature by the *installation key* over a small statement:

.. code-block:: json

    {"chain_head": "<hex>", "format": "samu.audit.checkpoint.v1", "key_id": "<hex>",
     "log_id": "<hex>", "root": "<hex>", "time": "2025-06-01T12:00:00+00:00",
     "tree_size": 1234}

The signed bytes are that object in canonical JSON (sorted keys, ``,``/``:``
separators, UTF-8) — the same rule as the events, so an auditor needs one tool.
``root`` is the RFC 6962 Merkle tree hash of the first ``tree_size`` leaf hashes,
``chain_head`` the ``chain_hash`` of event ``tree_size`` (32 zero bytes for 0),
``key_id`` the first 16 hex digits of SHA-256(raw public key), ``log_id`` the random id
of this database's trail (table ``audit_log``).

Where the key lives: a PEM (PKCS#8) file, mode 0600, beside the database
(``<database file>.installation-key``) or wherever the ``installation_key_file`` setting
(``SAMU_INSTALLATION_KEY_FILE``) points
— never inside the database, because whoever can rewrite the file must not also be
able to re-sign it. Its public key is recorded in the database (``audit_keys``) and in
every outside checkpoint file.

Outside copies: each checkpoint is also written, after its transaction commits, as one
JSON file in the checkpoint directory (``--checkpoint-dir``, the ``checkpoint_dir`` setting, or
``<database file>.checkpoints/``), atomically (temporary file, fsync, rename, fsync of
the directory). Written *after* the commit so that a crash can only leave an outside
copy missing (harmless, rewritten at next start) and never one ahead of the log, which
verification would rightly call a roll-back. Restoring an old copy of the database
cannot touch these files: that is how a roll-back is caught.

The same document (:func:`outside_document_bytes`) is the payload of the retained MQTT
checkpoint when a broker is configured (``console.records._checkpoint_mqtt``), which
survives even a swap of the directory; :func:`parse_outside_document` reads both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from console.crypto import (
    PrivateFileError,
    check_private,
    fsync_dir,
    make_private_dir,
    write_private_file,
)
from console.records._errors import KeyFileError
from protocols import canonical_json

STATEMENT_FORMAT = "samu.audit.checkpoint.v1"
FILE_FORMAT = "samu.audit.checkpoint-file.v1"
ENDORSEMENT_PREFIX = b"samu.audit.key-endorsement.v1\n"

#: Outside files kept per directory; older ones are implied by the newest (the chain
#: fixes every prefix) and only help to date a divergence.
KEEP_OUTSIDE_FILES = 1000


def key_id_of(public_raw: bytes) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def installation_key_path(db_path: Path, explicit: Path | None = None) -> Path:
    """``explicit`` (the ``installation_key_file`` setting) or ``<db>.installation-key``."""
    if explicit is not None:
        return Path(explicit)
    return Path(f"{db_path}.installation-key")


def checkpoint_dir_for(db_path: Path, explicit: Path | None = None) -> Path:
    """``explicit`` (``--checkpoint-dir`` or the ``checkpoint_dir`` setting) or
    ``<db>.checkpoints/``."""
    if explicit is not None:
        return Path(explicit)
    return Path(f"{db_path}.checkpoints")


@dataclass(frozen=True)
class InstallationKey:
    """The Ed25519 key that signs this installation's checkpoints."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @classmethod
    def load(cls, path: Path) -> InstallationKey:
        """Read the key file; refuse a file readable by others."""
        try:
            check_private(path)
            pem = path.read_bytes()
        except PrivateFileError as exc:
            raise KeyFileError(str(exc)) from exc
        except FileNotFoundError as exc:
            raise KeyFileError(f"installation key file not found: {path}") from exc
        except OSError as exc:
            raise KeyFileError(f"cannot read installation key file {path}: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path} is not a PEM Ed25519 private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key, path)

    @classmethod
    def load_or_create(cls, path: Path) -> InstallationKey:
        """Load the key, creating a fresh one (mode 0600) on first use."""
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                write_private_file(path, pem)
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError as exc:
                raise KeyFileError(f"cannot create installation key file {path}: {exc}") from exc
            else:
                return cls(key, path)
        return cls.load(path)


def public_key_of_file(path: Path) -> bytes | None:
    """Raw public key of a readable key file, ``None`` when absent or unreadable."""
    try:
        return InstallationKey.load(path).public_raw
    except KeyFileError:
        return None


def verify_signature(public_raw: bytes, data: bytes, signature: bytes) -> bool:
    """Ed25519 verification that never raises on malformed input."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """The signed bytes of a statement: protocols' canonical JSON (one rule everywhere)."""
    return canonical_json(obj)


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement about the trail at ``tree_size`` events."""

    tree_size: int
    root: bytes
    chain_head: bytes
    time: str
    key_id: str
    log_id: str
    signature: bytes
    public_key: bytes = b""

    def statement(self) -> dict[str, Any]:
        return {
            "chain_head": self.chain_head.hex(),
            "format": STATEMENT_FORMAT,
            "key_id": self.key_id,
            "log_id": self.log_id,
            "root": self.root.hex(),
            "time": self.time,
            "tree_size": self.tree_size,
        }

    def statement_bytes(self) -> bytes:
        """The exact bytes signed."""
        return canonical_bytes(self.statement())

    def file_name(self) -> str:
        stamp = "".join(ch for ch in self.time if ch.isdigit())[:20]
        return f"checkpoint-{self.tree_size:012d}-{stamp}-{self.signature.hex()[:8]}.json"

    def to_file_json(self) -> dict[str, Any]:
        return {
            "format": FILE_FORMAT,
            "statement": self.statement(),
            "signature": self.signature.hex(),
            "public_key": self.public_key.hex(),
        }

    @classmethod
    def sign(
        cls,
        key: InstallationKey,
        *,
        tree_size: int,
        root: bytes,
        chain_head: bytes,
        time: str,
        log_id: str,
    ) -> Checkpoint:
        unsigned = cls(tree_size, root, chain_head, time, key.key_id, log_id, b"", key.public_raw)
        signature = key.sign(unsigned.statement_bytes())
        return cls(tree_size, root, chain_head, time, key.key_id, log_id, signature, key.public_raw)

    @classmethod
    def from_statement(
        cls, statement: dict[str, Any], signature: bytes, public_key: bytes = b""
    ) -> Checkpoint:
        """Parse a statement; raises ``ValueError`` on anything malformed."""
        if statement.get("format") != STATEMENT_FORMAT:
            raise ValueError(f"unknown checkpoint format {statement.get('format')!r}")
        expected = {"chain_head", "format", "key_id", "log_id", "root", "time", "tree_size"}
        if set(statement) != expected:
            raise ValueError("checkpoint statement fields differ from the format")
        size = statement["tree_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("tree_size is not a non-negative integer")
        root = bytes.fromhex(statement["root"])
        head = bytes.fromhex(statement["chain_head"])
        if len(root) != 32 or len(head) != 32:
            raise ValueError("root and chain_head must be 32-byte hex")
        for name in ("key_id", "log_id", "time"):
            if not isinstance(statement[name], str):
                raise ValueError(f"{name} is not a string")
        return cls(
            size,
            root,
            head,
            statement["time"],
            statement["key_id"],
            statement["log_id"],
            signature,
            public_key,
        )


def write_outside(directory: Path, checkpoint: Checkpoint, keep: int = KEEP_OUTSIDE_FILES) -> Path:
    """Write one outside checkpoint file atomically; prune the oldest beyond ``keep``."""
    make_private_dir(directory)
    final = directory / checkpoint.file_name()
    tmp = directory / f".{final.name}.tmp"
    data = json.dumps(checkpoint.to_file_json(), indent=2, sort_keys=True).encode() + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_dir(directory)
    if keep > 0:
        files = sorted(directory.glob("checkpoint-*.json"))
        for old in files[: max(0, len(files) - keep)]:
            with contextlib.suppress(OSError):
                old.unlink()
    return final


@dataclass(frozen=True)
class OutsideFile:
    """One file of the checkpoint directory: a parsed checkpoint or why it is unreadable."""

    path: Path
    checkpoint: Checkpoint | None
    error: str | None = None


def read_outside(directory: Path) -> list[OutsideFile]:
    """Every ``*.json`` file of ``directory`` (dot-files are unfinished writes: skipped)."""
    if not directory.is_dir():
        return []
    out: list[OutsideFile] = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        # A file that vanished since the listing was pruned by a live writer (it keeps the
        # newest outside files): that is not a forgery, and a live system verifies clean.
        try:
            kind = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(kind):  # a FIFO would block the read, a directory cannot be read
            out.append(OutsideFile(path, None, "not a regular file"))
            continue
        try:
            checkpoint = parse_outside_document(path.read_bytes())
        except FileNotFoundError:
            continue
        except OSError as exc:
            out.append(OutsideFile(path, None, f"{type(exc).__name__}: {exc}"))
            continue
        except ValueError as exc:
            out.append(OutsideFile(path, None, str(exc)))
            continue
        out.append(OutsideFile(path, checkpoint))
    return out


def outside_document_bytes(checkpoint: Checkpoint) -> bytes:
    """The outside-file document (:meth:`Checkpoint.to_file_json`) as compact canonical
    JSON: what the MQTT retained topic carries (same fields as the files)."""
    return canonical_bytes(checkpoint.to_file_json())


def parse_outside_document(data: bytes) -> Checkpoint:
    """Parse an outside checkpoint document (a file's bytes or an MQTT payload).

    The signature is *not* checked here (the caller knows the trusted keys).

    Raises:
        ValueError: anything malformed, with ``"<ExceptionType>: <reason>"`` as message.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise ValueError("not a samu checkpoint file")
        statement = doc["statement"]
        if not isinstance(statement, dict):
            raise ValueError("statement is not an object")
        return Checkpoint.from_statement(
            statement,
            bytes.fromhex(doc["signature"]),
            bytes.fromhex(doc.get("public_key", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def trusted_keys(rows: Sequence[tuple[Any, ...]]) -> dict[str, bytes]:
    """key_id -> public key for the anchor (first row) and every properly endorsed key.

    ``rows`` are ``(key_id, public_key, endorsement)`` in insertion order. A later key
    is trusted only if an already trusted key signed ``ENDORSEMENT_PREFIX || key_id ||
    public_key``: whoever edits the table cannot add a key of their own. A row whose key
    or endorsement is not a BLOB (a table rebuilt without its constraints) is not trusted.
    """
    trusted: dict[str, bytes] = {}
    for index, (key_id, public, endorsement) in enumerate(rows):
        if type(public) is not bytes or len(public) != 32:
            continue
        if index == 0:
            trusted[str(key_id)] = public
            continue
        if type(endorsement) is not bytes:
            continue
        message = ENDORSEMENT_PREFIX + str(key_id).encode() + public
        if any(verify_signature(k, message, endorsement) for k in trusted.values()):
            trusted[str(key_id)] = public
    return trusted
