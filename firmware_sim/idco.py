"""The vendor server's side of IDCO: implant transmissions written as HL7 v2 ORU^R01.

:class:`IdcoWriter` is a message link (``publish(topic, payload)``) that implant
transmitters can be given instead of an MQTT link: every ``implant`` envelope they send
becomes one ORU^R01 message (:func:`protocols.idco.encode_idco`) in send order, which is
what a manufacturer's remote-monitoring server forwards to a hospital. Other envelopes
(birth, death) are what the transmitter tells the vendor, not the hospital: dropped.
``samu sim … --idco-out FILE`` runs the transmitters on the virtual clock with it, so the
console's ``samu idco import`` is tested on what a vendor would send.
"""

from __future__ import annotations

from protocols import EnvelopeError, ImplantBody, parse_envelope
from protocols.idco import encode_idco, mllp_frame


class IdcoWriter:
    """Collects ``implant`` envelopes as HL7 messages (see the module docstring).

    Args:
        mllp: frame each message with MLLP (start block, end block).
    """

    def __init__(self, *, mllp: bool = False) -> None:
        self.mllp = mllp
        self.messages: list[str] = []
        self.offline = False

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if not topic.endswith("/implant"):
            return
        try:
            envelope = parse_envelope(payload)
        except EnvelopeError:
            return  # a deliberately broken envelope (fault injection): no HL7 for it
        if not isinstance(envelope.body, ImplantBody):
            return
        control = f"{envelope.device[:20]}-{envelope.seq}"
        self.messages.append(
            encode_idco(
                envelope.body,
                site=envelope.site,
                device=envelope.device,
                control_id=control,
                sent=envelope.sent,
            )
        )

    def set_offline(self, offline: bool) -> None:
        """The transmitter lost its network: it queues, the vendor sees nothing new."""
        self.offline = offline

    def stop(self) -> None:
        """Nothing to close (the runner's link protocol)."""

    def data(self) -> bytes:
        """The file's bytes: messages one after the other (MLLP-framed or ``\\r``-ended)."""
        if self.mllp:
            return b"".join(mllp_frame(m) for m in self.messages)
        return "".join(m + "\n" for m in self.messages).encode("utf-8")
