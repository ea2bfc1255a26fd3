"""The video-link gateway: session events as validated, signed ``video`` envelopes."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim import EnvelopeSender, KeyStore, VirtualClock
from firmware_sim.physiology import NoiseSource
from firmware_sim.transports import InprocBus, InprocLink
from firmware_sim.video import VideoSession, VideoSessionError, VideoStep
from protocols import KeyRing, VideoBody, open_envelope

CASE = "fr.health.samu075.DRFR150001"


def run(steps: list[VideoStep], seconds: float = 600.0) -> list[tuple[float, VideoBody]]:
    clock = VirtualClock()
    bus = InprocBus()
    keys = KeyStore.from_seed(1)
    sender = EnvelopeSender(
        "centre",
        "video-gateway",
        keys.key("centre", "video-gateway"),
        clock,
        InprocLink(bus),
        rng=np.random.default_rng(1),
    )
    session = VideoSession(
        "vs-1",
        CASE,
        "+33612345678",
        steps,
        sender,
        clock=clock,
        noise=NoiseSource(np.random.default_rng(2)),
        quality_every_s=10.0,
    )
    session.start()
    clock.run_until(seconds)
    ring = KeyRing(keys.as_mapping())
    out = []
    for m in bus.messages:
        assert m.topic == "samu/v1/video/vs-1"
        env = open_envelope(m.payload, ring)
        assert isinstance(env.body, VideoBody)
        out.append(((env.body.time.timestamp() - clock.epoch), env.body))
    return out


def test_consent_withdrawn_ends_the_stream_within_a_second() -> None:
    events = run(
        [
            VideoStep(10, "link_sent"),
            VideoStep(40, "link_opened"),
            VideoStep(50, "consent_granted", who="family"),
            VideoStep(55, "stream_started"),
            VideoStep(120, "stream_drop", duration_s=30),
            VideoStep(300, "consent_withdrawn", who="family"),
        ]
    )
    names = [b.event for _, b in events]
    assert names[:5] == [
        "link_sent",
        "link_opened",
        "consent_granted",
        "stream_started",
        "stream_quality",
    ]
    assert events[0][1].phone == "+33612345678"
    assert events[2][1].consent is not None and events[2][1].consent.by == "FAMILLE"
    withdrawn = names.index("consent_withdrawn")
    assert names[withdrawn + 1 :] == ["stream_ended"]
    assert events[withdrawn + 1][0] - events[withdrawn][0] <= 1.0
    qualities = [(t, b.quality) for t, b in events if b.event == "stream_quality"]
    assert 20 <= len(qualities) <= 26
    during_drop = [q for t, q in qualities if 120 <= t < 150]
    normal = [q for t, q in qualities if t > 160]
    assert during_drop and normal
    assert max(q.loss_pct for q in during_drop) > 10 > max(q.loss_pct for q in normal)


def test_refused_consent_never_streams() -> None:
    events = run([VideoStep(5, "link_sent"), VideoStep(20, "consent_refused", who="patient")])
    assert [b.event for _, b in events] == ["link_sent", "consent_refused"]
    assert events[1][1].consent is not None and events[1][1].consent.by == "SUJET"


@pytest.mark.parametrize(
    "steps",
    [
        [VideoStep(5, "stream_started")],
        [VideoStep(5, "link_sent"), VideoStep(6, "stream_started")],
        [
            VideoStep(5, "link_sent"),
            VideoStep(6, "consent_refused"),
            VideoStep(7, "consent_granted"),
        ],
        [VideoStep(5, "teleport")],
    ],
)
def test_impossible_scripts_are_refused(steps: list[VideoStep]) -> None:
    with pytest.raises(VideoSessionError):
        run(steps)
