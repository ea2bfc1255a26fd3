"""Firmware of simulated connected devices (EHPAD bedside devices, cardiac implants, video gateway).

Each device is a state machine over a small hardware abstraction layer so the same logic
runs on a virtual clock in tests and in real time in the demo::

    from firmware_sim import VirtualClock, Simulation, DeviceSpec
    from firmware_sim.transports import InprocPort

    clock = VirtualClock()
    sim = Simulation(clock, seed=42, keep_log=True)
    spec = DeviceSpec("spo2-01", "spo2", "masimo-ascii1", "res-01", "ehpad-a")
    sim.add_serial(spec, InprocPort())
    sim.start()
    clock.run_until(3600)          # a virtual hour, in well under a second per device

Packages: :mod:`~firmware_sim.physiology` (numpy patient models), :mod:`~firmware_sim.devices`
(bedside firmwares), :mod:`~firmware_sim.implants`, :mod:`~firmware_sim.transports`;
modules :mod:`~firmware_sim.gateway` (EHPAD gateway) and :mod:`~firmware_sim.video`.
"""

from firmware_sim._clock import DEFAULT_EPOCH, Clock, RealClock, TimerHandle, VirtualClock
from firmware_sim._envelopes import EnvelopeSender, death_will, wall_time
from firmware_sim._faults import ENVELOPE_FAULTS, FaultKind, FaultPlan, FaultWindow
from firmware_sim._hal import SITE_TZ, Battery, ByteSink, Hal, Rtc, SensorFrontEnd, Uart
from firmware_sim._keys import KeyStore
from firmware_sim._runner import BuiltScenario, RunOptions, ScenarioPlan, SimError, run_sim
from firmware_sim._seeds import rng_for, rngs_for, seed_sequence
from firmware_sim._sim import (
    DEFAULT_PROFILES,
    IMPLANT_KINDS,
    DeviceSpec,
    Simulation,
    SpecError,
    parse_spec,
    profile_for,
    specs_from_cli,
)

__all__ = [
    "DEFAULT_EPOCH",
    "DEFAULT_PROFILES",
    "ENVELOPE_FAULTS",
    "IMPLANT_KINDS",
    "SITE_TZ",
    "Battery",
    "BuiltScenario",
    "ByteSink",
    "Clock",
    "DeviceSpec",
    "EnvelopeSender",
    "FaultKind",
    "FaultPlan",
    "FaultWindow",
    "Hal",
    "KeyStore",
    "RealClock",
    "Rtc",
    "RunOptions",
    "ScenarioPlan",
    "SensorFrontEnd",
    "SimError",
    "Simulation",
    "SpecError",
    "TimerHandle",
    "Uart",
    "VirtualClock",
    "death_will",
    "parse_spec",
    "profile_for",
    "rng_for",
    "rngs_for",
    "run_sim",
    "seed_sequence",
    "specs_from_cli",
    "wall_time",
]
