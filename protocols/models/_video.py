"""``video``: events of a video link sent to a caller's phone.

Video is never recorded; only these events are (protocols.md §2). Consent is the legal
basis for the stream, so a consent event must say who gave it, using the Hub Santé caller
types (typeAppelant), and every event carries the case it belongs to.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, model_validator

from protocols.models._types import V1, Id, Message, ShortText, Timestamp

__all__ = [
    "CASE_ID_PATTERN",
    "E164_PATTERN",
    "ConsentCallerType",
    "StreamQuality",
    "VideoBody",
    "VideoConsent",
    "VideoEvent",
]

E164_PATTERN: Final = r"^\+[1-9][0-9]{1,14}$"
"""ITU-T E.164: ``+``, country code, subscriber number; at most 15 digits, no spaces."""

CASE_ID_PATTERN: Final = r"^fr\.health\.samu[0-9]{3}\.[A-Za-z0-9_-]{1,64}$"
"""Hub Santé shared case id ``fr.health.samu{NNN}.{senderCaseId}``."""

ConsentCallerType = Literal[
    "SUJET",
    "FAMILLE",
    "TIERS",
    "POMPIER",
    "AMBULANC",
    "AMBULANC.AASC",
    "AMBULANC.AUTRESEC",
    "SECOUR",
    "MED",
    "MED.MEDSOS",
    "MED.MRL",
    "MED.EFFML",
    "SANTE",
    "SANTE.INF",
    "SANTE.AIDESOIN",
    "SANTE.SF",
    "SANTE.AIDEDOM",
    "SANTE.PHARMA",
    "SANTE.DENTISTE",
    "SANTE.LABO",
    "FDO-MILI",
    "FDO-MILI.POL",
    "FDO-MILI.GENDARM",
    "FDO-MILI.MILI",
    "ADM-TUTL",
    "VIP",
    "AUTRE",
]
"""Hub Santé caller types a consent may come from: all of typeAppelant except OBJCONNC
(a connected object) and INCONNU (an unknown caller) — consent needs an identified person.
Patient = SUJET, family = FAMILLE, third party = TIERS, nurse = SANTE.INF."""

Phone = Annotated[str, Field(pattern=E164_PATTERN)]

VideoEvent = Literal[
    "link_sent",
    "link_opened",
    "consent_granted",
    "consent_refused",
    "stream_started",
    "stream_quality",
    "stream_ended",
    "consent_withdrawn",
]

_CONSENT_EVENTS: Final = frozenset({"consent_granted", "consent_refused", "consent_withdrawn"})
_QUALITY_EVENTS: Final = frozenset({"stream_quality", "stream_ended"})


class VideoConsent(Message):
    """Who answered the consent question.

    Attributes:
        by: Hub Santé caller type of the person (SUJET, FAMILLE, TIERS, SANTE.INF …).
        name: their name, when given.
        relation: relation to the patient in their words (``fille``, ``voisin``), when
            the caller type alone does not say it.
        how: ``verbal`` (said to the regulator on the phone) or ``link`` (accepted on
            the video page).
    """

    by: ConsentCallerType
    name: ShortText | None = None
    relation: ShortText | None = None
    how: Literal["verbal", "link"]


class StreamQuality(Message):
    """Stream quality figures measured by the gateway.

    Attributes:
        bitrate_kbps: received bitrate, 0–100 000 kbit/s.
        fps: frame rate, 0–120.
        loss_pct: packet loss, 0–100 %.
        rtt_ms: round-trip time, when measured.
    """

    bitrate_kbps: Annotated[float, Field(ge=0, le=100_000)]
    fps: Annotated[float, Field(ge=0, le=120)]
    loss_pct: Annotated[float, Field(ge=0, le=100)]
    rtt_ms: Annotated[float, Field(ge=0, le=60_000)] | None = None


class VideoBody(Message):
    """``video``: one event of one video session.

    Attributes:
        v: body version (1).
        session: video session id (also the topic level ``samu/v1/video/{session}``).
        case: the Hub Santé case id the session belongs to.
        event: what happened.
        time: when it happened.
        phone: the phone the link was sent to (E.164); required for ``link_sent``.
        consent: required for consent events, refused on others.
        quality: required for ``stream_quality``; allowed on ``stream_ended`` (final
            figures); refused on others.
    """

    v: V1
    session: Id
    case: Annotated[str, Field(pattern=CASE_ID_PATTERN)]
    event: VideoEvent
    time: Timestamp
    phone: Phone | None = None
    consent: VideoConsent | None = None
    quality: StreamQuality | None = None

    @model_validator(mode="after")
    def _event_fields(self) -> VideoBody:
        if self.event == "link_sent" and self.phone is None:
            raise ValueError("link_sent needs the phone the link was sent to")
        if self.event in _CONSENT_EVENTS:
            if self.consent is None:
                raise ValueError(f"{self.event} needs consent (who answered, how)")
        elif self.consent is not None:
            raise ValueError(f"consent belongs to consent events, not {self.event}")
        if self.event == "stream_quality" and self.quality is None:
            raise ValueError("stream_quality needs quality figures")
        if self.quality is not None and self.event not in _QUALITY_EVENTS:
            raise ValueError(f"quality belongs to stream_quality/stream_ended, not {self.event}")
        return self
