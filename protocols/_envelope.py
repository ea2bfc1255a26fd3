"""Envelope authentication and parsing: size, JSON, MAC, schema (protocols.md §2).

Receiving side, in this order (each failure has a short reason code the ingest
quarantines the message with):

1. ``oversize`` — more than 64 KiB (65 536 bytes) of UTF-8: refused before parsing, so a
   flood of huge messages costs nothing but the read.
2. ``json`` — not UTF-8, not JSON, NaN/Infinity, a number that overflows a double,
   duplicate keys (two parsers could disagree on which value was signed), or a top level
   that is not an object.
3. ``unknown-sender`` / ``mac`` — authentication, *before* the schema: an unauthenticated
   message's content is not worth validating, and its reason should say so.
4. ``schema`` — the body (or envelope) does not validate.

The MAC is verified over the *received* JSON as parsed (canonicalised with
:func:`canonical_json`), never over a re-serialisation of the pydantic model, which could
differ (float formatting, defaults, timestamp precision) and would either reject good
messages or, worse, accept what the sender did not sign.

**Padding.** The MAC is written base64url *without* ``=`` padding (43 characters), as
JOSE/JWS do (RFC 7515 §2): the length is fixed, so padding carries no information, and
``=`` is awkward in URLs and logs. Verification also accepts the padded 44-character form
because some libraries cannot omit it; both decode to the same 32 bytes and the
comparison is on the canonical unpadded text, so no other spelling (wrong trailing bits,
``+``/``/``) is accepted.

**Keys** are per (site, device) and held by :class:`KeyRing`. During a rotation a device
has a current and a previous key and either verifies, until the previous one is retired
(explicitly, or when its window ends via :meth:`KeyRing.retire_expired`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from protocols._canonical import CanonicalJsonError, canonical_json
from protocols.models import Envelope
from protocols.vocab import is_valid_id

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MIN_KEY_BYTES",
    "DeviceKey",
    "EnvelopeError",
    "KeyRing",
    "MacError",
    "Reason",
    "compute_mac",
    "decode_envelope_json",
    "encode_envelope",
    "open_envelope",
    "parse_envelope",
    "seal_envelope",
    "sign_envelope",
    "verify_envelope",
]

MAX_ENVELOPE_BYTES: Final = 64 * 1024
"""Largest accepted envelope, in bytes of UTF-8 (64 KiB)."""

MIN_KEY_BYTES: Final = 16
"""Shortest key a :class:`KeyRing` enrols: 128 bits, the floor for HMAC-SHA256 keys
(NIST SP 800-107: security is min(key length, 256) bits). Enrolment should use 32."""

Reason = Literal["oversize", "json", "schema", "mac", "unknown-sender"]


class EnvelopeError(ValueError):
    """A received envelope is refused.

    Attributes:
        reason: short code for the quarantine (``oversize``, ``json``, ``schema``,
            ``mac``, ``unknown-sender``).
        detail: human-readable explanation (never contains key material).
    """

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason
        self.detail = detail


class MacError(EnvelopeError):
    """Authentication failed: ``unknown-sender`` (no key for site/device) or ``mac``."""


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """One enrolled key.

    Attributes:
        key_id: the key's id (``[A-Za-z0-9._-]{1,64}``), for audit and rotation.
        key: the secret (never shown by ``repr``).
        retire_after: for a previous key in a rotation window, when the window ends.
    """

    key_id: str
    key: bytes = field(repr=False)
    retire_after: datetime | None = None


def _check_sender(site: str, device: str) -> None:
    if not is_valid_id(site) or not is_valid_id(device):
        raise ValueError(f"site and device must match [A-Za-z0-9._-]{{1,64}}: {site!r}/{device!r}")


def _check_key(key: bytes, key_id: str) -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError("a key is bytes")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key {key_id!r} is {len(key)} bytes; at least {MIN_KEY_BYTES} needed")
    if not is_valid_id(key_id):
        raise ValueError(f"key id must match [A-Za-z0-9._-]{{1,64}}: {key_id!r}")


class KeyRing:
    """The enrolled keys of every sender, by (site, device).

    Each sender has one current key and, during a rotation, one previous key; both
    verify until the previous one is retired. Reads are lock-free: each sender's keys
    are an immutable tuple replaced in one assignment, so a verifier thread sees either
    the old or the new set, never half of one.

    Args:
        keys: initial keys, ``{(site, device): key}``, each enrolled with key id ``k1``.
    """

    def __init__(self, keys: Mapping[tuple[str, str], bytes] | None = None) -> None:
        self._keys: dict[tuple[str, str], tuple[DeviceKey, ...]] = {}
        for (site, device), key in (keys or {}).items():
            self.enroll(site, device, key)

    def enroll(self, site: str, device: str, key: bytes, *, key_id: str = "k1") -> None:
        """Enrol (or re-enrol) a sender with a single current key.

        Re-enrolment replaces every key the sender had, including one in a rotation
        window: it is what to do after a device was lost or its key leaked.
        """
        _check_sender(site, device)
        _check_key(key, key_id)
        self._keys[(site, device)] = (DeviceKey(key_id, bytes(key)),)

    def rotate(
        self,
        site: str,
        device: str,
        key: bytes,
        *,
        key_id: str,
        retire_after: datetime | None = None,
    ) -> None:
        """Make ``key`` current; the current key becomes the previous one.

        Args:
            site: the sender's site.
            device: the sender's device.
            key: the new key.
            key_id: the new key's id (must differ from the current one).
            retire_after: end of the rotation window for the previous key (applied by
                :meth:`retire_expired`); ``None`` keeps it until :meth:`retire`.

        Raises:
            KeyError: the sender is not enrolled.
            ValueError: bad key or key id, or the id is the current key's.
        """
        _check_key(key, key_id)
        current = self._keys[(site, device)][0]
        if current.key_id == key_id:
            raise ValueError(f"key id {key_id!r} is already the current key")
        previous = DeviceKey(current.key_id, current.key, retire_after)
        self._keys[(site, device)] = (DeviceKey(key_id, bytes(key)), previous)

    def retire(self, site: str, device: str) -> str | None:
        """End the rotation window: drop the previous key. Returns its id, if any."""
        keys = self._keys[(site, device)]
        if len(keys) < 2:
            return None
        self._keys[(site, device)] = keys[:1]
        return keys[1].key_id

    def retire_expired(self, now: datetime) -> list[tuple[str, str, str]]:
        """Retire every previous key whose ``retire_after`` is not after ``now``.

        Returns:
            ``(site, device, key_id)`` of each retired key, for the audit trail.
        """
        retired: list[tuple[str, str, str]] = []
        for sender, keys in list(self._keys.items()):
            if len(keys) == 2 and keys[1].retire_after is not None and keys[1].retire_after <= now:
                self._keys[sender] = keys[:1]
                retired.append((sender[0], sender[1], keys[1].key_id))
        return retired

    def revoke(self, site: str, device: str) -> bool:
        """Forget a sender entirely; its messages become ``unknown-sender``."""
        return self._keys.pop((site, device), None) is not None

    def keys_for(self, site: str, device: str) -> tuple[DeviceKey, ...]:
        """The sender's keys, current first; empty when unknown."""
        return self._keys.get((site, device), ())

    def current_key(self, site: str, device: str) -> DeviceKey:
        """The key a sender signs with. Raises ``KeyError`` when not enrolled."""
        return self._keys[(site, device)][0]

    def match(self, site: str, device: str, message: bytes, mac: str) -> str | None:
        """Id of the sender's key under which ``mac`` authenticates ``message``, or None."""
        received = _normalise_mac(mac)
        if received is None:
            return None
        for k in self.keys_for(site, device):
            if hmac.compare_digest(compute_mac(message, k.key).encode("ascii"), received):
                return k.key_id
        return None

    def __contains__(self, sender: object) -> bool:
        return sender in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._keys))

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} senders)"


# --------------------------------------------------------------------------------------
# MAC
# --------------------------------------------------------------------------------------


def compute_mac(message: bytes, key: bytes) -> str:
    """Base64url (unpadded) HMAC-SHA256 of ``message`` under ``key``."""
    digest = hmac.digest(key, message, hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _normalise_mac(mac: str) -> bytes | None:
    """The unpadded text of a received MAC, or None when it cannot be one."""
    if not isinstance(mac, str) or not mac.isascii():
        return None
    if len(mac) == 44 and mac.endswith("="):
        mac = mac[:-1]
    return mac.encode("ascii") if len(mac) == 43 else None


def _unsigned(envelope: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in envelope.items() if k != "mac"}


def _require_object(envelope: object) -> None:
    """Refuse, with the module's own error, what cannot be an envelope at all.

    The wire path can only produce a dict (:func:`decode_envelope_json` refuses any
    other top level); the public functions taking JSON data say the same thing about a
    list, a string, ``None`` or undecoded bytes instead of failing on ``.get``.
    """
    if not isinstance(envelope, Mapping):
        hint = (
            " (parse received bytes with open_envelope or decode_envelope_json)"
            if isinstance(envelope, bytes | bytearray | memoryview | str)
            else ""
        )
        raise EnvelopeError(
            "json", f"an envelope is a JSON object, got {type(envelope).__name__}{hint}"
        )


def _canonical(data: Mapping[str, Any]) -> bytes:
    try:
        return canonical_json(data)
    except CanonicalJsonError as exc:  # NaN, a non-JSON value, nesting too deep
        raise EnvelopeError("json", str(exc)) from exc


def sign_envelope(envelope_without_mac: Mapping[str, Any] | Envelope, key: bytes) -> dict[str, Any]:
    """Return the envelope as JSON data with its ``mac``.

    A dict is signed as given (not validated: the simulator must be able to sign a
    deliberately malformed body to test the receiver's schema checks); an existing
    ``mac`` is replaced. An :class:`Envelope` is first turned into JSON data with
    :meth:`Envelope.to_wire`.

    Raises:
        ValueError: empty key; :class:`EnvelopeError` ``json`` (a ``ValueError`` too) when
            the envelope is not an object or has no canonical JSON form.
    """
    if not key:
        raise ValueError("empty key")
    if not isinstance(envelope_without_mac, Envelope):
        _require_object(envelope_without_mac)
    data = (
        envelope_without_mac.to_wire()
        if isinstance(envelope_without_mac, Envelope)
        else dict(envelope_without_mac)
    )
    unsigned = _unsigned(data)
    unsigned["mac"] = compute_mac(_canonical(unsigned), key)
    return unsigned


def encode_envelope(envelope: Mapping[str, Any] | Envelope) -> bytes:
    """The bytes to publish: canonical JSON, at most 64 KiB.

    Raises:
        EnvelopeError: ``oversize``; ``json`` when the envelope is not an object or has
            no canonical JSON form.
    """
    if not isinstance(envelope, Envelope):
        _require_object(envelope)
    data = envelope.to_wire() if isinstance(envelope, Envelope) else envelope
    raw = _canonical(data)
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(
            "oversize", f"{len(raw)} bytes, the limit is {MAX_ENVELOPE_BYTES} (64 KiB)"
        )
    return raw


def seal_envelope(envelope: Mapping[str, Any] | Envelope, key: bytes) -> bytes:
    """Sign and encode in one step: what a gateway publishes."""
    return encode_envelope(sign_envelope(envelope, key))


# --------------------------------------------------------------------------------------
# Receiving
# --------------------------------------------------------------------------------------


class _BadJsonError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BadJsonError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise _BadJsonError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadJsonError(f"number {text[:20]}… overflows a double")
    return value


def decode_envelope_json(data: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    """Size-check and parse received bytes into JSON data (no MAC, no schema).

    Raises:
        EnvelopeError: ``oversize`` or ``json``.
    """
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EnvelopeError("json", "text is not valid Unicode") from exc
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:  # bytes(10**9) would allocate a gigabyte of zeros before the size check
        raise EnvelopeError("json", f"received data is bytes or text, got {type(data).__name__}")
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(
            "oversize", f"{len(raw)} bytes, the limit is {MAX_ENVELOPE_BYTES} (64 KiB)"
        )
    try:
        text = raw.decode("utf-8")
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except UnicodeDecodeError as exc:
        raise EnvelopeError("json", f"not UTF-8 at byte {exc.start}") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, _BadJsonError, int limits
        raise EnvelopeError("json", str(exc)[:200]) from exc
    if not isinstance(obj, dict):
        raise EnvelopeError("json", f"top level is a JSON {type(obj).__name__}, not an object")
    return obj


def _validate(envelope: Mapping[str, Any]) -> Envelope:
    try:
        return Envelope.model_validate(envelope)
    except RecursionError:
        raise EnvelopeError("schema", "envelope nested too deep to validate") from None
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False, include_input=False)[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "envelope"
            parts.append(f"{loc}: {err['msg']}")
        more = exc.error_count() - len(parts)
        if more > 0:
            parts.append(f"(+{more} more)")
        raise EnvelopeError("schema", "; ".join(parts)) from exc


def verify_envelope(envelope: Mapping[str, Any], keyring: KeyRing) -> Envelope:
    """Authenticate received JSON data, then validate it.

    Args:
        envelope: the envelope as parsed from the wire (e.g. by
            :func:`decode_envelope_json`), ``mac`` included.
        keyring: enrolled keys.

    Returns:
        The validated envelope.

    Raises:
        MacError: ``unknown-sender`` (no key for its site/device) or ``mac`` (missing,
            malformed or wrong MAC).
        EnvelopeError: ``json`` (not an object, or no canonical form: NaN, a non-JSON
            value, nesting too deep — what the wire path refuses as ``json`` too) or
            ``schema``.
    """
    _require_object(envelope)
    site, device = envelope.get("site"), envelope.get("device")
    if not isinstance(site, str) or not isinstance(device, str):
        raise MacError("unknown-sender", "site and device must be strings")
    if not keyring.keys_for(site, device):
        raise MacError("unknown-sender", f"no key enrolled for {site[:64]!r}/{device[:64]!r}")
    mac = envelope.get("mac")
    if not isinstance(mac, str):
        raise MacError("mac", "no mac")
    message = _canonical(_unsigned(envelope))
    if keyring.match(site, device, message, mac) is None:
        raise MacError("mac", f"MAC does not verify for {site}/{device}")
    return _validate(envelope)


def parse_envelope(data: bytes | bytearray | memoryview | str) -> Envelope:
    """Size, JSON and schema checks, without authentication (tools, tests, replay).

    Raises:
        EnvelopeError: ``oversize``, ``json`` or ``schema``.
    """
    return _validate(decode_envelope_json(data))


def open_envelope(data: bytes | bytearray | memoryview | str, keyring: KeyRing) -> Envelope:
    """Everything a receiver does: size, JSON, MAC, schema, with one parse.

    Raises:
        EnvelopeError: with the reason of the first check that failed (``MacError``
            for ``unknown-sender`` and ``mac``).
    """
    return verify_envelope(decode_envelope_json(data), keyring)
