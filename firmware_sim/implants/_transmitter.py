"""The bedside transmitter of a cardiac implant: sessions over MQTT as ``implant`` envelopes.

A firmware state machine like the bedside devices' (boot → birth → monitoring ⇄
disconnected), polling its implant once a second over the (simulated) inductive/BLE
link and sending:

* scheduled remote follow-ups (session type 754053) every ``every_s``;
* device-initiated alert sessions (754052) as soon as the implant raises an alert;
* patient-initiated transmissions (754051) when a scenario says so.

While disconnected (no mobile network, unplugged) sessions queue in the transmitter and
go out in order when it reconnects, with a ``transmitter_disconnected`` alert saying how
long it was away; its MQTT Last Will (``death``) tells the centre at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from firmware_sim._clock import Clock, TimerHandle
from firmware_sim._envelopes import EnvelopeSender
from firmware_sim.devices import State, Transition
from firmware_sim.implants._device import LEAD_TERMS, Alert, Episode, Implant
from protocols import (
    BirthBody,
    ImplantAlert,
    ImplantBody,
    ImplantDevice,
    ImplantEpisode,
    ImplantObservation,
    ImplantSession,
)

SESSION_REMOTE = 754051
SESSION_ALERT = 754052
SESSION_SCHEDULED = 754053


@dataclass(frozen=True)
class Window:
    start: float
    end: float


class Transmitter:
    """Home transmitter for one implant.

    Args:
        implant: the implant it interrogates.
        sender: envelope sender (site, transmitter id = implant id, key, link).
        clock: the simulation clock.
        every_s: scheduled transmission period.
        first_at: first scheduled transmission.
        offline: windows during which it has no network.
        on_offline: called when the network goes (the link drops: the broker sends the
            Last Will) and comes back; ``None`` when the link cannot model it.
    """

    poll_s = 1.0
    boot_s = 3.0

    def __init__(
        self,
        implant: Implant,
        sender: EnvelopeSender,
        clock: Clock,
        *,
        every_s: float = 86400.0,
        first_at: float = 60.0,
        offline: list[Window] | None = None,
        on_offline: Callable[[bool], None] | None = None,
    ) -> None:
        self.implant = implant
        self.sender = sender
        self.clock = clock
        self.every_s = every_s
        self.first_at = first_at
        self.offline = sorted(offline or [], key=lambda w: w.start)
        self._on_offline = on_offline
        self.state = State.OFF
        self.transitions: list[Transition] = []
        self._queue: list[ImplantBody] = []
        self._next_scheduled = first_at
        self._offline_since: float | None = None
        self._timer: TimerHandle | None = None
        self._remote_requests: list[float] = []
        self.sessions_sent: list[ImplantBody] = []

    @property
    def device_id(self) -> str:
        return self.implant.implant_id

    def _go(self, dst: State, reason: str) -> None:
        if dst is not self.state:
            self.transitions.append(Transition(self.clock.now(), self.state, dst, reason))
            self.state = dst

    def start(self) -> None:
        self._go(State.BOOT, "power on")
        self._timer = self.clock.call_later(self.boot_s, self._boot)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._go(State.OFF, "power off")

    def request_remote(self, at: float) -> None:
        """A patient-initiated transmission at ``at`` (754051)."""
        self._remote_requests.append(at)

    def _boot(self) -> None:
        self._go(State.HELLO, "booted")
        self.sender.send(
            BirthBody(
                v=1,
                kind="implant_transmitter",
                model="SIM-TX home monitor",
                manufacturer="SAMU simulator",
                serial=f"TX{self.implant.serial}"[:32],
                firmware="3.1.0",
                format=None,
            ),
            retain=True,
        )
        self._go(State.MEASURING, "birth sent")
        self._tick()

    def _is_offline(self, t: float) -> bool:
        return any(w.start <= t < w.end for w in self.offline)

    def _tick(self) -> None:
        t = self.clock.now()
        self.implant.step(t)
        offline = self._is_offline(t)
        if offline and self.state is not State.DISCONNECTED:
            self._go(State.DISCONNECTED, "network lost")
            self._offline_since = t
            if self._on_offline is not None:
                self._on_offline(True)
        elif not offline and self.state is State.DISCONNECTED:
            self._go(State.RECONNECTING, "network back")
            if self._on_offline is not None:
                self._on_offline(False)
            away = t - (self._offline_since or t)
            self._offline_since = None
            self.implant._raise(  # the transmitter's own alert, reported like the implant's
                Alert("transmitter_disconnected", t, detail=f"offline for {away / 60:.0f} min")
            )
            self._go(State.MEASURING, "reconnected")
        alerts = self.implant.take_alerts()
        if alerts:
            self._session(SESSION_ALERT, alerts)
        if t >= self._next_scheduled:
            self._next_scheduled += self.every_s
            self._session(SESSION_SCHEDULED, [])
        while self._remote_requests and self._remote_requests[0] <= t:
            self._remote_requests.pop(0)
            self._session(SESSION_REMOTE, [])
        if self.state is not State.DISCONNECTED:
            self._drain()
        self._timer = self.clock.call_later(self.poll_s, self._tick)

    def _session(self, kind: int, alerts: list[Alert]) -> None:
        self._queue.append(self.session_body(kind, alerts))
        self.implant.reset_counters()

    def _drain(self) -> None:
        for body in self._queue:
            self.sender.send(body)
            self.sessions_sent.append(body)
        self._queue.clear()

    # -- the body -----------------------------------------------------------------------------
    def _time(self, t: float) -> datetime:
        return self.sender.now() - timedelta(seconds=max(0.0, self.clock.now() - t))

    def session_body(self, kind: int, alerts: list[Alert]) -> ImplantBody:
        imp = self.implant
        s = imp.state
        t = self.clock.now()
        obs = [
            ImplantObservation(term="MDC_IDC_MSMT_BATTERY_STATUS", value=s.battery_status),
            ImplantObservation(
                term="MDC_IDC_MSMT_BATTERY_REMAINING_LONGEVITY",
                value=round(s.longevity_months, 1),
                unit="mo",
            ),
        ]
        if s.rrt_trigger:
            obs.append(
                ImplantObservation(term="MDC_IDC_MSMT_BATTERY_RRT_TRIGGER", value=s.rrt_trigger)
            )
        for lead, ohms in s.impedances.items():
            obs.append(
                ImplantObservation(term=LEAD_TERMS[lead], value=float(round(ohms)), unit="Ohm")
            )
        if imp.can_shock:
            obs.append(
                ImplantObservation(
                    term="MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT",
                    value=float(s.shocks_recent),
                    unit="1",
                )
            )
        obs.append(
            ImplantObservation(
                term="MDC_IDC_STAT_TACHYTHERAPY_ATP_DELIVERED_RECENT",
                value=float(s.atp_recent),
                unit="1",
            )
        )
        obs.append(
            ImplantObservation(
                term="MDC_IDC_STAT_ATAF_BURDEN_PERCENT",
                value=round(imp.af_burden_pct(t), 2),
                unit="%",
            )
        )
        day_ago = t - 86400.0
        episodes = [self._episode(e) for e in imp.episodes if e.start >= day_ago][-64:]
        return ImplantBody(
            v=1,
            patient=None,
            device=ImplantDevice(
                type=imp.type_code,  # type: ignore[arg-type]
                model=imp.model,
                serial=imp.serial,
                manufacturer="SAMU simulator",
            ),
            session=ImplantSession(type=kind, time=self.sender.now()),  # type: ignore[arg-type]
            observations=tuple(obs),
            episodes=tuple(episodes),
            alerts=tuple(self._alert(a) for a in alerts),
        )

    def _episode(self, e: Episode) -> ImplantEpisode:
        return ImplantEpisode(
            id=e.id,
            type=e.type,
            time=self._time(e.start),
            duration_s=e.duration_s,
            therapy=e.therapy,
            shocks=e.shocks,
            result=e.result,
        )

    def _alert(self, a: Alert) -> ImplantAlert:
        return ImplantAlert(
            code=a.code,  # type: ignore[arg-type]
            time=self._time(a.t),
            lead=a.lead,  # type: ignore[arg-type]
            ohms=a.ohms,
            episodes_24h=a.episodes_24h,
            af_burden_pct=a.af_burden_pct,
            detail=a.detail,
        )
