"""Benchmark: how fast the simulator runs on its virtual clock.

Fifty bedside devices sampling at 1 Hz (oximeters in all four formats and ECG patches,
each on its own resident, spontaneous artefacts on), every frame encoded by the protocols
codecs into in-process buffers, for ``virtual_s`` simulated seconds. The figure is
simulated seconds per wall-clock second; the baseline is real time (1.0), so the ratio is
how much faster than life a replay of such a site runs. Frames per second are reported
too, because they are what the cost is made of.
"""

from __future__ import annotations

import time
from typing import Any

from firmware_sim._clock import VirtualClock
from firmware_sim._sim import DeviceSpec, Simulation
from firmware_sim.transports import InprocPort

#: (kind, format) of the benchmark's devices, cycled.
MIX: tuple[tuple[str, str], ...] = (
    ("spo2", "sbf1"),
    ("spo2", "masimo-ascii1"),
    ("spo2", "nonin-df8"),
    ("ecg", "sbf1"),
    ("spo2", "sbf1"),
)


def build(devices: int = 50, seed: int = 1) -> tuple[VirtualClock, Simulation]:
    """The benchmark's site: ``devices`` devices at 1 Hz on a virtual clock."""
    clock = VirtualClock()
    sim = Simulation(clock, seed=seed)
    for i in range(devices):
        kind, fmt = MIX[i % len(MIX)]
        spec = DeviceSpec(f"{kind}-{i:03d}", kind, fmt, f"res-{i:03d}", "bench-site", period_s=1.0)
        sim.add_serial(spec, InprocPort(on_bytes=lambda _data: None))
    return clock, sim


def run(devices: int = 50, virtual_s: float = 3600.0) -> dict[str, Any]:
    """Run the benchmark; returns the figures (see module docstring)."""
    clock, sim = build(devices)
    sim.start()
    started = time.perf_counter()
    clock.run_until(virtual_s)
    wall = time.perf_counter() - started
    frames = sum(getattr(d.hal.uart, "stats").frames for d in sim.devices.values())  # noqa: B009
    sim.close()
    speed = virtual_s / wall
    return {
        "benchmark": "sim",
        "what": f"{devices} devices at 1 Hz on the virtual clock, {virtual_s:g} simulated s",
        "value": round(speed, 1),
        "unit": "simulated s per wall s",
        "baseline": "real time (1.0)",
        "ratio": round(speed, 1),
        "frames": frames,
        "frames_per_s": round(frames / wall),
        "wall_s": round(wall, 3),
    }
