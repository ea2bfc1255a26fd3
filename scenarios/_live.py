"""A scenario played on the wall clock into a running hub: the embedded demo's engine.

Where :class:`~scenarios.InprocReplay` steps a virtual clock as fast as it can, this
plays the scenario in real time (``speed`` × wall clock) on a
:class:`~firmware_sim.RealClock`, its senders publishing through a real broker (one
:class:`~transport.MqttLink` each, as EHPAD gateways and implant transmitters do) or,
when no broker is given, onto an in-process bus the hub reads. The hub is the same
:class:`~console.services.Hub` as ``samu hub``: the same ingest, cases, triage and store.

The senders' keys are fresh (random), enrolled in the database's device registry before
anything is sent, as ``samu devices enrol`` would; the simulator starts only once the
hub listens, so nothing published is lost to a subscription not yet made.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from console.records import AuditContext
from console.services import Hub, Services
from firmware_sim import KeyStore, RealClock
from scenarios._build import ScenarioRun, build_scenario, inproc_links
from scenarios._model import Scenario
from scenarios._replay import senders_of
from transport import BrokerConfig, InprocBus, MessageLink, MqttLink, OutMessage


class LiveRun:
    """One scenario, live, into one hub (see the module docstring).

    Args:
        scenario: what to play.
        services: the assembled system the hub runs on.
        broker: the broker both sides use; ``None`` for the in-process bus.
        centre: the centre id of case ids.
        speed: simulated seconds per wall-clock second.
        log: where the hub writes its JSON lines (never a TUI's stdout).
    """

    def __init__(
        self,
        scenario: Scenario,
        services: Services,
        *,
        broker: BrokerConfig | None,
        centre: str = "samu075",
        speed: float = 1.0,
        log: TextIO | None = None,
    ) -> None:
        self.scenario = scenario
        self.services = services
        self.broker = broker
        self.speed = speed
        self.bus = InprocBus() if broker is None else None
        if self.bus is not None:
            self.bus.keep = False
        self.hub = Hub(services, broker=broker, centre=centre, out=log, bus=self.bus)
        self.run_: ScenarioRun | None = None
        self._links: list[MqttLink] = []
        self._stop = asyncio.Event()
        #: Wall-clock epoch of simulated t = 0 (set when the simulator starts).
        self.started_at: float | None = None

    @property
    def transport(self) -> str:
        return "mqtt" if self.broker is not None else "inproc"

    def _link_factory(self) -> Callable[[str, str, Callable[[], OutMessage] | None], MessageLink]:
        if self.bus is not None:
            return inproc_links(self.bus)
        broker = self.broker
        assert broker is not None

        def factory(site: str, sender: str, will: Callable[[], OutMessage] | None) -> MqttLink:
            link = MqttLink(broker, f"sim-{site}-{sender}"[:128], will=will)
            self._links.append(link)
            return link

        return factory

    def stop(self) -> None:
        self._stop.set()

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Enrol, start the hub, start the simulator once it listens; run until
        :meth:`stop`, then stop the simulator first and the hub last."""
        clock = RealClock(self.speed)
        run = build_scenario(
            self.scenario,
            clock,
            link_for=self._link_factory(),
            transport="mqtt",
            keys=KeyStore(),
        )
        self.run_ = run
        # The console sends a video link with its own case id; here the scenario's video
        # sessions take the id of the case the core opens for their patient.
        videos = {
            f"{self.scenario.patient_site(v.patient)}/{v.patient}": session
            for v, session in zip(self.scenario.video, run.videos, strict=True)
            if v.patient
        }

        def follow_cases(events: Sequence[Any]) -> None:
            for e in events:
                if e.event == "case_opened" and e.resident_id in videos:
                    videos[e.resident_id].case = e.case_id

        self.hub.listeners.append(follow_cases)
        self.services.devices.enrol(
            AuditContext(actor="system:demo", role="system", terminal="demo"),
            senders_of(self.scenario, run),
            now=datetime.now(UTC),
        )
        hub_task = asyncio.create_task(self.hub.run(), name="hub")
        link_tasks: list[asyncio.Task[None]] = []
        try:
            ready = asyncio.create_task(self.hub.ready.wait())
            await asyncio.wait({ready, hub_task}, return_when=asyncio.FIRST_COMPLETED)
            if hub_task.done():
                ready.cancel()
                hub_task.result()  # the hub failed to start: say why
                return
            link_tasks = [
                asyncio.create_task(link.run(), name=f"sim-{link.client_id}")
                for link in self._links
            ]
            self.started_at = clock.epoch
            run.start()
            if on_ready is not None:
                on_ready()
            await self._stop.wait()
        finally:
            run.sim.close()
            for link in self._links:
                link.stop()
            if link_tasks:
                _, pending = await asyncio.wait(link_tasks, timeout=5.0)
                for task in pending:
                    task.cancel()
            self.hub.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await hub_task
