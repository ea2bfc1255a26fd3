"""Replaying a scenario through real transports: pty pairs, a real Mosquitto.

:class:`WiredReplay` is :class:`~scenarios.InprocReplay` (same virtual clock, same
core, same per-step commit) with the wire made real:

* ``serial`` — every device the scenario wires by serial line writes to the master of a
  real pseudo-terminal pair (``os.openpty``, raw mode); the core's own serial path, a
  :class:`~console.ingest.SerialReader` (pyserial on the slave path, the same as
  ``samu hub --serial``), reads and decodes it. MQTT senders stay on the in-process bus.
* ``mqtt`` — every MQTT sender (EHPAD gateways, implant transmitters, video gateway,
  nurse stations) publishes through its own :class:`~transport.MqttLink` (QoS 1, outbox,
  Last Will registered with the broker) to a real Mosquitto; the core's side subscribes
  to the hub's filters with manual acknowledgements and sends each PUBACK only after the
  step's batch is committed, as the hub does. Serial-wired devices stay in process.

The two are orthogonal on purpose: a scenario means the same thing on every transport
(a device the scenario puts on a serial line is still on one), so its expectations, and
the report, are the same; only the path of the bytes changes.

**Why results stay deterministic at ``--speed max``.** The virtual clock advances one
step (1 s) at a time and stands still while the step's traffic is in flight. Each step:

1. the simulator runs to ``t``; every message a sender publishes is recorded, in
   publication order, as *expected* (a message published while its link is offline is
   expected when the link comes back; the Last Will the broker holds is expected when a
   link drops), and every byte written to a pty is fed to a shadow decoder of the
   line's format, which counts the frames the reader will decode;
2. the pty bytes are written (never dropped: the writer waits when the kernel buffer is
   full) and the engine waits — on arrivals, not on a timer — until the subscriber holds
   every expected message and each reader has decoded as many frames as its shadow;
3. the step is committed exactly as in process: the messages as one batch in
   publication order (whatever order the broker interleaved them in), then every
   line's frames as one batch (lines in a fixed order), then the triage tick, all at
   simulated time ``t``; then the PUBACKs.

So batch boundaries and order never depend on scheduling, and the same seed gives the
same report and ``store_sha256`` on every run (a message the broker redelivers — only
possible around a simulated network cut — is committed after the expected ones and
dropped by ingest as a duplicate). A step whose traffic does not arrive within
``timeout_s`` of wall time fails the replay with :class:`TransportStallError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from console.ingest import DEFAULT_BAUD, SerialReader, SerialSource
from console.services import Services
from firmware_sim import ByteSink, DeviceSpec
from firmware_sim.transports import PtyPort
from protocols.codecs import get_codec
from protocols.topics import hub_filters
from scenarios._build import LinkFactory
from scenarios._model import Scenario
from scenarios._replay import InprocReplay, ReplayResult, Step
from transport import (
    BrokerConfig,
    MqttError,
    MqttLink,
    OutMessage,
    ack,
    client_for,
    manual_acks,
    settle,
)

TRANSPORTS = ("serial", "mqtt")


class TransportStallError(RuntimeError):
    """A step's traffic did not arrive in time (the message says what is missing)."""


class _RecordedLink:
    """A sender's real MQTT link whose publications are also recorded as expected."""

    def __init__(self, link: MqttLink, expect: Callable[[str, bytes], None]) -> None:
        self.link = link
        self._expect = expect
        self._offline = False
        self._held: list[tuple[str, bytes]] = []
        #: The Last Will registered at the latest connection (what the broker will send).
        self.last_will: OutMessage | None = None

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.link.publish(topic, payload, retain=retain)
        if self._offline:
            self._held.append((topic, payload))
        else:
            self._expect(topic, payload)

    def set_offline(self, offline: bool) -> None:
        if offline and not self._offline and self.last_will is not None:
            self._expect(self.last_will.topic, self.last_will.payload)
        self._offline = offline
        self.link.set_offline(offline)
        if not offline:
            held, self._held = self._held, []
            for topic, payload in held:
                self._expect(topic, payload)


class _PtyLine(PtyPort):
    """A serial-wired device's line: a real pty pair, written without loss.

    The device writes into ``pending`` (it must never block); the engine moves the bytes
    to the master between steps, waiting while the kernel buffer is full, so nothing is
    dropped and what the reader decodes does not depend on how fast it reads.
    """

    def __init__(self, fmt: str) -> None:
        super().__init__()  # the pair, raw, master non-blocking (firmware_sim's PtyPort)
        self.pending = bytearray()
        self._shadow = get_codec(fmt).decoder()
        #: Frames the reader will have decoded once every written byte is read.
        self.expected = 0
        self.decoded: list[object] = []
        self.taken = 0

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        self.pending += data
        self.expected += len(self._shadow.feed(data))

    async def drain(self) -> None:
        while self.pending:
            try:
                n = os.write(self._master, self.pending[:4096])
            except BlockingIOError:
                n = 0
            if n:
                del self.pending[:n]
            else:
                await asyncio.sleep(0.001)  # the reader has not emptied the buffer yet

    def take(self) -> list[object]:
        items = self.decoded[self.taken : self.expected]
        self.taken = self.expected
        return items

    def close(self) -> None:
        """The line stays up for the whole replay: the engine closes it at the end."""

    def release(self) -> None:
        PtyPort.close(self)


class _Inbox:
    """The core's MQTT side: the hub's filters, QoS 1, PUBACK only after the commit."""

    def __init__(self, broker: BrokerConfig, client_id: str, progress: asyncio.Event) -> None:
        self.broker = broker
        self.client_id = client_id
        self._progress = progress
        self._by_key: dict[tuple[str, bytes], deque[Any]] = {}
        self._order: deque[Any] = deque()
        self.client: Any = None
        self.ready = asyncio.Event()
        self.received = 0

    async def run(self) -> None:
        # Receive Maximum at its ceiling: a whole step is held unacknowledged until its
        # commit, and the broker must not stop sending before the step is complete.
        client = client_for(self.broker, self.client_id, receive_maximum=65535)
        manual_acks(client)
        try:
            async with client:
                self.client = client
                for topic in hub_filters():
                    await client.subscribe(topic, qos=1)
                self.ready.set()
                async for m in client.messages:
                    self.received += 1
                    key = (str(m.topic), bytes(m.payload or b""))
                    self._by_key.setdefault(key, deque()).append(m)
                    self._order.append(m)
                    self._progress.set()
        finally:
            settle(client)

    def has(self, needed: dict[tuple[str, bytes], int]) -> bool:
        return all(len(self._by_key.get(k, ())) >= n for k, n in needed.items())

    def take(self, expected: Sequence[tuple[str, bytes]]) -> list[Any]:
        """The expected messages in publication order, then anything else that came."""
        out = []
        for key in expected:
            out.append(self._by_key[key].popleft())
        taken = {id(m) for m in out}
        extras = [m for m in self._order if id(m) not in taken]
        self._order.clear()
        self._by_key.clear()
        return out + extras

    def ack(self, messages: Sequence[Any]) -> None:
        for m in messages:
            ack(self.client, m)


class WiredReplay(InprocReplay):
    """One scenario into one core through ptys or a broker (see the module docstring).

    Args:
        transport: ``serial`` or ``mqtt``.
        broker: the broker for ``mqtt`` (e.g. a :class:`~transport.ThrowawayBroker`'s).
        speed: ``None`` as fast as possible, else simulated seconds per wall second.
        timeout_s: wall seconds a step's traffic may take before the replay fails.
    """

    def __init__(
        self,
        scenario: Scenario,
        services: Services,
        *,
        transport: str,
        broker: BrokerConfig | None = None,
        step_s: float = 1.0,
        speed: float | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport {transport!r}: one of {', '.join(TRANSPORTS)}")
        if transport == "mqtt" and broker is None:
            raise ValueError("the mqtt transport needs a broker")
        self.transport = transport
        self.broker = broker
        self.timeout_s = timeout_s
        self._expected: list[tuple[str, bytes]] = []
        self._links: dict[tuple[str, str], _RecordedLink] = {}
        self._lines: list[_PtyLine] = []
        self._tag = f"{os.getpid()}-{id(self) & 0xFFFF:04x}"
        super().__init__(scenario, services, step_s=step_s, speed=speed)

    # -- wiring (called while the scenario is built) -------------------------------------
    def _link_factory(self) -> LinkFactory:
        if self.transport != "mqtt":
            return super()._link_factory()
        broker = self.broker
        assert broker is not None

        def expect(topic: str, payload: bytes) -> None:
            if payload:
                self._expected.append((topic, payload))

        def factory(site: str, sender: str, will: Callable[[], OutMessage] | None) -> _RecordedLink:
            # One connection per sender id, as in the field (several bilans of a site
            # all come from its nurse station): a second client with the same id would
            # take the first one's session over.
            known = self._links.get((site, sender))
            if known is not None:
                return known
            holder: list[_RecordedLink] = []

            def recorded_will() -> OutMessage:
                assert will is not None
                w = will()
                holder[0].last_will = w
                return w

            link = MqttLink(
                broker,
                f"replay-{self._tag}-{site}-{sender}"[:128],
                will=recorded_will if will is not None else None,
            )
            wrapped = _RecordedLink(link, expect)
            holder.append(wrapped)
            self._links[(site, sender)] = wrapped
            return wrapped

        return factory

    def _wire(self, spec: DeviceSpec) -> ByteSink:
        if self.transport != "serial":
            return super()._wire(spec)
        line = _PtyLine(spec.fmt)
        source = SerialSource(line.path, spec.fmt, spec.site, spec.device_id, spec.patient)
        self._wired[spec.device_id] = (line, source, None)
        self._lines.append(line)
        return line

    # -- running -------------------------------------------------------------------------
    def run(self, on_step: Callable[[Step], None] | None = None) -> ReplayResult:
        return asyncio.run(self._run(on_step))

    async def _until(self, ready: Callable[[], bool], what: Callable[[], str], t: float) -> None:
        """Wait for a condition that arrivals make true (``_progress`` is set by each)."""
        deadline = time.monotonic() + self.timeout_s
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportStallError(f"{self.transport}: at t={t:g} s, {what()}")
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=min(left, 0.5))

    async def _run(self, on_step: Callable[[Step], None] | None) -> ReplayResult:
        self._progress = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        inbox: _Inbox | None = None
        readers: list[SerialReader] = []
        try:
            if self.transport == "mqtt":
                assert self.broker is not None
                inbox = _Inbox(self.broker, f"replay-{self._tag}-core", self._progress)
                tasks.append(asyncio.create_task(inbox.run(), name="replay-inbox"))
                await self._started(inbox.ready.wait(), tasks, "the subscription")
                links = [w.link for w in self._links.values()]
                tasks += [asyncio.create_task(link.run(), name=link.client_id) for link in links]
                for link in links:
                    await self._started(link.wait_connected(), tasks, link.client_id)
            for line, source, _ in self._wired.values():
                if isinstance(line, _PtyLine):
                    readers.append(self._reader(line, source))
            tasks += [asyncio.create_task(r.run(), name=r.source.device) for r in readers]
            await self._until(lambda: all(r.connected for r in readers), lambda: "ptys", 0.0)
            return await self._steps(on_step, inbox)
        finally:
            for wrapped in self._links.values():
                wrapped.link.stop()  # a clean goodbye: the broker sends no will
            for r in readers:
                r.stop()
            others = [task for task in tasks if task.get_name() != "replay-inbox"]
            if others:
                await asyncio.wait(others, timeout=5.0)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, MqttError):
                    await task
            self.run_.sim.close()
            for line in self._lines:
                line.release()

    async def _started(
        self, ready: Awaitable[Any], tasks: list[asyncio.Task[None]], what: str
    ) -> None:
        """Wait until ``ready``; a task that died meanwhile says why (broker refused…)."""
        waiter = asyncio.ensure_future(ready)
        done, _ = await asyncio.wait(
            {waiter, *tasks}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter in done:
            return
        waiter.cancel()
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise TransportStallError(f"{self.transport}: {what}: {exc}") from exc
        raise TransportStallError(f"{self.transport}: {what}: not up within {self.timeout_s:g} s")

    def _reader(self, line: _PtyLine, source: SerialSource) -> SerialReader:
        async def on_items(_source: SerialSource, items: Sequence[object], _now: float) -> None:
            line.decoded.extend(items)
            self._progress.set()

        async def on_state(_source: SerialSource, _state: str, _now: float) -> None:
            self._progress.set()  # the line stays up for the whole replay (ptys we own)

        return SerialReader(
            source, on_items, on_state, baudrate=DEFAULT_BAUD.get(source.format, 9600)
        )

    async def _steps(
        self, on_step: Callable[[Step], None] | None, inbox: _Inbox | None
    ) -> ReplayResult:
        duration = self.scenario.scenario.duration
        self.run_.start()
        result = ReplayResult(self.scenario, [], self.run_)
        started = time.monotonic()
        lines = self._lines
        t = 0.0
        while t < duration:
            t = min(duration, t + self.step_s)
            if self.speed is not None:
                delay = started + t / self.speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.clock.run_until(t)
            for line in lines:
                await line.drain()
            await self._until(
                lambda: all(len(x.decoded) >= x.expected for x in lines),
                functools.partial(_undecoded, lines),
                t,
            )
            frames = [
                (src, port.take() if isinstance(port, _PtyLine) else dec.feed(port.read()))
                for port, src, dec in self._wired.values()
            ]
            if inbox is None:
                batch, self._inbox[:] = list(self._inbox), []
                step = self._commit(result, t, [(m.topic, m.payload) for m in batch], frames)
            else:
                expected, self._expected = self._expected, []
                needed: dict[tuple[str, bytes], int] = {}
                for key in expected:
                    needed[key] = needed.get(key, 0) + 1
                await self._until(
                    functools.partial(inbox.has, needed),
                    functools.partial(_undelivered, inbox, needed),
                    t,
                )
                got = inbox.take(expected)
                messages = [(str(m.topic), bytes(m.payload or b"")) for m in got]
                step = self._commit(
                    result, t, messages, frames, acked=functools.partial(inbox.ack, got)
                )
            if on_step is not None:
                on_step(step)
        return result


def _undelivered(inbox: _Inbox, needed: dict[tuple[str, bytes], int]) -> str:
    missing = [k for k, n in needed.items() if not inbox.has({k: n})]
    topics = sorted({topic for topic, _ in missing})
    return f"{len(missing)} published message(s) never delivered (topics: {', '.join(topics)})"


def _undecoded(lines: Sequence[_PtyLine]) -> str:
    """Which lines fell short, and who else has them open: a pty's bytes go to whichever
    reader reads first, so a stray process still opening an old ``/dev/pts/N`` path (a
    stale serial reader retrying) steals frames — named here, since it is not ours."""
    parts = []
    for x in lines:
        if len(x.decoded) >= x.expected:
            continue
        part = f"{x.path}: {len(x.decoded)}/{x.expected} frame(s) decoded"
        others = _holders(x.path)
        if others:
            part += f" (also open in {', '.join(others)})"
        parts.append(part)
    return "; ".join(parts)


def _holders(path: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == path for fd in (proc / "fd").iterdir()):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"pid {proc.name}: {cmd.strip()[:80]}")
    return found
