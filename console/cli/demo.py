"""``samu demo``: simulated bedside devices decoded live through real pseudo-terminals.

An interim demo until the full system (simulator, ingest, triage, console) lands: five
devices of an EHPAD room — an sbf1 pulse oximeter, blood-pressure cuff and thermometer
(Bluetooth health sensors behind a BLE-to-serial bridge), a Masimo Radical-7 on its
ASCII 1 output and a Nonin oximeter in Data Format 8 — each write their frames into
their own pty pair (``os.openpty``); the receiving side opens the pty's slave path with
pyserial exactly as it would open ``/dev/ttyUSB0``, and decodes the bytes as they come
with the same streaming codecs ``samu protocols decode`` uses. One corrupt frame is
injected on purpose to show that a bad frame is quarantined with its reason and byte
offset, and that the stream goes on.

Single-threaded on purpose: one loop writes the frames that are due and waits on the
serial ports with a selector until the next one is, so the demo ends on time by itself,
needs no terminal (it prints plain lines, fine under CI or into a pipe) and leaves no
thread behind.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from console.cli._main import EXIT_OK, UsageError

if TYPE_CHECKING:
    from protocols.codecs import Item, StreamDecoder


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``samu demo``."""
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="simulated devices decoded live through pseudo-terminals (ends by itself)",
        description="Five simulated bedside devices write sbf1, Masimo ASCII 1 and Nonin "
        "DF8 frames into pseudo-terminals; the readings are decoded live and printed, "
        "with one corrupt frame quarantined on purpose.",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run (default: 10)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="device clock speed-up: 2 sends readings twice as often (default: 1)",
    )
    p.add_argument("--seed", type=int, default=15, help="random seed of the physiology")
    p.set_defaults(handler=_run)


Record = dict[str, Any]


@dataclass
class _Device:
    """One simulated device: what it is, how often it speaks, what it says."""

    name: str
    fmt: str
    period_s: float
    make: Callable[[float, int], Record]
    baudrate: int
    seq: int = 0
    written: int = 0
    received: int = 0
    decoded: int = 0
    errors: int = 0
    master_fd: int = -1
    slave_fd: int = -1
    port: Any = None
    decoder: StreamDecoder | None = None
    label: str = field(default="")


def _physiology(rnd: random.Random) -> dict[str, Callable[[float, int], Record]]:
    """Slowly drifting vitals of a febrile resident desaturating a little: enough
    movement to see the stream is live, plausible enough to read like a bedside."""

    def noise(scale: float) -> float:
        return rnd.gauss(0.0, scale)

    def oximeter(t: float, seq: int) -> Record:
        spo2 = round(94 - 2 * math.sin(t / 9) + noise(0.6))
        pulse = round(96 + 8 * math.sin(t / 6) + noise(1.5))
        return {
            "kind": "spo2",
            "values": {"spo2_pct": min(spo2, 100), "pulse_bpm": pulse},
            "seq": seq,
            "device_time": int(time.time()),
        }

    def cuff(t: float, seq: int) -> Record:
        if seq == 0:
            return {
                "kind": "hello",
                "values": {"battery_pct": 76},
                "seq": seq,
                "device_time": int(time.time()),
                "model": "BPM-Core",
                "serial": "BPC2409-0117",
                "firmware": "2.4.1",
            }
        systolic = round(104 - 3 * math.sin(t / 11) + noise(2))
        diastolic = round(62 + noise(1.5))
        return {
            "kind": "bp",
            "values": {
                "systolic_mmhg": systolic,
                "diastolic_mmhg": diastolic,
                "map_mmhg": round((systolic + 2 * diastolic) / 3),
                "pulse_bpm": round(97 + noise(2)),
            },
            "seq": seq,
            "device_time": int(time.time()),
        }

    def thermometer(t: float, seq: int) -> Record:
        return {
            "kind": "temperature",
            "values": {"temperature_c": round(38.4 + t / 200 + noise(0.05), 1)},
            "seq": seq,
            "device_time": int(time.time()),
            "temperature_type": "ear",
        }

    def radical7(t: float, seq: int) -> Record:
        stamp = time.strftime("%m/%d/%y %H:%M:%S")
        low = t > 4 and int(t) % 7 == 0
        return {
            "kind": "spo2",
            "values": {
                "spo2_pct": round(93 - 2 * math.sin(t / 8) + noise(0.5)),
                "pulse_bpm": round(95 + 7 * math.sin(t / 5) + noise(1.0)),
            },
            "device_clock": stamp,
            "serial": "0123456789",
            "aux": {"pi_pct": round(1.4 + noise(0.1), 2), "pvi": 18},
            "alarm_code": "0012" if low else "0000",
            "exception_code": "000000",
        }

    def nonin(t: float, seq: int) -> Record:
        status = ["artifact"] if int(t) % 9 == 4 else []
        return {
            "kind": "spo2",
            "values": {
                "spo2_pct": round(94 - 2 * math.sin(t / 10) + noise(0.5)),
                "pulse_bpm": round(96 + 6 * math.sin(t / 7) + noise(1.0)),
            },
            "status": status,
        }

    return {
        "oximeter": oximeter,
        "cuff": cuff,
        "thermometer": thermometer,
        "radical7": radical7,
        "nonin": nonin,
    }


def _describe(item: Item) -> str:
    """One readable line for a decoded reading."""
    v = item.values if hasattr(item, "values") else {}
    extra = getattr(item, "extra", {})
    kind = getattr(item, "kind", "")

    def num(key: str, unit: str, label: str) -> str | None:
        if key not in v:
            return None
        value = v[key]
        return f"{label} {'--' if value is None else value}{unit}"

    parts: list[str | None]
    if kind == "spo2":
        parts = [num("spo2_pct", " %", "SpO2"), num("pulse_bpm", " /min", "pulse")]
    elif kind == "bp":
        s, d, m = v.get("systolic_mmhg"), v.get("diastolic_mmhg"), v.get("map_mmhg")
        parts = [f"BP {s}/{d} mmHg (MAP {m})", num("pulse_bpm", " /min", "pulse")]
    elif kind == "temperature":
        parts = [num("temperature_c", " °C", "temp")]
    elif kind == "hello":
        parts = [
            f"HELLO {extra.get('model')} s/n {extra.get('serial')} fw {extra.get('firmware')}",
            num("battery_pct", " %", "battery"),
        ]
    else:
        parts = [f"{kind} {v}"]
    alarms = extra.get("alarm") or []
    status = [*alarms, *(extra.get("status") or []), *(extra.get("exceptions") or [])]
    if status:
        parts.append("[" + ", ".join(str(s) for s in status) + "]")
    seq = getattr(item, "seq", None)
    if seq is not None:
        parts.append(f"seq {seq}")
    return "  ".join(p for p in parts if p)


def _corrupt_sbf1(record: Record) -> bytes:
    """An sbf1 frame with one payload bit flipped after its CRC was computed: the kind
    of damage a noisy cable does, which the CRC must catch (reason ``crc``)."""
    from protocols.codecs import cobs_encode, get_codec
    from protocols.codecs.sbf1 import Sbf1Codec

    codec = get_codec("sbf1")
    assert isinstance(codec, Sbf1Codec)
    frame = bytearray(codec.frame(record))
    frame[11] ^= 0x10
    return cobs_encode(bytes(frame)) + b"\x00"


def _open_ports(devices: list[_Device]) -> None:
    import tty

    import serial

    from protocols.codecs import get_codec

    for dev in devices:
        dev.master_fd, dev.slave_fd = os.openpty()
        tty.setraw(dev.slave_fd)
        tty.setraw(dev.master_fd)
        path = os.ttyname(dev.slave_fd)
        dev.port = serial.Serial(path, baudrate=dev.baudrate, timeout=0)
        dev.decoder = get_codec(dev.fmt).decoder()
        dev.label = path


def _close_ports(devices: list[_Device]) -> None:
    for dev in devices:
        if dev.port is not None:
            dev.port.close()
        for fd in (dev.master_fd, dev.slave_fd):
            if fd >= 0:
                os.close(fd)
        dev.master_fd = dev.slave_fd = -1


def _run(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 3600:
        raise UsageError("--seconds must be between 0 and 3600")
    if not 0 < args.speed <= 100:
        raise UsageError("--speed must be between 0 and 100")
    import selectors

    from protocols.codecs import DecodeError, get_codec

    rnd = random.Random(args.seed)
    makers = _physiology(rnd)
    devices = [
        _Device("oxi-ch12", "sbf1", 1.0, makers["oximeter"], 115200),
        _Device("cuff-ch12", "sbf1", 3.0, makers["cuff"], 115200),
        _Device("thermo-ch12", "sbf1", 4.0, makers["thermometer"], 115200),
        _Device("radical7-ch14", "masimo-ascii1", 1.0, makers["radical7"], 9600),
        _Device("nonin-ch15", "nonin-df8", 1.0, makers["nonin"], 9600),
    ]
    out = sys.stdout
    started = time.monotonic()

    def stamp() -> str:
        now = time.time()
        return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 10) % 10}"

    def report(dev: _Device, items: list[Item]) -> None:
        for item in items:
            if isinstance(item, DecodeError):
                dev.errors += 1
                line = (
                    f"QUARANTINED {item.reason} at byte {item.offset}: {item.detail} "
                    f"(raw {item.raw[:24].hex(' ')})"
                )
            else:
                dev.decoded += 1
                line = _describe(item)
            out.write(f"{stamp()}  {dev.name:<14} {dev.fmt:<14} {line}\n")
        if items:
            out.flush()

    corrupt_at = args.seconds * 0.4
    corrupted = False
    selector = selectors.DefaultSelector()
    try:
        _open_ports(devices)
        print(
            f"samu demo: {len(devices)} simulated devices on pseudo-terminals for "
            f"{args.seconds:g} s (speed ×{args.speed:g}); one corrupt frame will be injected.",
            file=out,
        )
        for dev in devices:
            print(f"  {dev.name:<14} {dev.fmt:<14} {dev.label} @ {dev.baudrate} bd", file=out)
        out.flush()
        for dev in devices:
            selector.register(dev.port.fileno(), selectors.EVENT_READ, dev)
        # (due time, index) heap: each device speaks at its own period.
        due = [(i * 0.05, i) for i in range(len(devices))]
        heapq.heapify(due)
        deadline = started + args.seconds
        while True:
            now = time.monotonic()
            while due and started + due[0][0] <= now and started + due[0][0] < deadline:
                at, i = heapq.heappop(due)
                dev = devices[i]
                record = dev.make(at * args.speed, dev.seq)
                codec = get_codec(dev.fmt)
                if i == 0 and not corrupted and at >= corrupt_at:  # the sbf1 oximeter
                    data = _corrupt_sbf1(record)
                    corrupted = True
                else:
                    data = codec.encode(record)
                os.write(dev.master_fd, data)
                dev.written += len(data)
                dev.seq = (dev.seq + 1) & 0xFFFF
                heapq.heappush(due, (at + dev.period_s / args.speed, i))
            pending = sum(d.written - d.received for d in devices)
            if now >= deadline and (pending == 0 or now >= deadline + 2.0):
                break
            next_due = started + due[0][0] if due else deadline
            timeout = max(0.0, min(next_due, deadline) - now) if now < deadline else 0.05
            for key, _ in selector.select(timeout):
                dev = key.data
                data = dev.port.read(dev.port.in_waiting or 1)
                dev.received += len(data)
                assert dev.decoder is not None
                report(dev, dev.decoder.feed(data))
        for dev in devices:
            assert dev.decoder is not None
            report(dev, dev.decoder.flush())
    finally:
        selector.close()
        _close_ports(devices)
    elapsed = time.monotonic() - started
    print(f"samu demo: done in {elapsed:.1f} s", file=out)
    for dev in devices:
        print(
            f"  {dev.name:<14} {dev.fmt:<14} {dev.received} bytes, decoded {dev.decoded}, "
            f"errors {dev.errors}",
            file=out,
        )
    out.flush()
    return EXIT_OK
