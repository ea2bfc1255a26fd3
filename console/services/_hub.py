"""``samu hub``: the régulation core running headless on the wall clock.

One asyncio loop hosts everything in a :class:`asyncio.TaskGroup`: the MQTT subscriber
(persistent session, PUBACK after commit), the triage tick, the store's periodic
checkpoint and the retained-checkpoint publisher. Every call into the core — a received
batch, a tick — runs on **one** worker thread (the single writer), so the case book's
state is never touched by two threads and the loop never blocks on SQLite.

Latency of an alarm (issue 14): a batch is verified, stored, applied to the cases *and*
its residents triaged in one transaction (``RegulationCore.receive(..., triage=True)``),
so a value crossing into P1/P0 is on the board stream as soon as its batch is
committed, not at the next tick; the tick keeps the rest (freshness, de-escalation,
routine changes). One durable commit per batch (``synchronous=FULL`` is kept: these
are health records, and a PUBACK promises the message is on disk); under load the
batches grow by themselves (what arrived while the writer was busy, up to
``hub.batch_max``), so the commit cost is shared by more messages. Serial lines are
group-committed the same way (:meth:`Hub._on_frames`).

Each :class:`~console.cases.CaseEvent` is logged as one JSON object per line on stdout
(``event``: ``started``, ``case_opened``, ``priority_changed``, ``implant_alert``,
``quarantined``, ``incident``, ``stopped`` …). SIGINT/SIGTERM stop it: the batch in hand
is committed and acknowledged, a checkpoint is written, ``stopped`` is logged, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TextIO

from console.ingest import Incoming, Quarantined, SerialReader, SerialSource, iso
from console.services._api import RegulationService
from console.services._compose import Services
from console.services._core import RegulationCore
from protocols.topics import hub_filters
from transport import BrokerConfig, BusMessage, InprocBus, MqttSubscriber, Received

#: Reload enrolled keys at most this often when unknown devices speak.
KEY_RELOAD_S = 5.0


class Hub:
    """Ingest, triage tick and store, headless (see the module docstring)."""

    def __init__(
        self,
        services: Services,
        *,
        broker: BrokerConfig | None,
        centre: str,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        serial: Sequence[tuple[SerialSource, int]] = (),
        bus: InprocBus | None = None,
    ) -> None:
        self.services = services
        self._bus = bus
        self._inbox: asyncio.Queue[Received] = asyncio.Queue()
        self._serial = list(serial)
        self.readers: list[SerialReader] = []
        #: Serial lines waiting for the next group commit (see :meth:`_on_frames`).
        self._lines: list[tuple[SerialSource, Sequence[object], float, asyncio.Future[None]]] = []
        self._committing_lines = False
        self.broker = broker
        self.centre = centre
        self._out = out or sys.stdout
        self._clock = clock
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="samu-writer")
        self._stop = asyncio.Event()
        self._last_reload = 0.0
        self.core: RegulationCore | None = None
        self.subscriber: MqttSubscriber | None = None
        #: The service API on this hub's core (its board deltas fed by every batch/tick).
        self.api: RegulationService | None = None
        #: Set once the core is up and every source listens (the broker subscription
        #: made): what an in-process simulator waits for before it starts publishing.
        self.ready = asyncio.Event()
        #: Called on the event loop with every batch of events the hub logs.
        self.listeners: list[Callable[[Sequence[Any]], None]] = []

    def log(self, event: str, **fields: Any) -> None:
        """One line per event: JSON (the default, cases.md) or text (``SAMU_LOG_FORMAT``)."""
        line = {"event": event, "at": iso(self._clock()), **fields}
        if self.services.settings.log_format == "text":
            rest = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            self._out.write(f"{line['at']} {event} {rest}".rstrip() + "\n")
        else:
            self._out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self._out.flush()

    def stop(self) -> None:
        self._stop.set()
        if self.subscriber is not None:
            self.subscriber.stop()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def _on_batch(self, batch: list[Received]) -> None:
        assert self.core is not None
        items = [Incoming(r.topic, r.payload, r.at) for r in batch if r.payload]
        got = await self._call(partial(self.core.receive, items, triage=True))
        unknown = any(
            isinstance(o, Quarantined) and o.reason == "unknown_device" for o in got.outcomes
        )
        self._emit(got.events)
        if unknown and self._clock() - self._last_reload >= KEY_RELOAD_S:
            self._last_reload = self._clock()
            await self._call(self.core.reload_keys)

    def _on_bus(self, msg: BusMessage) -> None:
        self._inbox.put_nowait(Received(msg.topic, msg.payload, msg.retain, self._clock()))

    async def _bus_ingest(self) -> None:
        """The in-process bus in batches, as the MQTT subscriber delivers them (the
        embedded demo without a broker binary)."""
        batch_max = self.services.settings.hub.batch_max
        while not self._stop.is_set():
            getter = asyncio.ensure_future(self._inbox.get())
            stopper = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not getter.done():
                getter.cancel()
                break
            batch = [getter.result()]
            while len(batch) < batch_max and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            await self._on_batch(batch)

    async def _on_frames(self, source: SerialSource, items: Sequence[object], now: float) -> None:
        """A reader's frames, committed with those of every reader that read meanwhile.

        Group commit: the first reader to arrive while no serial commit is running
        commits for everyone (:meth:`RegulationCore.receive_lines`, one durable commit
        and one triage for all the lines), and keeps committing what arrived during
        each commit until nothing waits; every reader returns once its own frames are
        committed (a reader reads on only then: back-pressure). A thousand bedside
        lines at 1 Hz thus cost a few commits a second instead of a thousand. The lines
        of one commit share its arrival time: the newest of theirs.
        """
        assert self.core is not None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lines.append((source, items, now, done))
        if not self._committing_lines:
            self._committing_lines = True
            try:
                while self._lines:
                    group, self._lines = self._lines, []
                    try:
                        got = await self._call(
                            partial(
                                self.core.receive_lines,
                                [(s, i) for s, i, _, _ in group],
                                max(t for _, _, t, _ in group),
                                triage=True,
                            )
                        )
                    except BaseException as exc:
                        for *_, fut in group:
                            if fut is done or fut.done():
                                continue
                            if isinstance(exc, asyncio.CancelledError):
                                fut.cancel()
                            else:
                                fut.set_exception(exc)
                        raise
                    self._emit([e for r in got for e in r.events])
                    for *_, fut in group:
                        if not fut.done():
                            fut.set_result(None)
            finally:
                self._committing_lines = False
        await done

    async def _on_serial_state(self, source: SerialSource, state: str, now: float) -> None:
        assert self.core is not None
        self._emit(await self._call(self.core.serial_state, source, state, now))

    def _emit(self, events: Sequence[Any]) -> None:
        for e in events:
            self.log(e.event, **{k: v for k, v in e.as_log().items() if k != "event"})
        if self.api is not None and events:
            self.api.publish(events)
        for listener in self.listeners:
            listener(events)

    def _register_serial(self) -> None:
        """Serial devices are counted like enrolled ones (their key is never used: the
        wire to the hub is their trusted path)."""
        from datetime import UTC, datetime

        from console.ingest import Sender
        from console.records import AuditContext

        known = {(d.site, d.device) for d in self.services.devices.list()}
        new = [
            Sender(s.site, s.device, f"serial:{s.format}", s.patient)
            for s, _ in self._serial
            if (s.site, s.device) not in known
        ]
        if new:
            self.services.devices.enrol(
                AuditContext(actor="system:hub", role="system", terminal="hub"),
                new,
                now=datetime.now(UTC),
            )

    async def _ticks(self) -> None:
        assert self.core is not None
        period = self.services.settings.triage.tick_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._emit(await self._call(self.core.tick, self._clock()))
            await self._call(self.services.store.tick)
            next_at += period
            delay = max(0.0, next_at - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def run(self) -> None:
        """Run until :meth:`stop` (signals are the caller's to wire)."""
        settings = self.services.settings
        self.core = await self._call(
            lambda: RegulationCore(self.services, now=self._clock(), centre=self.centre)
        )
        self.api = RegulationService(self.services, run=self._call)
        if self._serial:
            await self._call(self._register_serial)
            await self._call(self.core.reload_keys)
        self.readers = [
            SerialReader(source, self._on_frames, self._on_serial_state, baudrate=baud)
            for source, baud in self._serial
        ]
        publisher = None
        if self._bus is not None:
            for pattern in hub_filters():
                self._bus.subscribe(pattern, self._on_bus)
        if self.broker is not None:
            from console.records import CheckpointPublisher, checkpoint_topic

            topic = settings.mqtt.checkpoint_topic or checkpoint_topic(self.centre)
            publisher = CheckpointPublisher(self.broker, topic, store=self.services.store)
            self.services.store.add_checkpoint_listener(publisher)
            client_id = settings.mqtt.client_id or f"samu-hub-{self.centre}"
            self.subscriber = MqttSubscriber(
                self.broker,
                client_id,
                hub_filters(),
                self._on_batch,
                session_expiry_s=settings.mqtt.session_expiry_s,
                batch_max=settings.hub.batch_max,
                batch_wait_s=settings.hub.batch_wait_s,
                on_connect=self.ready.set,
            )
        self.log(
            "started",
            db=str(self.services.db_path),
            centre=self.centre,
            mqtt=self.broker.display if self.broker else None,
            serial=[s.url for s, _ in self._serial],
            cases_open=len(self.core.cases.open_cases()),
        )
        if self.subscriber is None:
            self.ready.set()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._ticks(), name="triage-tick")
                if self.subscriber is not None:
                    tasks.create_task(self.subscriber.run(), name="mqtt-ingest")
                if self._bus is not None:
                    tasks.create_task(self._bus_ingest(), name="bus-ingest")
                if publisher is not None:
                    tasks.create_task(publisher.run(), name="checkpoint-publisher")
                for reader in self.readers:
                    tasks.create_task(reader.run(), name=f"serial-{reader.source.device}")
                await self._stop.wait()
                for reader in self.readers:
                    reader.stop()
                if self.subscriber is not None:
                    self.subscriber.stop()
                checkpoint = await self._call(self.services.store.checkpoint)
                if publisher is not None:
                    await publisher.close()
        finally:
            self._writer.shutdown(wait=True)
        self.log(
            "stopped",
            received=self.subscriber.stats.received if self.subscriber else 0,
            acked=self.subscriber.stats.acked if self.subscriber else 0,
            checkpoint=checkpoint.tree_size if checkpoint is not None else None,
        )
