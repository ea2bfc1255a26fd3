"""MQTT topic scheme (protocols.md §2): builders, parser and subscription filters.

::

    samu/v1/site/{site}/device/{device}/{birth|death|vitals|status|implant}
    samu/v1/site/{site}/bilan
    samu/v1/video/{session}
    samu/v1/centre/{centre}/{path…}

Every id (and every centre path level) must match ``[A-Za-z0-9._-]{1,64}``: this keeps
``/``, the wildcards ``+`` and ``#``, spaces, NUL and empty levels out of topics, so a
device id can never widen a subscription or an ACL pattern. Builders raise
:class:`TopicError` (a ``ValueError``) naming the bad id; the parser raises it for any
topic outside the scheme.

The broker's ACL (hardware/mosquitto/acl) confines each gateway to
:func:`site_filter` of its own site; the hub still checks that an envelope's site and
device match its topic (:func:`topic_for`), because a gateway's ACL covers every device
of its site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from protocols.models import Envelope, VideoBody
from protocols.vocab import is_valid_id

__all__ = [
    "DEVICE_CHANNELS",
    "ROOT",
    "BilanTopic",
    "CentreTopic",
    "DeviceChannel",
    "DeviceTopic",
    "Topic",
    "TopicError",
    "VideoTopic",
    "all_sites_filter",
    "bilan_topic",
    "centre_filter",
    "centre_topic",
    "channel_filter",
    "device_filter",
    "device_topic",
    "hub_filters",
    "parse_topic",
    "site_filter",
    "topic_for",
    "video_filter",
    "video_topic",
]

ROOT: Final = "samu/v1"
"""Scheme root; the version level lets a v2 run beside v1 on the same broker."""

DeviceChannel = Literal["birth", "death", "vitals", "status", "implant"]
DEVICE_CHANNELS: Final[tuple[DeviceChannel, ...]] = get_args(DeviceChannel)


class TopicError(ValueError):
    """A topic or an id does not fit the scheme."""


def _id(what: str, value: object) -> str:
    if not is_valid_id(value):
        raise TopicError(
            f"{what} {value!r} is not a valid id: 1–64 characters of A-Z a-z 0-9 . _ - "
            "(no '/', '+', '#', spaces)"
        )
    assert isinstance(value, str)
    return value


def _channel(value: str) -> DeviceChannel:
    for channel in DEVICE_CHANNELS:
        if value == channel:
            return channel
    raise TopicError(f"device channel must be one of {', '.join(DEVICE_CHANNELS)}, not {value!r}")


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """``samu/v1/site/{site}/device/{device}/{channel}``; ``channel`` is the envelope kind."""

    site: str
    device: str
    channel: DeviceChannel

    @property
    def topic(self) -> str:
        return device_topic(self.site, self.device, self.channel)

    @property
    def kind(self) -> str:
        """The envelope kind expected on this topic."""
        return self.channel


@dataclass(frozen=True, slots=True)
class BilanTopic:
    """``samu/v1/site/{site}/bilan``."""

    site: str

    @property
    def topic(self) -> str:
        return bilan_topic(self.site)

    @property
    def kind(self) -> str:
        return "bilan"


@dataclass(frozen=True, slots=True)
class VideoTopic:
    """``samu/v1/video/{session}``."""

    session: str

    @property
    def topic(self) -> str:
        return video_topic(self.session)

    @property
    def kind(self) -> str:
        return "video"


@dataclass(frozen=True, slots=True)
class CentreTopic:
    """``samu/v1/centre/{centre}/{path…}``: hub ↔ terminal traffic (not envelopes of a
    device kind, hence no ``kind``)."""

    centre: str
    path: tuple[str, ...]

    @property
    def topic(self) -> str:
        return centre_topic(self.centre, *self.path)


Topic = DeviceTopic | BilanTopic | VideoTopic | CentreTopic


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def device_topic(site: str, device: str, channel: DeviceChannel) -> str:
    """``samu/v1/site/{site}/device/{device}/{channel}``."""
    return f"{ROOT}/site/{_id('site', site)}/device/{_id('device', device)}/{_channel(channel)}"


def bilan_topic(site: str) -> str:
    """``samu/v1/site/{site}/bilan``."""
    return f"{ROOT}/site/{_id('site', site)}/bilan"


def video_topic(session: str) -> str:
    """``samu/v1/video/{session}``."""
    return f"{ROOT}/video/{_id('session', session)}"


def centre_topic(centre: str, *path: str) -> str:
    """``samu/v1/centre/{centre}/{path…}``; at least one path level, each a valid id."""
    if not path:
        raise TopicError("a centre topic needs at least one level after the centre id")
    levels = "/".join(_id("centre topic level", p) for p in path)
    return f"{ROOT}/centre/{_id('centre', centre)}/{levels}"


def topic_for(envelope: Envelope) -> str:
    """The topic an envelope must be published on (and is expected on when received)."""
    if envelope.kind == "bilan":
        return bilan_topic(envelope.site)
    if envelope.kind == "video":
        assert isinstance(envelope.body, VideoBody)
        return video_topic(envelope.body.session)
    return device_topic(envelope.site, envelope.device, _channel(envelope.kind))


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------


def site_filter(site: str) -> str:
    """Everything of one site: ``samu/v1/site/{site}/#`` (a gateway's ACL subtree)."""
    return f"{ROOT}/site/{_id('site', site)}/#"


def device_filter(site: str, device: str) -> str:
    """Every channel of one device: ``samu/v1/site/{site}/device/{device}/+``."""
    return f"{ROOT}/site/{_id('site', site)}/device/{_id('device', device)}/+"


def channel_filter(channel: DeviceChannel, site: str | None = None) -> str:
    """One channel of every device (of one site, or of all sites)."""
    where = "+" if site is None else _id("site", site)
    return f"{ROOT}/site/{where}/device/+/{_channel(channel)}"


def all_sites_filter() -> str:
    """Everything from every site: ``samu/v1/site/#``."""
    return f"{ROOT}/site/#"


def video_filter(session: str | None = None) -> str:
    """All video sessions (``samu/v1/video/+``) or one."""
    return f"{ROOT}/video/{'+' if session is None else _id('session', session)}"


def centre_filter(centre: str) -> str:
    """All hub ↔ terminal traffic of one centre: ``samu/v1/centre/{centre}/#``."""
    return f"{ROOT}/centre/{_id('centre', centre)}/#"


def hub_filters() -> tuple[str, ...]:
    """What a hub subscribes to for ingest: every site and every video session."""
    return (all_sites_filter(), video_filter())


# --------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------


def parse_topic(topic: str) -> Topic:
    """Parse a concrete topic (no wildcards) of the scheme.

    Raises:
        TopicError: anything else, with the reason.
    """
    if not isinstance(topic, str):
        raise TopicError(f"a topic is a string, not {type(topic).__name__}")
    levels = topic.split("/")
    if len(levels) < 3 or levels[0] != "samu" or levels[1] != "v1":
        raise TopicError(f"topic {topic[:200]!r} is not under {ROOT}/")
    rest = levels[2:]
    match rest:
        case ["site", site, "device", device, channel]:
            return DeviceTopic(_id("site", site), _id("device", device), _channel(channel))
        case ["site", site, "bilan"]:
            return BilanTopic(_id("site", site))
        case ["video", session]:
            return VideoTopic(_id("session", session))
        case ["centre", centre, *path] if path:
            return CentreTopic(
                _id("centre", centre), tuple(_id("centre topic level", p) for p in path)
            )
    raise TopicError(f"topic {topic[:200]!r} does not match the samu/v1 scheme")
