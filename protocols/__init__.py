"""The one language both sides speak: message models, frame codecs, MQTT topics and MACs.

Pure encode/decode only: no I/O, no SQLite, no Textual. Every other package depends on
this one; this one depends on none of ours.

Typical receiving path::

    from protocols import KeyRing, EnvelopeError, open_envelope

    try:
        envelope = open_envelope(payload, keyring)   # size, JSON, MAC, schema
    except EnvelopeError as exc:
        quarantine(payload, exc.reason, exc.detail)

Typical sending path::

    from protocols import Envelope, VitalsBody, seal_envelope, topic_for

    env = Envelope.create(site="ehpad-lilas", device="ox-1", seq=42, body=VitalsBody(...))
    publish(topic_for(env), seal_envelope(env, key))
"""

from protocols._canonical import CanonicalJsonError, canonical_json
from protocols._envelope import (
    MAX_ENVELOPE_BYTES,
    MIN_KEY_BYTES,
    DeviceKey,
    EnvelopeError,
    KeyRing,
    MacError,
    Reason,
    compute_mac,
    decode_envelope_json,
    encode_envelope,
    open_envelope,
    parse_envelope,
    seal_envelope,
    sign_envelope,
    verify_envelope,
)
from protocols._printable import has_control, printable
from protocols.codecs import CODEC_NAMES, Codec, Decoded, DecodeError, StreamDecoder, get_codec
from protocols.models import (
    BODY_MODELS,
    KINDS,
    Attachment,
    BilanBody,
    BilanFlags,
    BirthBody,
    Body,
    DeathBody,
    DeviceStatus,
    DluSummary,
    Envelope,
    FastSigns,
    ImplantAlert,
    ImplantBody,
    ImplantDevice,
    ImplantEpisode,
    ImplantObservation,
    ImplantSession,
    Kind,
    Nurse,
    Observation,
    ResidentIdentity,
    StatusBody,
    StreamQuality,
    TrustedPerson,
    VideoBody,
    VideoConsent,
    VitalsBody,
    json_schemas,
)
from protocols.topics import (
    BilanTopic,
    CentreTopic,
    DeviceTopic,
    Topic,
    TopicError,
    VideoTopic,
    bilan_topic,
    centre_topic,
    device_topic,
    parse_topic,
    site_filter,
    topic_for,
    video_topic,
)

__all__ = [
    "BODY_MODELS",
    "CODEC_NAMES",
    "KINDS",
    "MAX_ENVELOPE_BYTES",
    "MIN_KEY_BYTES",
    "Attachment",
    "BilanBody",
    "BilanFlags",
    "BilanTopic",
    "BirthBody",
    "Body",
    "CanonicalJsonError",
    "CentreTopic",
    "Codec",
    "DeathBody",
    "DecodeError",
    "Decoded",
    "DeviceKey",
    "DeviceStatus",
    "DeviceTopic",
    "DluSummary",
    "Envelope",
    "EnvelopeError",
    "FastSigns",
    "ImplantAlert",
    "ImplantBody",
    "ImplantDevice",
    "ImplantEpisode",
    "ImplantObservation",
    "ImplantSession",
    "KeyRing",
    "Kind",
    "MacError",
    "Nurse",
    "Observation",
    "Reason",
    "ResidentIdentity",
    "StatusBody",
    "StreamDecoder",
    "StreamQuality",
    "Topic",
    "TopicError",
    "TrustedPerson",
    "VideoBody",
    "VideoConsent",
    "VideoTopic",
    "VitalsBody",
    "bilan_topic",
    "canonical_json",
    "centre_topic",
    "compute_mac",
    "decode_envelope_json",
    "device_topic",
    "encode_envelope",
    "get_codec",
    "has_control",
    "json_schemas",
    "open_envelope",
    "parse_envelope",
    "parse_topic",
    "printable",
    "seal_envelope",
    "sign_envelope",
    "site_filter",
    "topic_for",
    "verify_envelope",
    "video_topic",
]
