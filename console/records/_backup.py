"""``samu backup create|verify|restore``: online backups as encrypted, manifested archives.

A backup is one directory ``samu-backup-<UTC time>/`` holding:

* ``database.sqlite.enc`` — a consistent copy made with SQLite's online backup API
  (the store keeps running), encrypted with AES-256-GCM;
* ``installation-key.pem.enc`` — the checkpoint signing key, encrypted the same way, so
  a restored trail can go on being checkpointed by the key its checkpoints name;
* ``manifest.json`` — format, backup id, time, the trail's size and chain head at backup
  time, the KDF salt, and per file its size, SHA-256 (of the encrypted bytes, checkable
  without any key), nonce and the SHA-256 of the plaintext; authenticated with an
  HMAC-SHA256 under a key derived from the master key.

Keys: ``HKDF-SHA256(master key, salt=<per-backup random>, info="samu.backup.v1")`` for
encryption, ``info="samu.backup.manifest.v1"`` for the manifest MAC; the AAD of each
file binds it to the backup id and its name, so files cannot be swapped between
backups. The master key is *not* in the backup: it must be kept separately (see
``docs/backups.md``) — a backup plus its key in the same place protects nothing.

The directory is assembled under a dot-name and renamed when complete, so a crash never
leaves something that looks like a finished backup. Plaintext never touches the
destination: the online copy is made in a private (0700) temporary directory beside the
database and removed afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from console.crypto import (
    MasterKeyRing,
    derive_key,
    fsync_dir,
    make_private_dir,
    write_private_file,
)
from console.records._audit import AuditContext, last_position
from console.records._checkpoint import checkpoint_dir_for, installation_key_path
from console.records._errors import StoreError
from console.records._store import Store
from protocols import canonical_json

FORMAT = "samu.backup.v1"
DB_FILE = "database.sqlite"
KEY_FILE = "installation-key.pem"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class BackupError(StoreError):
    """A backup cannot be created, does not verify, or cannot be restored."""


@dataclass
class BackupCheck:
    """Result of verifying a backup directory."""

    path: Path
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.ok:
            src = self.manifest.get("source", {})
            return (
                f"backup ok: {self.path} ({src.get('events', '?')} audit events, "
                f"id {self.manifest.get('backup_id')})"
            )
        return f"backup damaged: {self.path}: " + "; ".join(self.problems)


def _keys(master: bytes, salt: bytes) -> tuple[bytes, bytes]:
    return (
        derive_key(master, "samu.backup.v1", salt),
        derive_key(master, "samu.backup.manifest.v1", salt),
    )


def _aad(backup_id: str, name: str) -> bytes:
    return f"{FORMAT}|{backup_id}|{name}".encode()


def _mac(manifest: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "mac"}
    data = canonical_json(body)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _encrypt_file(src: Path, dst: Path, key: bytes, aad: bytes) -> dict[str, Any]:
    nonce = os.urandom(12)
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    plain_size = 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # the umask cannot widen it
    with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            plain_hash.update(chunk)
            plain_size += len(chunk)
            out = encryptor.update(chunk)
            cipher_hash.update(out)
            fout.write(out)
        tail = encryptor.finalize() + encryptor.tag
        cipher_hash.update(tail)
        fout.write(tail)
        fout.flush()
        os.fsync(fout.fileno())
    return {
        "name": dst.name,
        "plaintext": src.name,
        "size": dst.stat().st_size,
        "sha256": cipher_hash.hexdigest(),
        "nonce": nonce.hex(),
        "plaintext_size": plain_size,
        "plaintext_sha256": plain_hash.hexdigest(),
    }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _decrypt_file(src: Path, out: BinaryIO, key: bytes, nonce: bytes, aad: bytes) -> str:
    """Decrypt ``src`` into ``out``; returns the plaintext SHA-256. Raises InvalidTag."""
    size = src.stat().st_size
    if size < 16:
        raise InvalidTag()
    with src.open("rb") as fin:
        fin.seek(size - 16)
        tag = fin.read(16)
        fin.seek(0)
        decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        remaining = size - 16
        digest = hashlib.sha256()
        while remaining:
            chunk = fin.read(min(_CHUNK, remaining))
            if not chunk:
                raise InvalidTag()
            remaining -= len(chunk)
            plain = decryptor.update(chunk)
            digest.update(plain)
            out.write(plain)
        last = decryptor.finalize()
        digest.update(last)
        out.write(last)
    return digest.hexdigest()


def create_backup(store: Store, to_dir: Path, master_key: bytes, who: AuditContext) -> Path:
    """Write an encrypted backup of ``store`` under ``to_dir``; return its directory.

    The backup is audited *before* the copy (``backup.create``) and checkpointed, so the
    copy holds the record of its own making and a signed statement covering it.
    """
    to_dir = Path(to_dir)
    if to_dir.exists() and not to_dir.is_dir():
        raise BackupError(f"{to_dir} exists and is not a directory")
    try:
        make_private_dir(to_dir)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise BackupError(f"cannot create {to_dir}: {exc}") from None
    backup_id = uuid.uuid4().hex
    created = datetime.now(UTC)
    stamp = created.strftime("%Y%m%dT%H%M%SZ")
    final = to_dir / f"samu-backup-{stamp}-{backup_id[:8]}"
    partial = to_dir / f".{final.name}.partial"
    store.append_audit(who.event("backup.create", f"backup:{backup_id}", detail={"to": final.name}))
    store.checkpoint(force=False)
    salt = os.urandom(16)
    enc_key, mac_key = _keys(master_key, salt)
    work = Path(tempfile.mkdtemp(prefix=".samu-backup-", dir=store.path.parent))
    try:
        os.chmod(work, 0o700)
        plain_db = work / DB_FILE
        store.backup_to(plain_db)
        with contextlib.closing(sqlite3.connect(plain_db)) as copy:
            copy.execute("PRAGMA journal_mode = DELETE")
            size, head = last_position(copy)
            checkpoints = copy.execute("SELECT count(*) FROM audit_checkpoints").fetchone()[0]
        make_private_dir(partial)
        files = [
            _encrypt_file(plain_db, partial / f"{DB_FILE}.enc", enc_key, _aad(backup_id, DB_FILE))
        ]
        key_path = installation_key_path(store.path)
        if key_path.exists():
            shutil.copyfile(key_path, work / KEY_FILE)
            files.append(
                _encrypt_file(
                    work / KEY_FILE, partial / f"{KEY_FILE}.enc", enc_key, _aad(backup_id, KEY_FILE)
                )
            )
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "backup_id": backup_id,
            "created": created.isoformat(timespec="seconds"),
            "source": {
                "db": store.path.name,
                "master_key_id": MasterKeyRing(master_key).key_id,
                "log_id": store.log_id,
                "events": size,
                "chain_head": head.hex(),
                "checkpoints": checkpoints,
            },
            "cipher": "AES-256-GCM (ciphertext || 16-byte tag)",
            "kdf": {"algorithm": "HKDF-SHA256", "salt": salt.hex(), "info": "samu.backup.v1"},
            "files": files,
        }
        manifest["mac"] = _mac(manifest, mac_key)
        write_private_file(
            partial / MANIFEST,
            (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        )
        with (partial / MANIFEST).open("rb") as fh:
            os.fsync(fh.fileno())
        fsync_dir(partial)
        os.rename(partial, final)
        fsync_dir(to_dir)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        with contextlib.suppress(StoreError, sqlite3.Error):
            store.append_audit(
                who.event(
                    "backup.create",
                    f"backup:{backup_id}",
                    outcome="failure",
                    detail={"error": type(exc).__name__},
                )
            )
        if isinstance(exc, OSError | sqlite3.Error):
            raise BackupError(f"backup failed: {exc}") from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _read_manifest(path: Path, master_key: bytes) -> tuple[dict[str, Any], bytes]:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{path}: no {MANIFEST} (not a samu backup directory)") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}/{MANIFEST} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format")
    try:
        salt = bytes.fromhex(manifest["kdf"]["salt"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"{path}: manifest has no usable KDF salt") from exc
    enc_key, mac_key = _keys(master_key, salt)
    source = manifest.get("source")
    source = source if isinstance(source, dict) else {}
    wanted, made_from = source.get("master_key_id"), source.get("db", "its database")
    given = MasterKeyRing(master_key).key_id
    if isinstance(wanted, str) and wanted != given:
        # Said before the MAC check (which would only say "authentication failed"): the
        # id is a fingerprint, not a secret, and names the key to look for.
        raise BackupError(
            f"{path}: this backup needs master key {wanted} (of {made_from}), the key "
            f"given is {given}: point SAMU_MASTER_KEY_FILE at {made_from}.key"
        )
    if not hmac.compare_digest(str(manifest.get("mac", "")), _mac(manifest, mac_key)):
        raise BackupError(
            f"{path}: manifest authentication failed (wrong master key, or the manifest "
            "was altered)"
        )
    return manifest, enc_key


def _check_into(path: Path, master_key: bytes, work: Path) -> tuple[BackupCheck, dict[str, Path]]:
    """Verify every file, decrypting into ``work``; return the check and plaintext paths."""
    check = BackupCheck(path, ok=False)
    try:
        manifest, enc_key = _read_manifest(path, master_key)
    except BackupError as exc:
        check.problems.append(str(exc))
        return check, {}
    check.manifest = manifest
    plain: dict[str, Path] = {}
    backup_id = str(manifest.get("backup_id"))
    for entry in manifest.get("files", []):
        name = str(entry.get("name", ""))
        src = path / name
        if "/" in name or not name or not src.is_file():
            check.problems.append(f"{name or '?'}: missing")
            continue
        if src.stat().st_size != entry.get("size") or _sha256_file(src) != entry.get("sha256"):
            check.problems.append(f"{name}: size or SHA-256 differs from the manifest")
            continue
        target = work / str(entry.get("plaintext"))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # health data: owner-only, whatever the umask
            with os.fdopen(fd, "wb") as out:
                digest = _decrypt_file(
                    src,
                    out,
                    enc_key,
                    bytes.fromhex(entry["nonce"]),
                    _aad(backup_id, str(entry.get("plaintext"))),
                )
        except (InvalidTag, KeyError, ValueError):
            check.problems.append(f"{name}: decryption failed (tampered or wrong key)")
            continue
        if digest != entry.get("plaintext_sha256"):
            check.problems.append(f"{name}: plaintext SHA-256 differs from the manifest")
            continue
        plain[str(entry.get("plaintext"))] = target
    if DB_FILE not in plain and not check.problems:
        check.problems.append(f"{DB_FILE}: not in the backup")
    if DB_FILE in plain:
        from console.records._verify import verify_trail

        report = verify_trail(plain[DB_FILE], work / "no-outside-checkpoints", workers=1)
        if report.status != "intact":
            check.problems.append(f"audit trail in the backup: {report.verdict()}")
        elif report.events != manifest.get("source", {}).get("events"):
            check.problems.append("audit trail size differs from the manifest")
    check.ok = not check.problems
    return check, plain


def verify_backup(path: Path, master_key: bytes) -> BackupCheck:
    """Check manifest MAC, file hashes, decryption, and the copied audit trail."""
    path = Path(path)
    if not path.is_dir():
        raise BackupError(f"not a backup directory: {path}")
    with tempfile.TemporaryDirectory(prefix=".samu-verify-") as tmp:
        os.chmod(tmp, 0o700)
        check, _ = _check_into(path, master_key, Path(tmp))
    return check


def restore_backup(
    path: Path, target: Path, master_key: bytes, who: AuditContext, *, force: bool = False
) -> tuple[BackupCheck, list[str]]:
    """Verify then restore ``path`` to the database file ``target``.

    Refuses an existing ``target`` unless ``force``; even then the current file is kept
    beside it (``<db>.pre-restore-<time>``), never deleted. The outside checkpoint
    directory of ``target``, which would (rightly) call the restored copy a roll-back,
    is set aside as ``<dir>.superseded-<time>`` and the restore itself is audited in
    the restored trail. Returns the check and what was moved aside.
    """
    path, target = Path(path), Path(target)
    if not path.is_dir():
        raise BackupError(f"not a backup directory: {path}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; add --force to replace it (it is kept aside)")
    target.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[str] = []
    work = Path(tempfile.mkdtemp(prefix=".samu-restore-", dir=target.parent))
    try:
        os.chmod(work, 0o700)
        check, plain = _check_into(path, master_key, work)
        if not check.ok:
            raise BackupError(check.summary())
        if target.exists():
            _quiesce(target)
            aside = target.with_name(f"{target.name}.pre-restore-{stamp}")
            os.replace(target, aside)
            moved.append(str(aside))
        os.chmod(plain[DB_FILE], 0o600)  # the restored database is owner-only, as the original
        os.replace(plain[DB_FILE], target)
        fsync_dir(target.parent)
        key_path = installation_key_path(target)
        if KEY_FILE in plain:
            data = plain[KEY_FILE].read_bytes()
            if key_path.exists() and key_path.read_bytes() != data:
                aside = key_path.with_name(f"{key_path.name}.pre-restore-{stamp}")
                os.replace(key_path, aside)
                moved.append(str(aside))
            if not key_path.exists():
                write_private_file(key_path, data)
        outside = checkpoint_dir_for(target)
        if outside.is_dir() and any(outside.iterdir()):
            aside = outside.with_name(f"{outside.name}.superseded-{stamp}")
            os.replace(outside, aside)
            moved.append(str(aside))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with Store.open(target) as store:
        store.append_audit(
            who.event(
                "backup.restore",
                f"backup:{check.manifest.get('backup_id')}",
                detail={
                    "events": check.manifest.get("source", {}).get("events"),
                    "set_aside": len(moved),
                },
            )
        )
    return check, moved


def _quiesce(db: Path) -> None:
    """Make sure nobody uses ``db`` and its WAL is folded in before moving it."""
    conn = sqlite3.connect(db, timeout=0.5, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise BackupError(f"{db} is in use (stop the hub/consoles first): {exc}") from exc
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        side = Path(f"{db}{suffix}")
        if side.exists() and side.stat().st_size == 0:
            with contextlib.suppress(OSError):
                side.unlink()
