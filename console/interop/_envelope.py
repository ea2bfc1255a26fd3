"""The EDXL-DE distribution envelope around a Hub Santé message, and taking it off.

An exported message travels as the hub carries it: envelope (distributionID, senderID
``fr.health.<centre>``, times, status, kind, descriptor with the recipient), then the
RC-DE header (messageId, sender, sentAt, kind, status, recipient) beside the content
(``createCaseHealth``, ``interventionReport``…). The same id is used for the
distribution and the message, as in the official examples.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from console.interop._case import hub_time
from console.interop._models import (
    ContentObject,
    Descriptor,
    DistributionElement,
    EdxlEnvelope,
    EmbeddedJsonContent,
    ExplicitAddress,
    JsonContent,
    Party,
)

#: How long an exported message stays valid for the hub (then it is not delivered).
VALIDITY = timedelta(days=1)
#: Default recipient: the national hub itself (another SAMU with ``--to``).
DEFAULT_RECIPIENT = "fr.health.hub"


def envelope(
    key: str,
    content: dict[str, Any],
    *,
    centre: str,
    now: datetime,
    recipient: str = DEFAULT_RECIPIENT,
    distribution_id: str | None = None,
) -> dict[str, Any]:
    """``content`` (the value of ``key``) inside the EDXL-DE envelope, as JSON data."""
    sender = f"fr.health.{centre}"
    ident = distribution_id or f"{sender}_{uuid.uuid4()}"
    sent = hub_time(now)
    header = DistributionElement(
        messageId=ident,
        sender=Party(name=centre, URI=f"hubex:{sender}"),
        sentAt=sent,
        kind="Report",
        status="Actual",
        recipient=[Party(name=recipient.rsplit(".", 1)[-1], URI=f"hubex:{recipient}")],
    )
    message = {**header.wire(), key: content}
    env = EdxlEnvelope(
        distributionID=ident,
        senderID=sender,
        dateTimeSent=sent,
        dateTimeExpires=hub_time(now + VALIDITY),
        distributionStatus="Actual",
        distributionKind="Report",
        descriptor=Descriptor(
            language="fr-FR",
            explicitAddress=ExplicitAddress(
                explicitAddressScheme="hubex", explicitAddressValue=recipient
            ),
        ),
        content=[
            ContentObject(
                jsonContent=JsonContent(embeddedJsonContent=EmbeddedJsonContent(message=message))
            )
        ],
    )
    return env.wire()


def sender_of(data: dict[str, Any]) -> str | None:
    """The senderID of an enveloped message (``{"edxl": …}`` fixtures too), else None."""
    if len(data) == 1 and isinstance(data.get("edxl"), dict):
        data = data["edxl"]
    sender = data.get("senderID")
    return sender if isinstance(sender, str) else None


def distribution_of(data: dict[str, Any]) -> str | None:
    if len(data) == 1 and isinstance(data.get("edxl"), dict):
        data = data["edxl"]
    ident = data.get("distributionID")
    return ident if isinstance(ident, str) else None
