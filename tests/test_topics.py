"""Topic scheme: builders ↔ parser, id rules, filters, and the shipped broker ACL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import DeathBody, Envelope, VideoBody
from protocols.topics import (
    DEVICE_CHANNELS,
    BilanTopic,
    CentreTopic,
    DeviceTopic,
    TopicError,
    VideoTopic,
    all_sites_filter,
    bilan_topic,
    centre_filter,
    centre_topic,
    channel_filter,
    device_filter,
    device_topic,
    hub_filters,
    parse_topic,
    site_filter,
    topic_for,
    video_filter,
    video_topic,
)
from tests.support.brokers import DeployedBroker, mosquitto_binary
from tests.support.strategies import envelopes, ids, video_bodies

BAD_IDS = ["", "a/b", "+", "#", "a+", "x#", "a b", "é", "x" * 65, "a\x00", "line\n", "/", "tab\t"]


@given(ids, ids, st.sampled_from(DEVICE_CHANNELS))
def test_device_topic_round_trip(site: str, device: str, channel: str) -> None:
    topic = device_topic(site, device, channel)  # type: ignore[arg-type]
    assert topic == f"samu/v1/site/{site}/device/{device}/{channel}"
    parsed = parse_topic(topic)
    assert parsed == DeviceTopic(site, device, channel)  # type: ignore[arg-type]
    assert parsed.topic == topic and parsed.kind == channel


@given(ids)
def test_bilan_and_video_topic_round_trip(value: str) -> None:
    assert bilan_topic(value) == f"samu/v1/site/{value}/bilan"
    assert parse_topic(bilan_topic(value)) == BilanTopic(value)
    assert video_topic(value) == f"samu/v1/video/{value}"
    assert parse_topic(video_topic(value)) == VideoTopic(value)


@given(ids, st.lists(ids, min_size=1, max_size=4))
def test_centre_topic_round_trip(centre: str, path: list[str]) -> None:
    topic = centre_topic(centre, *path)
    assert topic == "samu/v1/centre/" + "/".join([centre, *path])
    parsed = parse_topic(topic)
    assert parsed == CentreTopic(centre, tuple(path)) and parsed.topic == topic


def test_exactly_64_characters_is_the_limit() -> None:
    device_topic("s" * 64, "d" * 64, "vitals")
    with pytest.raises(TopicError, match="not a valid id"):
        device_topic("s" * 65, "d", "vitals")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_builders_reject_bad_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        device_topic(bad, "d", "vitals")
    with pytest.raises(ValueError, match="not a valid id"):
        device_topic("s", bad, "vitals")
    with pytest.raises(ValueError):
        bilan_topic(bad)
    with pytest.raises(ValueError):
        video_topic(bad)
    with pytest.raises(ValueError):
        centre_topic(bad, "board")
    with pytest.raises(ValueError):
        centre_topic("c", bad)
    with pytest.raises(ValueError):
        site_filter(bad)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "samu/v1",
        "samu/v2/site/s/bilan",
        "SAMU/v1/site/s/bilan",
        "/samu/v1/site/s/bilan",
        "samu/v1/site/s/bilan/",
        "samu/v1/site/s/device/d/alarm",
        "samu/v1/site/s/device/d",
        "samu/v1/site/s/device/d/vitals/extra",
        "samu/v1/site//device/d/vitals",
        "samu/v1/site/+/device/d/vitals",
        "samu/v1/site/#",
        "samu/v1/video",
        "samu/v1/video/a/b",
        "samu/v1/centre/c",
        "samu/v1/centre/c/",
        "samu/v1/centre/c/a b",
        "samu/v1/other/x",
    ],
)
def test_parser_rejects_topics_outside_the_scheme(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_bad_channel_and_empty_centre_path() -> None:
    with pytest.raises(TopicError, match="channel"):
        device_topic("s", "d", "bilan")  # type: ignore[arg-type]
    with pytest.raises(TopicError, match="at least one level"):
        centre_topic("c")


def test_filters() -> None:
    assert site_filter("ehpad-lilas") == "samu/v1/site/ehpad-lilas/#"
    assert device_filter("s", "d") == "samu/v1/site/s/device/d/+"
    assert channel_filter("vitals") == "samu/v1/site/+/device/+/vitals"
    assert channel_filter("birth", "s") == "samu/v1/site/s/device/+/birth"
    assert all_sites_filter() == "samu/v1/site/#"
    assert video_filter() == "samu/v1/video/+"
    assert video_filter("vs-1") == "samu/v1/video/vs-1"
    assert centre_filter("samu075") == "samu/v1/centre/samu075/#"
    assert hub_filters() == ("samu/v1/site/#", "samu/v1/video/+")


def _matches(topic_filter: str, topic: str) -> bool:
    pattern = "^" + re.escape(topic_filter).replace(r"\+", "[^/]+").replace("/\\#", "(/.*)?") + "$"
    return re.match(pattern, topic) is not None


@given(envelopes())
def test_topic_for_envelope(env: Envelope) -> None:
    topic = topic_for(env)
    parsed = parse_topic(topic)
    assert parsed.kind == env.kind  # type: ignore[union-attr]
    if isinstance(env.body, VideoBody):
        assert parsed == VideoTopic(env.body.session)
    else:
        assert topic.startswith(f"samu/v1/site/{env.site}/")
        assert _matches(site_filter(env.site), topic)
    assert any(_matches(f, topic) for f in hub_filters())


@given(video_bodies())
def test_topic_for_video_uses_the_session(body: VideoBody) -> None:
    env = Envelope.create(site="samu075", device="video-gw", seq=1, body=body)
    assert topic_for(env) == f"samu/v1/video/{body.session}"


def test_topic_for_death() -> None:
    death = Envelope.create(site="s", device="d", seq=1, body=DeathBody(v=1, reason="shutdown"))
    assert topic_for(death) == "samu/v1/site/s/device/d/death"


# --------------------------------------------------------------------------------------
# The shipped Mosquitto configuration and ACL, on a real broker (loopback only)
# --------------------------------------------------------------------------------------


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[DeployedBroker]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (make setup installs it)")
    broker = DeployedBroker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


async def _next(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):
        async for message in client.messages:
            return message
    raise AssertionError("unreachable")


async def test_shipped_acl_confines_each_client_to_its_subtree(deployed: DeployedBroker) -> None:
    lilas = "samu/v1/site/ehpad-lilas/device/ox-1/vitals"
    tilleuls = "samu/v1/site/ehpad-tilleuls/device/ox-1/vitals"
    async with (
        deployed.client("hub.samu075", tls=True) as hub,
        deployed.client("gw.ehpad-lilas") as gw,
        deployed.client("video.samu075") as video,
        deployed.client("term.samu075.01") as term,
    ):
        await hub.subscribe("samu/v1/#", qos=1)

        # A gateway publishing outside its site is dropped; its own site goes through.
        await gw.publish(tilleuls, b"forged", qos=1)
        await video.publish(lilas, b"forged by video", qos=1)
        await term.publish(lilas, b"forged by terminal", qos=1)
        await gw.publish(lilas, b"genuine", qos=1)
        first = await _next(hub)
        assert (str(first.topic), first.payload) == (lilas, b"genuine")

        # The video gateway publishes video events only; terminals their centre only.
        await video.publish("samu/v1/video/vs-1", b"event", qos=1)
        got = await _next(hub)
        assert (str(got.topic), got.payload) == ("samu/v1/video/vs-1", b"event")
        await term.publish("samu/v1/centre/samu076/board", b"other centre", qos=1)
        await term.publish("samu/v1/centre/samu075/board", b"ours", qos=1)
        got = await _next(hub)
        assert (str(got.topic), got.payload) == ("samu/v1/centre/samu075/board", b"ours")

        # Reading: a gateway subscribed broadly only receives its own site.
        await gw.subscribe("samu/v1/#", qos=1)
        await hub.publish("samu/v1/site/ehpad-tilleuls/ack", b"not for lilas", qos=1)
        await hub.publish("samu/v1/centre/samu075/board", b"not for gateways", qos=1)
        await hub.publish("samu/v1/site/ehpad-lilas/ack", b"for lilas", qos=1)
        got = await _next(gw)
        assert (str(got.topic), got.payload) == ("samu/v1/site/ehpad-lilas/ack", b"for lilas")


@pytest.mark.parametrize(
    ("user", "password"), [(None, None), ("gw.ehpad-lilas", "wrong"), ("nobody", "x")]
)
async def test_shipped_config_refuses_unauthenticated_clients(
    deployed: DeployedBroker, user: str | None, password: str | None
) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with deployed.client(user, password):
            pass
