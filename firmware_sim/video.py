"""The video-link gateway: one session per case, as ``video`` envelopes.

The régulateur sends a link by SMS; the caller opens it, grants or refuses consent, the
stream starts, the gateway reports quality every ``quality_every_s`` (bitrate, frame
rate, loss, RTT, with realistic jitter), drops degrade it for a while, and the session
ends — normally, or at once when consent is withdrawn (``consent_withdrawn`` is followed
by ``stream_ended`` within a second: video must stop the moment consent goes). Video is
never recorded; only these events are sent.

The session is a small state machine (idle → link_sent → opened → consented → streaming
→ ended) that refuses impossible scripts (a stream before consent), because a scenario
that streams without consent would teach the console the wrong thing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from firmware_sim._clock import Clock, TimerHandle
from firmware_sim._envelopes import EnvelopeSender
from firmware_sim.physiology import NoiseSource
from protocols import StreamQuality, VideoBody, VideoConsent

#: Scenario "who" → Hub Santé caller type (typeAppelant).
CALLER_TYPES = {
    "patient": "SUJET",
    "family": "FAMILLE",
    "third_party": "TIERS",
    "nurse": "SANTE.INF",
}

#: The sender id of a site's video-link gateway (its envelopes and key).
VIDEO_GATEWAY = "video-gateway"


@dataclass(frozen=True)
class VideoStep:
    """One scripted event: ``event`` at ``at`` (seconds), with its details."""

    at: float
    event: str
    who: str | None = None
    duration_s: float | None = None
    bitrate_kbps: float | None = None
    frame_rate: float | None = None
    loss_pct: float | None = None


class VideoSessionError(ValueError):
    """A script that no real session could follow (e.g. streaming before consent)."""


_ORDER = ["idle", "link_sent", "link_opened", "consented", "streaming", "ended"]


class VideoSession:
    """One video-link session.

    Args:
        session_id: session id (topic ``samu/v1/video/{session}``).
        case: Hub Santé case id.
        phone: E.164 number the SMS goes to.
        steps: the script.
        sender: envelope sender of the video gateway.
        clock: simulation clock.
        noise: random stream for quality figures.
        quality_every_s: period of ``stream_quality`` reports while streaming.
    """

    def __init__(
        self,
        session_id: str,
        case: str,
        phone: str,
        steps: list[VideoStep],
        sender: EnvelopeSender,
        *,
        clock: Clock,
        noise: NoiseSource,
        quality_every_s: float = 10.0,
    ) -> None:
        self.session_id = session_id
        self.case = case
        self.phone = phone
        self.steps = sorted(steps, key=lambda s: s.at)
        self.sender = sender
        self.clock = clock
        self.noise = noise
        self.quality_every_s = quality_every_s
        self.state = "idle"
        self.events: list[str] = []
        self._quality_timer: TimerHandle | None = None
        self._degraded_until = -1.0
        self._check_script()

    def _check_script(self) -> None:
        state = "idle"
        for step in self.steps:
            state = self._next_state(state, step.event)

    @staticmethod
    def _next_state(state: str, event: str) -> str:
        def need(*allowed: str) -> None:
            if state not in allowed:
                raise VideoSessionError(f"{event} cannot happen while the session is {state}")

        if event == "link_sent":
            need("idle")
            return "link_sent"
        if event == "link_opened":
            need("link_sent")
            return "link_opened"
        if event == "consent_granted":
            need("link_sent", "link_opened")
            return "consented"
        if event == "consent_refused":
            need("link_sent", "link_opened")
            return "ended"
        if event == "stream_started":
            need("consented")
            return "streaming"
        if event in ("stream_quality", "stream_drop"):
            need("streaming")
            return "streaming"
        if event in ("stream_ended", "consent_withdrawn"):
            need("consented", "streaming")
            return "ended"
        raise VideoSessionError(f"unknown video event {event!r}")

    def start(self) -> None:
        for step in self.steps:
            self.clock.call_later(step.at - self.clock.now(), functools.partial(self._do, step))

    # -- events --------------------------------------------------------------------------------
    def _send(self, event: str, **fields: object) -> None:
        body = VideoBody(
            v=1,
            session=self.session_id,
            case=self.case,
            event=event,  # type: ignore[arg-type]
            time=self.sender.now(),
            **fields,  # type: ignore[arg-type]
        )
        self.sender.send(body)
        self.events.append(event)

    def _consent(self, who: str | None) -> VideoConsent:
        by = CALLER_TYPES.get(who or "patient", "SUJET")
        return VideoConsent(by=by, how="verbal" if by == "SANTE.INF" else "link")  # type: ignore[arg-type]

    def _quality(self, step: VideoStep | None = None) -> StreamQuality:
        n = self.noise
        degraded = self.clock.now() < self._degraded_until
        if step is not None and step.bitrate_kbps is not None:
            bitrate = step.bitrate_kbps
        else:
            bitrate = max(0.0, (350.0 if degraded else 1400.0) * (1.0 + n.normal(0.08)))
        fps = (
            step.frame_rate
            if step is not None and step.frame_rate is not None
            else (
                max(0.0, 8.0 + n.normal(2.0))
                if degraded
                else min(30.0, max(10.0, 27.0 + n.normal(1.5)))
            )
        )
        loss = (
            step.loss_pct
            if step is not None and step.loss_pct is not None
            else (
                min(100.0, max(0.0, 35.0 + n.normal(8.0)))
                if degraded
                else min(100.0, abs(n.normal(0.6)))
            )
        )
        rtt = max(10.0, (420.0 if degraded else 90.0) * (1.0 + n.normal(0.15)))
        return StreamQuality(
            bitrate_kbps=round(bitrate, 1),
            fps=round(fps, 1),
            loss_pct=round(loss, 2),
            rtt_ms=round(rtt),
        )

    def _do(self, step: VideoStep) -> None:
        ev = step.event
        self.state = self._next_state(self.state, ev)
        if ev == "link_sent":
            self._send("link_sent", phone=self.phone)
        elif ev in ("consent_granted", "consent_refused"):
            self._send(ev, consent=self._consent(step.who))
        elif ev == "stream_started":
            self._send("stream_started")
            self._schedule_quality()
        elif ev == "stream_drop":
            self._degraded_until = self.clock.now() + (step.duration_s or 10.0)
            self._send("stream_quality", quality=self._quality())
        elif ev == "stream_quality":
            self._send("stream_quality", quality=self._quality(step))
        elif ev == "consent_withdrawn":
            self._send("consent_withdrawn", consent=self._consent(step.who))
            self._stop_quality()
            # Video stops the moment consent goes: the end follows within a second.
            self.clock.call_later(0.5, lambda: self._send("stream_ended", quality=self._quality()))
        elif ev == "stream_ended":
            self._stop_quality()
            self._send("stream_ended", quality=self._quality())
        else:
            self._send(ev)

    def _schedule_quality(self) -> None:
        self._quality_timer = self.clock.call_later(self.quality_every_s, self._quality_tick)

    def _quality_tick(self) -> None:
        if self.state != "streaming":
            return
        self._send("stream_quality", quality=self._quality())
        self._schedule_quality()

    def _stop_quality(self) -> None:
        if self._quality_timer is not None:
            self._quality_timer.cancel()
            self._quality_timer = None
