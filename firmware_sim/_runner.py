"""The real-time runner behind ``samu sim``: ptys/sockets, MQTT links, signals.

Byte-for-byte reproducibility is the virtual clock's property (tests, ``samu replay``):
in real time the scheduler's jitter moves samples across second boundaries. ``--seed``
still fixes the residents, their courses, the artefacts and the keys, and ``--start``
fixes the device clocks' origin.

Everything is built first (so a bad SPEC, scenario or broker URL fails with a clear
message before anything is printed), then the device lines are printed and flushed, then
the simulation runs on a :class:`~firmware_sim._clock.RealClock` until SIGINT/SIGTERM or
``duration``; on the way out every MQTT sender says goodbye cleanly (no Last Will), the
gateway releases its ports and every pty is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import signal
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from firmware_sim._clock import RealClock
from firmware_sim._envelopes import EnvelopeSender, death_will
from firmware_sim._hal import ByteSink
from firmware_sim._keys import KeyStore
from firmware_sim._seeds import rng_for
from firmware_sim._sim import (
    IMPLANT_KINDS,
    DeviceSpec,
    Simulation,
    SpecError,
    profile_for,
    specs_from_cli,
)
from firmware_sim.gateway import GatewayCore, GatewayPort, SerialGateway, first_will
from firmware_sim.implants import Implant, Transmitter
from firmware_sim.physiology import NoiseSource
from firmware_sim.transports import (
    BrokerConfig,
    InprocPort,
    MqttLink,
    OutMessage,
    PtyPort,
    SocketPort,
)
from firmware_sim.video import VIDEO_GATEWAY, VideoSession, VideoStep
from protocols.topics import video_topic


class SimError(ValueError):
    """Unusable options or inputs (reported as a usage error, exit 2)."""


class BuiltScenario(Protocol):
    """What the runner needs of a built scenario (``scenarios.ScenarioRun``)."""

    @property
    def sim(self) -> Simulation: ...

    @property
    def mqtt_topics(self) -> dict[str, str]: ...

    def start(self) -> None: ...


class ScenarioPlan(Protocol):
    """A scenario the runner can build (``scenarios.SimPlan``).

    The simulator never imports :mod:`scenarios` (the replay engine there sits above
    it); the command line hands the runner a plan instead.
    """

    def serial_transports(self) -> dict[str, str]:
        """Serial device id → ``serial`` or ``socket``."""
        ...

    def build(
        self,
        clock: RealClock,
        *,
        sink_for: Callable[[DeviceSpec], ByteSink],
        link_for: Callable[[str, str, Callable[[], OutMessage] | None], MqttLink],
        keys: KeyStore,
    ) -> BuiltScenario: ...


@dataclass(frozen=True)
class RunOptions:
    site: str | None = None
    devices: list[str] | None = None
    scenario: ScenarioPlan | None = None
    mqtt: BrokerConfig | None = None
    speed: float = 1.0
    seed: int | None = None
    serial: str = "pty"
    gateway: bool = False
    duration: float | None = None
    keys: Path | None = None
    keys_out: Path | None = None
    epoch: float | None = None


#: A canned video session for ``video:mqtt`` SPECs: link, consent, a stream with one drop.
DEMO_VIDEO = [
    VideoStep(5.0, "link_sent"),
    VideoStep(20.0, "link_opened"),
    VideoStep(30.0, "consent_granted", who="family"),
    VideoStep(35.0, "stream_started"),
    VideoStep(120.0, "stream_drop", duration_s=15.0),
    VideoStep(300.0, "stream_ended"),
]


class _Links:
    """One MqttLink per MQTT sender, all run as tasks of the runner."""

    def __init__(self, broker: BrokerConfig | None) -> None:
        self.broker = broker
        self.links: list[MqttLink] = []

    def __call__(self, site: str, sender: str, will: Callable[[], OutMessage] | None) -> MqttLink:
        if self.broker is None:
            raise SimError(f"{sender} publishes over MQTT: give --mqtt URL")
        link = MqttLink(self.broker, f"sim-{site}-{sender}"[:128], will=will)
        self.links.append(link)
        return link


async def _serial_sink(kind: str) -> ByteSink:
    if kind == "socket":
        return await SocketPort.open("127.0.0.1", 0)
    return PtyPort()


async def _build(
    options: RunOptions, clock: RealClock, links: _Links, keys: KeyStore
) -> tuple[Simulation, BuiltScenario | None, list[str], list[object]]:
    # No seed: a fresh one, so a demo shows different residents each time.
    seed = options.seed if options.seed is not None else secrets.randbits(32)
    lines: list[str] = []
    extras: list[object] = []
    if options.scenario is not None:
        sinks: dict[str, ByteSink] = {}
        for device_id, transport in options.scenario.serial_transports().items():
            sinks[device_id] = await _serial_sink(
                "socket" if transport == "socket" else options.serial
            )
        try:
            run = options.scenario.build(
                clock,
                sink_for=lambda spec: sinks.pop(spec.device_id, None) or InprocPort(),
                link_for=links,
                keys=keys,
            )
        except ValueError as exc:
            raise SimError(str(exc)) from None
        sim = run.sim
        for device_id, device in sim.devices.items():
            if device_id in run.mqtt_topics:
                continue
            lines.append(f"serial {device_id} {device.format} {_url(sim.sinks[device_id])}")
        lines += [f"mqtt {name} {topic}" for name, topic in run.mqtt_topics.items()]
        return sim, run, lines, extras
    assert options.devices is not None and options.site is not None
    try:
        specs = specs_from_cli(options.devices, options.site)
    except SpecError as exc:
        raise SimError(str(exc)) from None
    from protocols.vocab import is_valid_id

    if not is_valid_id(options.site):
        raise SimError(f"--site {options.site!r}: ids are 1-64 characters of A-Z a-z 0-9 . _ -")
    sim = Simulation(clock, seed=seed)
    for spec in specs:
        if spec.is_serial:
            sim.add_serial(spec, await _serial_sink(options.serial))
    for device_id, device in sim.devices.items():
        lines.append(f"serial {device_id} {device.format} {_url(sim.sinks[device_id])}")
    site = options.site
    for spec in specs:
        if spec.kind in IMPLANT_KINDS:
            holder: list[EnvelopeSender] = []
            link = links(site, spec.device_id, functools.partial(death_will, holder))
            sender = EnvelopeSender(
                site,
                spec.device_id,
                keys.key(site, spec.device_id),
                clock,
                link,
                rng=rng_for(seed, "envelopes", site, spec.device_id),
            )
            holder.append(sender)
            implant = Implant(
                spec.device_id,
                IMPLANT_KINDS[spec.kind],
                sim.patient(spec.patient),
                NoiseSource(rng_for(seed, "implant", site, spec.device_id)),
            )
            tx = Transmitter(
                implant, sender, clock, every_s=3600.0, first_at=30.0, on_offline=link.set_offline
            )
            sim.others.append(tx)
            lines.append(f"mqtt {spec.device_id} {sender.topic('implant')}")
        elif spec.kind == "video":
            session_id = f"{site}-{spec.device_id}"[:64]
            link = links(site, f"{VIDEO_GATEWAY}-{spec.device_id}", None)
            sender = EnvelopeSender(
                site,
                VIDEO_GATEWAY,
                keys.key(site, VIDEO_GATEWAY),
                clock,
                link,
                rng=rng_for(seed, "envelopes", "video", session_id),
            )
            case = f"fr.health.samu075.SIM{zlib.crc32(session_id.encode()) % 10**8:08d}"
            session = VideoSession(
                session_id,
                case,
                "+33600000000",
                DEMO_VIDEO,
                sender,
                clock=clock,
                noise=NoiseSource(rng_for(seed, "video", session_id)),
            )
            sim.others.append(session)
            lines.append(f"mqtt {spec.device_id} {video_topic(session_id)}")
    if options.gateway:
        if options.mqtt is None:
            raise SimError("--gateway publishes over MQTT: give --mqtt URL")
        holder2: list[GatewayCore] = []
        gateway_id = f"gateway-{site}"[:64]
        link = links(site, gateway_id, functools.partial(first_will, holder2))
        ports = [
            GatewayPort(d, _url(sim.sinks[d]), profile_for(sim.specs[d]), sim.specs[d].patient)
            for d in sim.devices
        ]
        core = GatewayCore(site, gateway_id, ports, link, keys, clock=clock, seed=seed)
        holder2.append(core)
        extras.append(SerialGateway(core, link))
        links.links.remove(link)  # the SerialGateway runs (and stops) its own link
        lines += [f"mqtt {d} {topic}" for d, topic in core.topics().items()]
    return sim, None, lines, extras


def _url(sink: ByteSink) -> str:
    url = getattr(sink, "url", None)
    return str(url) if url else "inproc://"


async def run_sim(options: RunOptions) -> None:
    """Build, announce, run until a signal (or ``duration``), clean up."""
    keys = KeyStore.from_seed(options.seed) if options.seed is not None else KeyStore()
    if options.keys is not None:
        try:
            keys.load(options.keys)
        except ValueError as exc:
            raise SimError(str(exc)) from None
    clock = RealClock(options.speed, epoch=options.epoch)
    links = _Links(options.mqtt)
    sim, run, lines, extras = await _build(options, clock, links, keys)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(link.run(), name=f"mqtt-{link.client_id}") for link in links.links]
    gateways = [g for g in extras if isinstance(g, SerialGateway)]
    tasks += [asyncio.create_task(g.run(), name=f"gateway-{g.core.gateway_id}") for g in gateways]
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if run is not None:
            run.start()
        else:
            sim.start()
        if options.keys_out is not None:
            keys.dump(options.keys_out)
        if options.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=options.duration / options.speed)
        else:
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        sim.close()
        for g in gateways:
            g.stop()
        for link in links.links:
            link.stop()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
