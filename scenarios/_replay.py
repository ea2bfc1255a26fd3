"""Replaying a scenario into the real console core, on a virtual clock.

The simulator runs the scenario on a :class:`~firmware_sim.VirtualClock`, one step of
``step_s`` (1 s, the triage tick) at a time; every message its senders published during
the step reaches :meth:`~console.services.RegulationCore.receive` with the simulated
arrival time, then the core ticks. Nothing is mocked: the same ingest, cases, triage and
store as ``samu hub``, the keys enrolled in the database's device registry as
``samu devices enrol`` does. Serial bedside devices go through the EHPAD gateway onto the
bus, as in an EHPAD, when the scenario says ``transport = "mqtt"``; the others are wired to
the core by serial line and read by it as ``samu hub --serial`` does.

What the core concluded at each step is kept in :class:`Step` s (suggested priority,
NEWS2, qSOFA per scenario patient, and the events), which the expectation checks read.

``speed``: ``None`` steps as fast as the machine goes (``--speed max``); a number paces
each step to ``speed`` simulated seconds per wall-clock second (scaled real time). The
pacing only waits before a step: what is committed, and so the report and the digest,
are the same at any speed. The real transports (:class:`~scenarios.WiredReplay`) reuse
this engine and only change how messages and bytes travel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.cases import CaseEvent
from console.ingest import Incoming, Quarantined, Sender, SerialSource
from console.records import AuditContext
from console.services import RegulationCore, Services
from firmware_sim import ByteSink, DeviceSpec, VirtualClock
from firmware_sim.transports import BusMessage, InprocBus, InprocPort
from firmware_sim.video import VIDEO_GATEWAY
from protocols.codecs import get_codec
from scenarios._build import (
    NURSE_STATION,
    LinkFactory,
    ScenarioRun,
    build_scenario,
    inproc_links,
)
from scenarios._model import Scenario


@dataclass(frozen=True)
class PatientState:
    priority: str
    news2: int | None
    qsofa: int | None
    case_id: str | None


@dataclass
class Step:
    """What the core concluded at simulated time ``t`` (seconds from the start)."""

    t: float
    patients: dict[str, PatientState]
    events: list[CaseEvent] = field(default_factory=list)


@dataclass
class ReplayResult:
    scenario: Scenario
    steps: list[Step]
    run: ScenarioRun
    received: int = 0
    #: Envelope ids the transport delivered (and so acknowledged), and those ingest
    #: quarantined: ``no_loss`` checks that every other one was stored exactly once.
    delivered: set[str] = field(default_factory=set)
    quarantined: set[str] = field(default_factory=set)


def senders_of(scenario: Scenario, run: ScenarioRun) -> list[tuple[Sender, bytes]]:
    """Every sender the built scenario signs with, and its key, for enrolment."""
    kinds: dict[tuple[str, str], tuple[str, str | None]] = {}
    site = scenario.scenario.site
    for d in scenario.devices:
        kinds[(d.site or site, d.id)] = (d.kind, d.patient)
    for imp in scenario.implants:
        kinds[(imp.site or site, imp.id)] = (imp.type, imp.patient)
    out = []
    for s, device, key in run.keys.items():
        default = (
            NURSE_STATION
            if device == NURSE_STATION
            else VIDEO_GATEWAY
            if device.startswith(VIDEO_GATEWAY)
            else "gateway"
        )
        kind, patient = kinds.get((s, device), (default, None))
        out.append((Sender(s, device, kind, patient), key))
    return out


class InprocReplay:
    """One scenario into one core (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        services: Services,
        *,
        transport: str | None = None,
        step_s: float = 1.0,
        speed: float | None = None,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (None: as fast as possible)")
        self.scenario = scenario
        self.services = services
        self.step_s = step_s
        self.speed = speed
        self.clock = VirtualClock()
        self.bus = InprocBus()
        self.bus.keep = False
        self._inbox: list[BusMessage] = []
        self.bus.subscribe("samu/v1/#", self._inbox.append)
        self._wired: dict[str, tuple[Any, SerialSource, Any]] = {}
        self.run_ = build_scenario(
            scenario,
            self.clock,
            link_for=self._link_factory(),
            sink_for=self._wire,
            transport=transport,
        )
        wired = [
            Sender(src.site, src.device, f"serial:{src.format}", src.patient)
            for _, src, _ in self._wired.values()
        ]
        services.devices.enrol(
            AuditContext(actor="system:replay", role="system", terminal="replay"),
            [*senders_of(scenario, self.run_), *wired],
            now=datetime.fromtimestamp(self._wall(0.0), UTC),
        )
        self.core = RegulationCore(services, now=self._wall(0.0))
        self._patients = {p.id: f"{scenario.patient_site(p.id)}/{p.id}" for p in scenario.patients}

    def _link_factory(self) -> LinkFactory:
        """How MQTT senders publish: onto the in-process bus (a subclass: a broker)."""
        return inproc_links(self.bus)

    def _wire(self, spec: DeviceSpec) -> ByteSink:
        """A device the scenario wires by serial line: read by the core itself, as
        ``samu hub --serial`` does (its gatewayed devices go over MQTT instead)."""
        port = InprocPort()
        source = SerialSource(
            f"inproc://{spec.device_id}", spec.fmt, spec.site, spec.device_id, spec.patient
        )
        self._wired[spec.device_id] = (port, source, get_codec(spec.fmt).decoder())
        return port

    def _wall(self, t: float) -> float:
        return self.clock.epoch + t

    def _state(self) -> dict[str, PatientState]:
        book = self.core.cases
        out = {}
        for pid, rid in self._patients.items():
            s = book.view(rid)
            out[pid] = (
                PatientState("NR", None, None, None)
                if s is None
                else PatientState(s.priority, s.news2, s.qsofa, s.case_id)
            )
        return out

    def run(self, on_step: Callable[[Step], None] | None = None) -> ReplayResult:
        duration = self.scenario.scenario.duration
        self.run_.start()
        result = ReplayResult(self.scenario, [], self.run_)
        started = time.monotonic()
        t = 0.0
        while t < duration:
            t = min(duration, t + self.step_s)
            self._pace(started, t)
            self.clock.run_until(t)
            batch, self._inbox[:] = list(self._inbox), []
            frames = [(src, dec.feed(port.read())) for port, src, dec in self._wired.values()]
            step = self._commit(result, t, [(m.topic, m.payload) for m in batch], frames)
            if on_step is not None:
                on_step(step)
        return result

    def _pace(self, started: float, t: float) -> None:
        """Scaled real time: wait until simulated ``t`` is due on the wall clock."""
        if self.speed is not None:
            delay = started + t / self.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _commit(
        self,
        result: ReplayResult,
        t: float,
        messages: Sequence[tuple[str, bytes]],
        frames: Sequence[tuple[SerialSource, Sequence[object]]],
        acked: Callable[[], None] | None = None,
    ) -> Step:
        """One step into the core, as the hub commits it: the step's messages as one
        batch (in the order given), then every serial port's decoded frames as one
        batch (ports in the order given), then the triage tick; all at the simulated
        arrival time ``t``. ``acked`` runs once the messages are committed (a broker's
        PUBACKs go after the commit, as the hub's)."""
        now = self._wall(t)
        items = [Incoming(topic, payload, now) for topic, payload in messages if payload]
        result.received += len(items)
        ids = [_envelope_id(i.payload) for i in items]
        result.delivered.update(x for x in ids if x)
        got = self.core.receive(items)
        if acked is not None:
            acked()
        result.quarantined.update(
            x for x, o in zip(ids, got.outcomes, strict=True) if x and isinstance(o, Quarantined)
        )
        events = list(got.events)
        for line in self.core.receive_lines(frames, now):
            events += line.events
        events += self.core.tick(now)
        step = Step(t, self._state(), events)
        result.steps.append(step)
        return step


def _envelope_id(payload: bytes) -> str | None:
    """The ``id`` a message claims, when it is JSON at all (for ``no_loss``)."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
