"""The MQTT envelope (protocols.md §2) and the body model for each ``kind``.

The body is validated against the model its envelope's ``kind`` names (a discriminated
union whose discriminator sits beside the body, not inside it). Errors point into the
body (``body.observations.0.unit``) so a quarantined message says exactly what was wrong.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field, ValidationInfo, ValidatorFunctionWrapHandler, field_validator

from protocols.models._bilan import BilanBody
from protocols.models._device import BirthBody, DeathBody, StatusBody, VitalsBody
from protocols.models._implant import ImplantBody
from protocols.models._types import V1, Id, Message, Seq, Timestamp
from protocols.models._video import VideoBody

__all__ = [
    "BODY_MODELS",
    "KINDS",
    "MAC_PATTERN",
    "UUID_PATTERN",
    "Body",
    "Envelope",
    "Kind",
]

Kind = Literal["vitals", "status", "birth", "death", "implant", "video", "bilan"]
KINDS: Final = ("vitals", "status", "birth", "death", "implant", "video", "bilan")

Body = VitalsBody | StatusBody | BirthBody | DeathBody | ImplantBody | VideoBody | BilanBody

BODY_MODELS: Final[dict[str, type[Message]]] = {
    "vitals": VitalsBody,
    "status": StatusBody,
    "birth": BirthBody,
    "death": DeathBody,
    "implant": ImplantBody,
    "video": VideoBody,
    "bilan": BilanBody,
}
"""``kind`` → body model."""

_KIND_OF_MODEL: Final = {model: kind for kind, model in BODY_MODELS.items()}

UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
"""Message id: a UUID in its 36-character text form (the contract's ``"id":"<uuid>"``).
Kept as text, not parsed, so the id compared for de-duplication is the one signed."""

MAC_PATTERN: Final = r"^[A-Za-z0-9_-]{43}={0,1}$"
"""Base64url of a 32-byte HMAC-SHA256: 43 characters, written unpadded (see
:mod:`protocols._envelope` for the padding decision)."""


class Envelope(Message):
    """Every MQTT message: who sent what, when, in which order, authenticated.

    Attributes:
        v: envelope version (1).
        id: UUID of this message (de-duplication key).
        kind: body kind; selects the body model.
        site: sending site id.
        device: sending device (or gateway/station) id; with ``site`` it names the key.
        seq: per-device sequence number (second de-duplication key, gap detection).
        sent: when the sender built the message, with an explicit UTC offset.
        body: the body for ``kind``.
        mac: base64url HMAC-SHA256 over the canonical envelope without ``mac``; absent
            only on an envelope not yet signed.
    """

    v: V1
    id: Annotated[str, Field(pattern=UUID_PATTERN)]
    kind: Kind
    site: Id
    device: Id
    seq: Seq
    sent: Timestamp
    body: Body
    mac: Annotated[str, Field(pattern=MAC_PATTERN)] | None = None

    @field_validator("body", mode="wrap")
    @classmethod
    def _body_for_kind(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Body:
        kind = info.data.get("kind")
        if kind is None:
            raise ValueError("body cannot be checked without a valid kind")
        model = BODY_MODELS[kind]
        if isinstance(value, Message) and not isinstance(value, model):
            raise ValueError(f"kind {kind!r} needs a {model.__name__}, not {type(value).__name__}")
        body: Body = model.model_validate(value)  # type: ignore[assignment]
        return body

    @classmethod
    def create(
        cls,
        *,
        site: str,
        device: str,
        seq: int,
        body: Body,
        sent: datetime | None = None,
        message_id: str | None = None,
    ) -> Envelope:
        """Build an unsigned envelope, the kind taken from the body's type.

        Args:
            site: sending site id.
            device: sending device id.
            seq: per-device sequence number.
            body: the body.
            sent: send time (default: now, UTC — pass one for reproducible output).
            message_id: UUID text (default: a random UUID4).
        """
        return cls(
            v=1,
            id=message_id if message_id is not None else str(uuid.uuid4()),
            kind=_KIND_OF_MODEL[type(body)],  # type: ignore[arg-type]
            site=site,
            device=device,
            seq=seq,
            sent=sent if sent is not None else datetime.now(UTC),
            body=body,
        )

    def to_wire(self) -> dict[str, Any]:
        """The envelope as JSON data, as it is signed and sent.

        ``None`` fields are left out (every optional field defaults to ``None``, so
        nothing is lost) and timestamps keep their offset.
        """
        return self.model_dump(mode="json", exclude_none=True)
