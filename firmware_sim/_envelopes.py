"""Building, signing and publishing one sender's envelopes, with envelope-level faults.

Every MQTT sender in the simulator (EHPAD gateway on behalf of its devices, implant
transmitter, video-link gateway) publishes through an :class:`EnvelopeSender`: it
validates the body with the protocols models (a simulator that sends invalid bodies by
accident would test nothing), numbers it, stamps it, signs it with the sender's enrolled
key (:func:`protocols.sign_envelope`) and hands the canonical JSON bytes to a message
link. Injected faults act here, after signing, exactly where a real fault would be:

* ``duplicate`` — the same bytes published twice (same id, same seq);
* ``reorder`` — an envelope held back and published after the next one;
* ``bad_mac`` — the MAC altered (one character changed);
* ``unknown_device`` — the envelope claims a device id nobody enrolled;
* ``oversize`` — the body padded past the 64 KiB limit (then signed, so only the size
  check can catch it).

Sequence numbers start from the sender's boot time in milliseconds (then +1 per
envelope), so a restarted gateway never reuses a (device, seq) pair the console has
already seen — reusing one would make the console drop fresh data as duplicates.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import numpy as np

from firmware_sim._clock import Clock
from firmware_sim._faults import FaultKind, FaultPlan
from firmware_sim._hal import SITE_TZ
from firmware_sim.transports import MessageLink, OutMessage
from protocols import Envelope, canonical_json, sign_envelope
from protocols.models import Body
from protocols.topics import bilan_topic, device_topic, video_topic


def wall_time(clock: Clock, tz: tzinfo = SITE_TZ) -> datetime:
    """The clock's current instant as an aware datetime, to the millisecond."""
    ms = round((clock.epoch + clock.now()) * 1000)
    return datetime.fromtimestamp(ms // 1000, tz) + timedelta(milliseconds=ms % 1000)


@dataclass
class SenderStats:
    sent: int = 0
    duplicated: int = 0
    reordered: int = 0
    bad_mac: int = 0
    unknown_device: int = 0
    oversize: int = 0


class EnvelopeSender:
    """One (site, device) sender.

    Args:
        site: site id.
        device: device id (with ``site``, names the key).
        key: the enrolled HMAC key.
        clock: time source for ``sent``.
        link: where the bytes go.
        rng: stream for message ids and fault decisions (seeded: ids are reproducible).
        faults: envelope-level fault windows.
        tz: zone the ``sent`` offsets are written in.
    """

    def __init__(
        self,
        site: str,
        device: str,
        key: bytes,
        clock: Clock,
        link: MessageLink,
        *,
        rng: np.random.Generator,
        faults: FaultPlan | None = None,
        tz: tzinfo = SITE_TZ,
    ) -> None:
        self.site = site
        self.device = device
        self._key = key
        self._clock = clock
        self.link = link
        self._rng = rng
        self._faults = faults or FaultPlan()
        self._tz = tz
        self.seq = int((clock.epoch + clock.now()) * 1000)
        self._held: tuple[str, bytes, bool] | None = None
        self.stats = SenderStats()

    def now(self) -> datetime:
        return wall_time(self._clock, self._tz)

    def _message_id(self) -> str:
        return str(uuid.UUID(bytes=self._rng.bytes(16), version=4))

    def topic(self, kind: str, body: Body | None = None, device: str | None = None) -> str:
        if kind == "video":
            session = getattr(body, "session", None)
            assert isinstance(session, str)
            return video_topic(session)
        if kind == "bilan":
            return bilan_topic(self.site)
        return device_topic(self.site, device or self.device, kind)  # type: ignore[arg-type]

    def build(self, body: Body, *, device: str | None = None) -> tuple[str, bytes]:
        """Validate, number, stamp and sign ``body``; return (topic, payload).

        Used directly for the Last Will (built at connect time, published by the broker).
        """
        self.seq += 1
        envelope = Envelope.create(
            site=self.site,
            device=device or self.device,
            seq=self.seq,
            body=body,
            sent=self.now(),
            message_id=self._message_id(),
        )
        data = sign_envelope(envelope, self._key)
        return self.topic(envelope.kind, body, device), canonical_json(data)

    def send(self, body: Body, *, retain: bool = False) -> bytes:
        """Publish ``body``; returns the payload as first built (before faults)."""
        t = self._clock.now()
        faults = self._faults
        device = self.device
        if faults.has(FaultKind.UNKNOWN_DEVICE) and faults.active(FaultKind.UNKNOWN_DEVICE, t):
            device = f"unenrolled-{self.device}"[:64]
            self.stats.unknown_device += 1
        self.seq += 1
        envelope = Envelope.create(
            site=self.site,
            device=device,
            seq=self.seq,
            body=body,
            sent=self.now(),
            message_id=self._message_id(),
        )
        data = envelope.to_wire()
        if faults.has(FaultKind.OVERSIZE) and faults.fires(FaultKind.OVERSIZE, t):
            data["body"] = {**data["body"], "padding": "x" * (66 * 1024)}
            self.stats.oversize += 1
        data = sign_envelope(data, self._key)
        if faults.has(FaultKind.BAD_MAC) and faults.fires(FaultKind.BAD_MAC, t):
            data["mac"] = _spoil(data["mac"])
            self.stats.bad_mac += 1
        payload = canonical_json(data)
        topic = self.topic(envelope.kind, body, device)
        self._publish(topic, payload, retain, t)
        return payload

    def _publish(self, topic: str, payload: bytes, retain: bool, t: float) -> None:
        faults = self._faults
        if (
            faults.has(FaultKind.REORDER)
            and self._held is None
            and faults.fires(FaultKind.REORDER, t)
        ):
            self._held = (topic, payload, retain)
            self.stats.reordered += 1
            return
        self.link.publish(topic, payload, retain=retain)
        self.stats.sent += 1
        if faults.has(FaultKind.DUPLICATE) and faults.fires(FaultKind.DUPLICATE, t):
            self.link.publish(topic, payload, retain=retain)
            self.stats.duplicated += 1
        self.flush_held()

    def flush_held(self) -> None:
        """Publish an envelope held back by ``reorder`` (after the one that overtook it)."""
        if self._held is not None:
            topic, payload, retain = self._held
            self._held = None
            self.link.publish(topic, payload, retain=retain)
            self.stats.sent += 1


def _spoil(mac: str) -> str:
    """Change one character of a base64url MAC (still well-formed, no longer valid)."""
    raw = bytearray(base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)))
    raw[0] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")


def death_will(holder: list[EnvelopeSender]) -> OutMessage:
    """A sender's Last Will, signed when the link connects (``holder`` is filled after the
    link is created, since the sender needs the link and the link needs the will)."""
    from firmware_sim._bodies import death_body

    topic, payload = holder[0].build(death_body("connection_lost"))
    return OutMessage(topic, payload)
