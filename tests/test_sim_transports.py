"""Transports: real pty pairs and serial-over-TCP read with pyserial; the in-process bus."""

from __future__ import annotations

import asyncio
import time

import serial
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim import DeviceSpec, RealClock, Simulation
from firmware_sim.transports import (
    BusMessage,
    InprocBus,
    PtyPort,
    SocketPort,
    topic_matches,
)
from protocols.codecs import Decoded, get_codec


def read_until(ser: serial.Serial, predicate, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate(data):
        data += ser.read(max(1, ser.in_waiting))
    return data


def test_pty_is_a_serial_port_pyserial_opens_like_a_usb_adapter() -> None:
    port = PtyPort()
    try:
        ser = serial.Serial(port.path, baudrate=115200, timeout=0.2)
        with ser:
            frame = get_codec("sbf1").encode(
                {"kind": "spo2", "values": {"spo2_pct": 98, "pulse_bpm": 72}}
            )
            port.write(frame * 3)
            data = read_until(ser, lambda d: len(d) >= 3 * len(frame))
        items = get_codec("sbf1").decode(data)
        assert [i.values for i in items if isinstance(i, Decoded)] == [
            {"spo2_pct": 98, "pulse_bpm": 72}
        ] * 3
        assert port.written == 3 * len(frame)
    finally:
        port.close()
    port.write(b"after close is ignored")


def test_pty_never_blocks_the_simulator_when_nobody_reads() -> None:
    port = PtyPort()
    try:
        chunk = b"\x55" * 4096
        for _ in range(200):  # 800 KiB into a kernel buffer of a few KiB
            port.write(chunk)
        assert port.dropped > 0
        assert port.written + port.dropped == 200 * len(chunk)
        assert port.drain_unread()  # what was buffered is there for a late reader
    finally:
        port.close()


async def test_socket_port_serves_serial_over_tcp_to_pyserial() -> None:
    clock = RealClock(speed=20.0)
    sim = Simulation(clock, seed=1)
    sock = await SocketPort.open()
    assert sock.url.startswith("socket://127.0.0.1:")
    sim.add_serial(DeviceSpec("spo2-1", "spo2", "masimo-ascii1", "r1", "site"), sock)
    ser = await asyncio.to_thread(serial.serial_for_url, sock.url, timeout=0.2)
    try:

        async def registered() -> None:  # the server side has accepted the client
            while sock.clients == 0:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(registered(), 10)
        sim.start()
        data = await asyncio.to_thread(read_until, ser, lambda d: d.count(b"\n") >= 3)
    finally:
        ser.close()
        sim.close()
    lines = [i for i in get_codec("masimo-ascii1").decode(data) if isinstance(i, Decoded)]
    assert len(lines) >= 2
    assert all(isinstance(line.values["spo2_pct"], int) for line in lines)


@given(
    topic=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4).map("/".join),
)
def test_topic_filters_follow_mqtt_rules(topic: str) -> None:
    levels = topic.split("/")
    assert topic_matches("#", topic)
    assert topic_matches(topic, topic)
    assert topic_matches("/".join(["+"] * len(levels)), topic)
    assert not topic_matches("/".join(["+"] * (len(levels) + 1)), topic)
    assert topic_matches(levels[0] + "/#", topic)


def test_inproc_bus_retains_and_replays_to_late_subscribers() -> None:
    bus = InprocBus()
    bus.deliver(BusMessage("samu/v1/site/s/device/d/birth", b"born", retain=True))
    bus.deliver(BusMessage("samu/v1/site/s/device/d/vitals", b"v1"))
    seen: list[bytes] = []
    bus.subscribe("samu/v1/site/+/device/+/+", lambda m: seen.append(m.payload))
    bus.deliver(BusMessage("samu/v1/site/s/device/d/vitals", b"v2"))
    assert seen == [b"born", b"v2"]
    bus.deliver(BusMessage("samu/v1/site/s/device/d/birth", b"", retain=True))  # clears it
    assert not bus.retained
