"""Sender keys for simulated devices: derived from a secret, exported for enrolment.

Each (site, device) signs with its own HMAC key, as protocols.KeyRing expects. The
simulator derives them with HKDF-SHA256 (``cryptography``) from one secret — random by
default, or from the seed with ``--seed`` so a replay produces byte-identical envelopes —
and can write them to a JSON file the console enrols from::

    {"keys": [{"site": "ehpad-a", "device": "spo2-01", "key": "<base64url>"}]}

Keys derived from a seed are for simulation only: anyone who knows the seed has them.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyStore:
    """Keys by (site, device), derived on first use from ``secret``."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else os.urandom(32)
        self._keys: dict[tuple[str, str], bytes] = {}

    @classmethod
    def from_seed(cls, seed: int) -> KeyStore:
        """Reproducible keys (simulation only: the seed is not a secret)."""
        return cls(b"samu-sim-seed:" + str(seed).encode())

    def key(self, site: str, device: str) -> bytes:
        """The key of ``site``/``device`` (derived and remembered on first use)."""
        found = self._keys.get((site, device))
        if found is None:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_BYTES,
                salt=b"samu-firmware-sim/v1",
                info=f"{site}/{device}".encode(),
            )
            found = hkdf.derive(self._secret)
            self._keys[(site, device)] = found
        return found

    def set(self, site: str, device: str, key: bytes) -> None:
        self._keys[(site, device)] = bytes(key)

    def items(self) -> list[tuple[str, str, bytes]]:
        return [(s, d, k) for (s, d), k in sorted(self._keys.items())]

    def as_mapping(self) -> dict[tuple[str, str], bytes]:
        """For ``protocols.KeyRing(keys)``."""
        return dict(self._keys)

    def dump(self, path: Path) -> None:
        """Write every key used so far (mode 0600: these are secrets)."""
        data = {"keys": [{"site": s, "device": d, "key": _b64(k)} for s, d, k in self.items()]}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")

    def load(self, path: Path) -> None:
        """Use the keys in ``path`` (an enrolment export) instead of derived ones.

        Raises:
            ValueError: the file is not a key file.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for entry in data["keys"]:
                self.set(str(entry["site"]), str(entry["device"]), _unb64(str(entry["key"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a key file ({exc})") from None
