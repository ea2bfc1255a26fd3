"""The EHPAD gateway: reads its devices' serial ports, publishes signed envelopes over MQTT.

Two layers, so the same logic runs in a replay and on real ports:

* :class:`GatewayCore` is synchronous and clock-driven: bytes in (``feed``), envelopes
  out through one :class:`~firmware_sim._envelopes.EnvelopeSender` per device, each
  signing with that device's enrolled key. It decodes with the protocols codecs, turns
  HELLO frames (or the first frame of a format without one) into retained ``birth``
  envelopes, readings into ``vitals``, device conditions into ``status`` (on change and
  every ``status_every_s``), and notices silent devices (``status`` ``disconnected``).
* :class:`SerialGateway` runs a core against real ports: one reader thread per port
  using pyserial exactly as a gateway on /dev/ttyUSB0 would (``serial_for_url`` with the
  profile's settings, so a pty path and ``socket://host:port`` work alike, blocking
  reads with a timeout, reopening a port that went away), and an
  :class:`~firmware_sim.transports.MqttLink` that buffers while the broker is away. The
  gateway's own ``death`` is its MQTT Last Will.

Readings are timestamped with the device clock when it is set and within
``max_clock_offset_s`` of the gateway's; otherwise with the gateway's receive time, and
the offset is reported in ``status.clock_offset_s`` — a skewed device must be shown as
skewed, not silently misdate the chart. Contec's 60 packets a second are published as
one vitals envelope a second per device (``min_vitals_interval_s``): the waveform is not
clinically needed downstream and 60 envelopes a second per bedside would swamp the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from firmware_sim import _bodies as bodies
from firmware_sim._clock import Clock
from firmware_sim._envelopes import EnvelopeSender
from firmware_sim._faults import FaultPlan
from firmware_sim._hal import SITE_TZ
from firmware_sim._keys import KeyStore
from firmware_sim._seeds import rng_for
from firmware_sim.transports import MessageLink, MqttLink, OutMessage
from hardware import DeviceProfile
from protocols.codecs import Decoded, DecodeError, get_codec
from protocols.topics import device_topic

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayPort:
    """One device port the gateway reads.

    Attributes:
        device_id: the device's id (topic level and key name).
        url: what pyserial opens (a pty path, ``socket://host:port``, ``/dev/ttyUSB0``).
        profile: the device's hardware profile (format, port settings, ranges).
        patient: the resident the device is assigned to, if known.
        faults: envelope-level fault windows for this device (simulation).
    """

    device_id: str
    url: str
    profile: DeviceProfile
    patient: str | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)


@dataclass
class _DeviceState:
    port: GatewayPort
    decoder: Any
    sender: EnvelopeSender
    born: bool = False
    connected: bool = False
    last_seen: float | None = None
    last_vitals: float = -1e18
    battery: int | None = None
    flags: tuple[str, ...] = ()
    error_code: int | None = None
    clock_offset: float | None = None
    last_status_key: tuple[Any, ...] | None = None
    last_status_t: float = -1e18
    errors: Counter[str] = field(default_factory=Counter)
    pending: dict[str, Any] | None = None


@dataclass
class GatewayStats:
    bytes: int = 0
    decoded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    vitals: int = 0
    status: int = 0
    births: int = 0
    skipped: int = 0


class GatewayCore:
    """Decode → envelopes, for a set of ports, on a clock (see module docstring)."""

    status_every_s = 300.0
    max_clock_offset_s = 120.0
    min_vitals_interval_s = 1.0
    silence_periods = 3.0
    min_silence_s = 10.0

    def __init__(
        self,
        site: str,
        gateway_id: str,
        ports: list[GatewayPort],
        link: MessageLink,
        keys: KeyStore,
        *,
        clock: Clock,
        seed: int = 0,
    ) -> None:
        self.site = site
        self.gateway_id = gateway_id
        self.link = link
        self.keys = keys
        self.clock = clock
        self.stats = GatewayStats()
        self.devices: dict[str, _DeviceState] = {}
        self.sender = EnvelopeSender(
            site,
            gateway_id,
            keys.key(site, gateway_id),
            clock,
            link,
            rng=rng_for(seed, "gateway", site, gateway_id),
        )
        self._seed = seed
        for port in ports:
            self.add_port(port)

    def add_port(self, port: GatewayPort) -> None:
        """Read one more device (each device signs with its own enrolled key)."""
        if port.device_id in self.devices:
            raise ValueError(f"gateway {self.gateway_id}: duplicate device {port.device_id!r}")
        sender = EnvelopeSender(
            self.site,
            port.device_id,
            self.keys.key(self.site, port.device_id),
            self.clock,
            self.link,
            rng=rng_for(self._seed, "envelopes", self.site, port.device_id),
            faults=port.faults,
        )
        decoder = get_codec(port.profile.format).decoder()
        self.devices[port.device_id] = _DeviceState(port, decoder, sender)

    # -- time ----------------------------------------------------------------------------
    def _now_dt(self) -> datetime:
        return self.sender.now()

    def _device_time(self, dev: _DeviceState, item: Decoded) -> datetime | None:
        """The instant the device stamped on the frame, if it says one."""
        if item.device_time:
            return datetime.fromtimestamp(item.device_time, UTC).astimezone(SITE_TZ)
        extra = item.extra
        text = extra.get("timestamp")
        if isinstance(text, str) and not text.startswith("0000"):
            with contextlib.suppress(ValueError):
                return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=SITE_TZ)
        clock = extra.get("device_clock")
        if isinstance(clock, str) and not clock.startswith("00/00/00"):
            with contextlib.suppress(ValueError):
                return datetime.strptime(clock, "%m/%d/%y %H:%M:%S").replace(tzinfo=SITE_TZ)
        return None

    def _reading_time(self, dev: _DeviceState, item: Decoded) -> datetime:
        now = self._now_dt()
        stamped = self._device_time(dev, item)
        if stamped is None:
            return now
        offset = (stamped - now).total_seconds()
        dev.clock_offset = offset if abs(offset) > 2.0 else None
        if abs(offset) > self.max_clock_offset_s:
            return now
        # Whole-second device clocks run up to a second behind; never date in the future.
        return min(stamped, now)

    # -- bytes in ---------------------------------------------------------------------------
    def feed(self, device_id: str, data: bytes) -> None:
        """Bytes read from a device's port."""
        dev = self.devices[device_id]
        self.stats.bytes += len(data)
        for item in dev.decoder.feed(data):
            self._item(dev, item)

    def _item(self, dev: _DeviceState, item: Decoded | DecodeError) -> None:
        t = self.clock.now()
        if isinstance(item, DecodeError):
            self.stats.errors[item.reason] += 1
            dev.errors[item.reason] += 1
            return
        self.stats.decoded += 1
        reappeared = not dev.connected
        dev.last_seen = t
        dev.connected = True
        values = item.values
        if "battery_pct" in values and isinstance(values["battery_pct"], int):
            dev.battery = values["battery_pct"]
        flags = bodies.device_flags(item.extra)
        if item.kind == "hello":
            self._birth(dev, item)
            self._status(dev, force=True)
            return
        if not dev.born or reappeared:
            self._birth(dev, None)
        if item.kind == "status":
            dev.flags = flags
            code = item.extra.get("error_code")
            dev.error_code = code if isinstance(code, int) else None
            self._status(dev, force=True)
            return
        if item.device_time is None and dev.port.profile.format == "sbf1":
            flags = tuple(sorted({*flags, "clock_not_set"}, key=bodies._FLAG_ORDER.__getitem__))
        dev.flags = tuple(f for f in flags if f != "measurement_error")
        when = self._reading_time(dev, item)
        if t - dev.last_vitals < self.min_vitals_interval_s - 1e-9:
            self.stats.skipped += 1
            self._status(dev)
            return
        body = bodies.vitals_body(
            values, when, patient=dev.port.patient, battery_pct=dev.battery, flags=dev.flags
        )
        if body is not None:
            dev.last_vitals = t
            dev.sender.send(body)
            self.stats.vitals += 1
        self._status(dev)

    # -- envelopes out ------------------------------------------------------------------------
    def _birth(self, dev: _DeviceState, hello: Decoded | None) -> None:
        profile = dev.port.profile
        extra = hello.extra if hello is not None else {}
        serial = extra.get("serial") or dev.port.device_id
        body = bodies.birth_body(
            profile,
            model=str(extra.get("model") or profile.model),
            serial=str(serial),
            firmware=str(extra.get("firmware") or "unknown"),
        )
        dev.sender.send(body, retain=True)
        dev.born = True
        self.stats.births += 1

    def _status(self, dev: _DeviceState, *, force: bool = False) -> None:
        t = self.clock.now()
        offset = dev.clock_offset
        skewed = offset is not None and abs(offset) > self.max_clock_offset_s
        if not dev.connected:
            state = "disconnected"
        elif "sensor_fault" in dev.flags:
            state = "fault"
        elif dev.flags or skewed:
            state = "degraded"
        else:
            state = "ok"
        battery_bucket = None if dev.battery is None else dev.battery // 5
        key = (state, dev.flags, battery_bucket, skewed)
        if not force and key == dev.last_status_key and t - dev.last_status_t < self.status_every_s:
            return
        detail = None
        if dev.errors:
            detail = "rejected frames: " + ", ".join(
                f"{r}×{n}" for r, n in sorted(dev.errors.items())
            )
            dev.errors.clear()
        body = bodies.status_body(
            state,
            battery_pct=dev.battery,
            flags=dev.flags,
            error_code=dev.error_code,
            clock_offset_s=round(offset, 1) if offset is not None else None,
            detail=detail,
        )
        dev.sender.send(body)
        dev.last_status_key = key
        dev.last_status_t = t
        self.stats.status += 1

    def check_silence(self) -> None:
        """Mark devices that stopped talking as disconnected (call every few seconds)."""
        t = self.clock.now()
        for dev in self.devices.values():
            if not dev.connected or dev.last_seen is None:
                continue
            limit = max(
                self.min_silence_s, self.silence_periods * dev.port.profile.sampling_period_s
            )
            if t - dev.last_seen > limit:
                dev.connected = False
                self._status(dev, force=True)

    def flush(self) -> None:
        """Release envelopes held back by a ``reorder`` fault (end of a run)."""
        for dev in self.devices.values():
            dev.sender.flush_held()

    # -- the gateway's own life ----------------------------------------------------------------
    def will(self) -> OutMessage:
        """The gateway's Last Will: its death, signed now (the broker sends it later)."""
        topic, payload = self.sender.build(bodies.death_body("connection_lost"))
        return OutMessage(topic, payload, retain=False)

    def goodbye(self) -> list[OutMessage]:
        """A clean shutdown: the gateway's death with reason ``shutdown``."""
        topic, payload = self.sender.build(bodies.death_body("shutdown"))
        return [OutMessage(topic, payload)]

    def topics(self) -> dict[str, str]:
        """Device id → vitals topic (what ``samu sim`` prints for gatewayed devices)."""
        return {d: device_topic(self.site, d, "vitals") for d in self.devices}


def first_will(holder: list[GatewayCore]) -> OutMessage:
    """The will of the gateway in ``holder`` (for links created before their gateway)."""
    return holder[0].will()


class SerialGateway:
    """A :class:`GatewayCore` on real serial ports and a real broker (see module docstring).

    Args:
        core: the decoding/publishing logic (its link must be ``link``).
        link: the MQTT link (its will/goodbye come from the core).
    """

    def __init__(self, core: GatewayCore, link: MqttLink) -> None:
        self.core = core
        self.link = link
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self.port_errors: Counter[str] = Counter()

    def _reader(self, loop: asyncio.AbstractEventLoop, port: GatewayPort) -> None:
        import serial

        kwargs = port.profile.serial_kwargs()
        kwargs["timeout"] = 0.2  # short, so the thread notices a shutdown quickly
        backoff = 0.1
        while not self._stop.is_set():
            try:
                ser = serial.serial_for_url(port.url, **kwargs)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.port_errors[port.device_id] += 1
                _log.info("gateway: cannot open %s (%s): %s", port.device_id, port.url, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            try:
                with ser:
                    while not self._stop.is_set():
                        data = ser.read(max(1, ser.in_waiting))
                        if data:
                            loop.call_soon_threadsafe(self.core.feed, port.device_id, data)
            except (serial.SerialException, OSError) as exc:
                self.port_errors[port.device_id] += 1
                _log.info("gateway: port %s lost: %s", port.device_id, exc)
                self._stop.wait(backoff)

    async def run(self) -> None:
        """Read every port and publish until :meth:`stop`; then say goodbye cleanly."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        for dev in self.core.devices.values():
            th = threading.Thread(
                target=self._reader,
                args=(loop, dev.port),
                name=f"gw-{dev.port.device_id}",
                daemon=True,
            )
            th.start()
            self._threads.append(th)
        link_task = asyncio.create_task(self.link.run(), name=f"mqtt-{self.core.gateway_id}")
        try:
            while not self._stop.is_set():
                self.core.check_silence()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
        finally:
            self.core.flush()
            for th in self._threads:
                await asyncio.to_thread(th.join, 2.0)
            self.link.stop(self.core.goodbye())
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(link_task, timeout=5.0)
            if not link_task.done():
                link_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await link_task

    def stop(self) -> None:
        """Stop reading and publishing (thread-safe; e.g. from a signal handler)."""
        self._stop.set()
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
