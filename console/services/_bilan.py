"""A nurse's bilan from the EHPAD station to the régulation: signed, then delivered.

The station is an enrolled sender like any device (``{site}/nurse-station``): the bilan
travels as a signed envelope on ``samu/v1/site/{site}/bilan``, so it crosses the same
ingest (MAC, schema, dedup, provenance, case opening) whether it goes over MQTT to a hub
or, on the embedded shape, straight into a core in this process. The sender's key is the
one the centre enrolled; a station on a database where it is not enrolled yet enrols
itself (audited), as ``samu devices enrol`` would.

Sequence numbers are milliseconds since the epoch, so they keep increasing across station
restarts (ingest refuses a sender's sequence going backwards).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from console.auth import Action, Session, Target
from console.ingest import Incoming, Sender
from console.records import AuditContext
from console.services._compose import Services
from protocols import canonical_json, sign_envelope
from protocols.models import BilanBody, Envelope
from protocols.topics import bilan_topic

#: The station's sender id on its site (as the simulator's scenarios use).
STATION_DEVICE = "nurse-station"


class BilanError(ValueError):
    """The bilan cannot be sent (the message says why)."""


@dataclass(frozen=True)
class SentBilan:
    """What the nurse sees once the bilan left: its message id and when."""

    message_id: str
    topic: str
    sent_at: str


class BilanOutbox:
    """Seal and deliver bilans (see the module docstring).

    Args:
        services: the assembled system (its device registry holds the station's key).
        deliver: how a sealed message leaves: ``(topic, payload)`` → awaited.
    """

    def __init__(
        self,
        services: Services,
        deliver: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        self._services = services
        self._deliver = deliver

    def _key(self, session: Session, site: str) -> bytes:
        devices = self._services.devices
        key = devices.key_of(site, STATION_DEVICE)
        if key is None:
            devices.enrol(
                AuditContext(actor=session.user_id, role="ide_ehpad", terminal=session.terminal),
                [Sender(site, STATION_DEVICE, STATION_DEVICE, None)],
                now=datetime.now(UTC),
            )
            key = devices.key_of(site, STATION_DEVICE)
        assert key is not None
        return key

    def seal(self, session: Session, body: BilanBody) -> tuple[str, bytes, str]:
        """Authorise (``bilan.send`` on the nurse's own site; audited) and sign."""
        site = session.site
        if site is None:
            raise BilanError(f"{session.user_id} is bound to no EHPAD site: no bilan to send")
        auth = self._services.accounts.authorize(
            session, Action.BILAN_SEND, Target(f"site:{site}", site=site)
        )
        key = self._key(session, site)
        envelope = Envelope.create(
            site=site, device=STATION_DEVICE, seq=int(time.time() * 1000), body=body
        )
        payload = canonical_json(sign_envelope(envelope.to_wire(), key))
        self._services.accounts.audit(
            session,
            "bilan.send",
            f"site:{site}",
            role=auth.role,
            purpose=auth.purpose,
            detail={"message": envelope.id, "resident": body.resident.resident},
        )
        return bilan_topic(site), payload, envelope.id

    async def send(self, session: Session, body: BilanBody) -> SentBilan:
        topic, payload, message_id = self.seal(session, body)
        await self._deliver(topic, payload)
        return SentBilan(message_id, topic, datetime.now(UTC).isoformat())


def incoming(topic: str, payload: bytes) -> Incoming:
    """A sealed bilan as the core's ingest takes it (the embedded shape)."""
    return Incoming(topic, payload, time.time())
