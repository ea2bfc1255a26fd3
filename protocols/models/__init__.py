"""Pydantic models of every MQTT message: the envelope and one body per ``kind``.

Strict by design (unknown fields, wrong types, wrong units, impossible values and naive
timestamps are refused with a message saying which field and why) and immutable, so a
validated message can be shared between threads and cached without copies.
"""

from protocols.models._bilan import (
    Attachment,
    BilanBody,
    BilanFlags,
    DluSummary,
    FastSigns,
    Nurse,
    ResidentIdentity,
    TrustedPerson,
)
from protocols.models._device import BirthBody, DeathBody, DeviceStatus, StatusBody, VitalsBody
from protocols.models._envelope import BODY_MODELS, KINDS, Body, Envelope, Kind
from protocols.models._implant import (
    AlertCode,
    ImplantAlert,
    ImplantBody,
    ImplantDevice,
    ImplantEpisode,
    ImplantObservation,
    ImplantSession,
)
from protocols.models._observation import LoincCodeStr, Observation
from protocols.models._schemas import json_schemas
from protocols.models._types import TIMESTAMP_PATTERN, Message, format_timestamp
from protocols.models._video import StreamQuality, VideoBody, VideoConsent, VideoEvent

__all__ = [
    "BODY_MODELS",
    "KINDS",
    "TIMESTAMP_PATTERN",
    "AlertCode",
    "Attachment",
    "BilanBody",
    "BilanFlags",
    "BirthBody",
    "Body",
    "DeathBody",
    "DeviceStatus",
    "DluSummary",
    "Envelope",
    "FastSigns",
    "ImplantAlert",
    "ImplantBody",
    "ImplantDevice",
    "ImplantEpisode",
    "ImplantObservation",
    "ImplantSession",
    "Kind",
    "LoincCodeStr",
    "Message",
    "Nurse",
    "Observation",
    "ResidentIdentity",
    "StatusBody",
    "StreamQuality",
    "TrustedPerson",
    "VideoBody",
    "VideoConsent",
    "VideoEvent",
    "VitalsBody",
    "format_timestamp",
    "json_schemas",
]
