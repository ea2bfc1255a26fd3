"""The device registry: who may send, with which key, bound to which resident.

The centre makes the keys (``samu devices enrol``) and gives them to the devices, as in
provisioning; keys made elsewhere (the simulator's ``--keys-out``) can be imported.
Keys are sealed under the master key in ``devices.sealed_key``; re-enrolling a device
rotates its key (the old one is refused from then on). Every enrolment is audited, with
the key's version, never the key.

The key file format is the simulator's (``firmware_sim.KeyStore``)::

    {"keys": [{"site": "ehpad-a", "device": "spo2-01", "key": "<base64url>",
               "kind": "spo2", "patient": "res-01"}]}

(``kind`` and ``patient`` are optional: what the centre knows of the device.)
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from console.crypto import MasterKeyRing, write_private_file
from console.records import AuditContext, Store
from protocols import MIN_KEY_BYTES, KeyRing
from protocols.vocab import is_valid_id

KEY_BYTES = 32


class EnrolmentError(ValueError):
    """An enrolment request or key file is unusable (the message says why)."""


@dataclass(frozen=True)
class Sender:
    """A device (or gateway, transmitter, station) to enrol."""

    site: str
    device: str
    kind: str
    patient: str | None = None


@dataclass(frozen=True)
class DeviceInfo:
    """A device as ``samu devices list`` shows it (no key)."""

    site: str
    device: str
    kind: str
    patient: str | None
    state: str
    last_seen: str | None
    battery_pct: int | None
    frames: int
    errors: int
    quarantined: int
    key_version: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "device": self.device,
            "kind": self.kind,
            "patient": self.patient,
            "state": self.state,
            "last_seen": self.last_seen,
            "battery_pct": self.battery_pct,
            "frames": self.frames,
            "errors": self.errors,
            "quarantined": self.quarantined,
        }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _context(site: str, device: str, version: int) -> str:
    return f"devices\x00key\x00{site}/{device}\x00{version}"


def _check_sender(site: str, device: str, kind: str) -> None:
    for what, value in (("site", site), ("device", device)):
        if not is_valid_id(value):
            raise EnrolmentError(f"{what} {value!r}: ids are 1-64 characters of A-Z a-z 0-9 . _ -")
    if not kind or len(kind) > 64:
        raise EnrolmentError(f"kind {kind!r}: give the device kind (e.g. spo2, icd, gateway)")


def read_key_file(path: Path) -> list[tuple[Sender, bytes]]:
    """The senders and keys of a key file (see the module docstring).

    Raises:
        EnrolmentError: unreadable, not JSON, not the format, a bad id or a short key.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnrolmentError(f"{path}: no such key file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnrolmentError(f"{path}: not a key file ({exc})") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise EnrolmentError(f'{path}: not a key file (expected {{"keys": [...]}})')
    out: list[tuple[Sender, bytes]] = []
    for i, entry in enumerate(entries):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict):
            raise EnrolmentError(f"{where}: not an object")
        try:
            site, device, text = str(entry["site"]), str(entry["device"]), str(entry["key"])
        except KeyError as exc:
            raise EnrolmentError(f"{where}: missing {exc.args[0]!r}") from None
        try:
            key = _unb64(text)
        except ValueError:
            raise EnrolmentError(f"{where}: key is not base64url") from None
        if len(key) < MIN_KEY_BYTES:
            raise EnrolmentError(f"{where}: key of {len(key)} bytes (at least {MIN_KEY_BYTES})")
        kind = str(entry.get("kind") or "device")
        patient = entry.get("patient")
        sender = Sender(site, device, kind, str(patient) if patient else None)
        _check_sender(sender.site, sender.device, sender.kind)
        out.append((sender, key))
    return out


def write_key_file(path: Path, keys: Iterable[tuple[Sender, bytes]]) -> None:
    """Write keys for ``samu sim --keys`` (owner-only: these are secrets)."""
    data = {
        "keys": [
            {
                "site": s.site,
                "device": s.device,
                "key": _b64(key),
                "kind": s.kind,
                **({"patient": s.patient} if s.patient else {}),
            }
            for s, key in keys
        ]
    }
    write_private_file(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


class DeviceRegistry:
    """Enrolled devices and their keys, over the records store."""

    def __init__(self, store: Store, master_key: bytes | None) -> None:
        """``master_key`` None: listing only (``samu devices list`` needs no key)."""
        self._store = store
        self._master = master_key

    @property
    def _ring(self) -> MasterKeyRing:
        if self._master is None:
            raise EnrolmentError("the master key is needed to enrol or read device keys")
        return MasterKeyRing(self._master)

    def enrol(
        self,
        who: AuditContext,
        senders: Iterable[Sender | tuple[Sender, bytes]],
        *,
        now: datetime,
    ) -> list[tuple[Sender, bytes, int]]:
        """Enrol (or re-enrol: rotate) each sender; a fresh key unless one is given.

        One transaction for the lot, each enrolment audited in it. Returns
        ``(sender, key, key_version)`` for each, so the caller can hand the keys out.
        """
        ring = self._ring
        items: list[tuple[Sender, bytes]] = []
        for item in senders:
            sender, key = item if isinstance(item, tuple) else (item, secrets.token_bytes(32))
            _check_sender(sender.site, sender.device, sender.kind)
            items.append((sender, key))
        seen: set[tuple[str, str]] = set()
        for sender, _ in items:
            if (sender.site, sender.device) in seen:
                raise EnrolmentError(f"{sender.site}/{sender.device} is listed twice")
            seen.add((sender.site, sender.device))
        out: list[tuple[Sender, bytes, int]] = []
        stamp = now.isoformat()
        with self._store.transaction() as conn:
            for sender, key in items:
                row = conn.execute(
                    "SELECT key_version FROM devices WHERE site = ? AND device = ?",
                    (sender.site, sender.device),
                ).fetchone()
                version = 1 if row is None else int(row[0]) + 1
                sealed = ring.seal_secret(_context(sender.site, sender.device, version), key)
                conn.execute(
                    "INSERT INTO devices (site, device, kind, patient, key_version, sealed_key,"
                    " enrolled_at, enrolled_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (site, device) DO UPDATE SET kind = excluded.kind,"
                    " patient = excluded.patient, key_version = excluded.key_version,"
                    " sealed_key = excluded.sealed_key, enrolled_at = excluded.enrolled_at,"
                    " enrolled_by = excluded.enrolled_by",
                    (
                        sender.site,
                        sender.device,
                        sender.kind,
                        sender.patient,
                        version,
                        sealed,
                        stamp,
                        who.actor,
                    ),
                )
                self._store.append_audit(
                    who.event(
                        "device.rotate_key" if version > 1 else "device.enrol",
                        f"device:{sender.site}/{sender.device}",
                        detail={
                            "kind": sender.kind,
                            "patient": sender.patient,
                            "key_version": version,
                        },
                    ),
                    conn=conn,
                )
                out.append((sender, key, version))
        return out

    def keyring(self) -> KeyRing:
        """Every enrolled device's current key, for envelope verification."""
        master = self._ring
        ring = KeyRing()
        for site, device, version, sealed in self._store.fetchall(
            "SELECT site, device, key_version, sealed_key FROM devices"
        ):
            key = master.open_secret(_context(site, device, int(version)), bytes(sealed))
            ring.enroll(site, device, key, key_id=f"k{version}")
        return ring

    def key_of(self, site: str, device: str) -> bytes | None:
        """The current key of one enrolled sender (``None`` when not enrolled)."""
        row = self._store.fetchone(
            "SELECT key_version, sealed_key FROM devices WHERE site = ? AND device = ?",
            (site, device),
        )
        if row is None:
            return None
        return self._ring.open_secret(_context(site, device, int(row[0])), bytes(row[1]))

    def patient_of(self, site: str, device: str) -> str | None:
        row = self._store.fetchone(
            "SELECT patient FROM devices WHERE site = ? AND device = ?", (site, device)
        )
        return None if row is None else row[0]

    def list(self) -> list[DeviceInfo]:
        """Every device, by site then id."""
        rows = self._store.fetchall(
            "SELECT site, device, kind, patient, state, last_seen, battery_pct, frames,"
            " errors, quarantined, key_version FROM devices ORDER BY site, device"
        )
        return [
            DeviceInfo(
                site=r[0],
                device=r[1],
                kind=r[2],
                patient=r[3],
                state=r[4],
                last_seen=r[5],
                battery_pct=r[6],
                frames=int(r[7]),
                errors=int(r[8]),
                quarantined=int(r[9]),
                key_version=int(r[10]),
            )
            for r in rows
        ]
