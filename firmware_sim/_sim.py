"""Assembling a simulation: patients, devices on their HAL, transports, seeds.

:class:`Simulation` is transport-agnostic: it is handed a byte sink per serial device
(pty, socket, in-process) and a message link per MQTT sender, and a clock (virtual or
real). The command line, the scenario runner, the benchmark and the tests all build
simulations the same way, which is what keeps "the same firmware logic runs in real time
for the demo and on a virtual clock for tests" true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim._clock import Clock
from firmware_sim._faults import FaultPlan, FaultWindow
from firmware_sim._hal import SITE_TZ, Battery, ByteSink, Hal, Rtc, SensorFrontEnd, Uart
from firmware_sim._seeds import rng_for, rngs_for
from firmware_sim.devices import DEFAULT_PERIODS, SERIAL_KINDS, PulseOximeter, SerialDevice
from firmware_sim.implants import ImplantType
from firmware_sim.physiology import (
    ArtefactProcess,
    ArtefactRates,
    Baseline,
    Course,
    PatientModel,
)
from hardware import DeviceProfile, load_profile

#: Implant kinds as written in SPECs (``icd:mqtt``) → implant type.
IMPLANT_KINDS: dict[str, ImplantType] = {
    "pacemaker": "pacemaker",
    "icd": "icd",
    "crt-d": "crt-d",
    "crt-p": "crt-p",
}
#: Serial formats (protocols.md §1).
SERIAL_FORMATS = ("sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d")

#: The hardware profile each (kind, format) follows unless told otherwise.
DEFAULT_PROFILES: dict[tuple[str, str], str] = {
    ("spo2", "sbf1"): "sbf1-plx-continuous",
    ("spo2-spot", "sbf1"): "sbf1-plx-spot-check",
    ("spo2", "masimo-ascii1"): "masimo-rad97",
    ("spo2", "nonin-df8"): "nonin-7500",
    ("spo2", "contec-cms50d"): "contec-cms50d-plus",
    ("bp", "sbf1"): "sbf1-bp-cuff",
    ("temperature", "sbf1"): "sbf1-thermometer",
    ("ecg", "sbf1"): "sbf1-ecg-patch",
    ("glucose", "sbf1"): "sbf1-glucometer",
    ("weight", "sbf1"): "sbf1-scale",
}

#: Sensors that see spontaneous artefacts: finger probes and skin patches.
_ARTEFACT_PRONE = {"spo2", "ecg"}
_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SpecError(ValueError):
    """A device SPEC (``KIND:FORMAT[:N]``) that cannot be used; the message says why."""


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device, however it was described (SPEC, scenario, test)."""

    device_id: str
    kind: str
    fmt: str
    patient: str
    site: str
    period_s: float | None = None
    profile: str | None = None
    spot_check: bool = False
    battery_pct: float = 100.0
    faults: tuple[FaultWindow, ...] = ()
    transport: str = "serial"

    @property
    def is_serial(self) -> bool:
        return self.fmt in SERIAL_FORMATS


def parse_spec(text: str) -> tuple[str, str, int]:
    """``KIND:FORMAT[:N]`` → (kind, format, count).

    Raises:
        SpecError: with a message naming what is wrong and what is accepted.
    """
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise SpecError(
            f"bad device SPEC {text!r}: expected KIND:FORMAT[:N], e.g. spo2:masimo-ascii1:2"
        )
    kind, fmt = parts[0].lower(), parts[1].lower()
    count = 1
    if len(parts) == 3:
        if not parts[2].isdigit() or not 1 <= int(parts[2]) <= 10_000:
            raise SpecError(f"bad device SPEC {text!r}: N must be a whole number 1..10000")
        count = int(parts[2])
    if kind in SERIAL_KINDS:
        if fmt not in SERIAL_FORMATS:
            raise SpecError(
                f"bad device SPEC {text!r}: format {fmt!r} unknown for {kind}; "
                f"known: {', '.join(SERIAL_FORMATS)}"
            )
        if kind != "spo2" and fmt != "sbf1":
            raise SpecError(
                f"bad device SPEC {text!r}: {fmt} is an oximeter format; {kind} devices speak sbf1"
            )
    elif kind in IMPLANT_KINDS or kind == "video":
        if fmt != "mqtt":
            raise SpecError(
                f"bad device SPEC {text!r}: {kind} devices publish over MQTT (use {kind}:mqtt)"
            )
    else:
        known = ", ".join([*SERIAL_KINDS, *IMPLANT_KINDS, "video"])
        raise SpecError(f"bad device SPEC {text!r}: unknown kind {kind!r}; known: {known}")
    return kind, fmt, count


def specs_from_cli(specs: list[str], site: str) -> list[DeviceSpec]:
    """Device specs for ``samu sim --devices``: the i-th device of every kind is worn by
    resident i (``res-01`` …), so ``spo2:…:3 bp:sbf1:3`` gives three residents each with
    an oximeter and a cuff."""
    out: list[DeviceSpec] = []
    counters: dict[str, int] = {}
    for text in specs:
        kind, fmt, count = parse_spec(text)
        for _ in range(count):
            counters[kind] = counters.get(kind, 0) + 1
            n = counters[kind]
            out.append(
                DeviceSpec(
                    device_id=f"{kind}-{n:02d}",
                    kind=kind,
                    fmt=fmt,
                    patient=f"res-{n:02d}",
                    site=site,
                )
            )
    return out


def profile_for(spec: DeviceSpec) -> DeviceProfile:
    """The hardware profile a device follows (explicit, or the default for its kind)."""
    if spec.profile is not None:
        return load_profile(spec.profile)
    key = ("spo2-spot" if spec.kind == "spo2" and spec.spot_check else spec.kind, spec.fmt)
    return load_profile(DEFAULT_PROFILES[key])


@dataclass
class Simulation:
    """Patients and the devices watching them, on one clock.

    Args:
        clock: virtual or real clock.
        seed: root of every random stream.
        keep_log: devices keep every record they send (tests).
        artefacts: spontaneous sensor artefacts on (realistic) or off (clean tests).
    """

    clock: Clock
    seed: int = 0
    keep_log: bool = False
    artefacts: bool = True
    patients: dict[str, PatientModel] = field(default_factory=dict)
    devices: dict[str, SerialDevice] = field(default_factory=dict)
    specs: dict[str, DeviceSpec] = field(default_factory=dict)
    sinks: dict[str, ByteSink] = field(default_factory=dict)
    others: list[object] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def patient(
        self,
        patient_id: str,
        *,
        baseline: Baseline | None = None,
        course: Course | None = None,
    ) -> PatientModel:
        """The resident ``patient_id``, created on first use (baseline drawn from the seed)."""
        found = self.patients.get(patient_id)
        if found is not None:
            return found
        if baseline is None:
            baseline = Baseline.draw(rng_for(self.seed, "baseline", patient_id))
        model = PatientModel(baseline, course, rng_for(self.seed, "patient", patient_id))
        self.patients[patient_id] = model
        return model

    def hal_for(
        self, spec: DeviceSpec, sink: ByteSink | None, *, patient: PatientModel | None = None
    ) -> Hal:
        """Build a device's HAL, every random stream derived from (seed, site, device)."""
        sensor_rng, fault_rng, artefact_rng = rngs_for(
            self.seed, 3, "device", spec.site, spec.device_id
        )
        faults = FaultPlan(list(spec.faults), fault_rng)
        rtc = Rtc(self.clock, faults, tz=SITE_TZ)
        battery = Battery(self.clock, faults, level_pct=spec.battery_pct)
        sensor = None
        if patient is not None:
            artefacts = None
            if self.artefacts and spec.kind in _ARTEFACT_PRONE:
                artefacts = ArtefactProcess(ArtefactRates(), artefact_rng)
            sensor = SensorFrontEnd(patient, faults, sensor_rng, artefacts)
        uart = Uart(sink, self.clock, faults) if sink is not None else None
        return Hal(self.clock, faults, rtc, battery, sensor, uart)

    def add_serial(self, spec: DeviceSpec, sink: ByteSink) -> SerialDevice:
        """Create a serial device writing to ``sink``."""
        if spec.device_id in self.devices:
            raise ValueError(f"duplicate device id {spec.device_id!r}")
        if not _ID_RE.match(spec.device_id):
            raise ValueError(f"device id {spec.device_id!r} is not [A-Za-z0-9._-]{{1,64}}")
        profile = profile_for(spec)
        hal = self.hal_for(spec, sink, patient=self.patient(spec.patient))
        cls = SERIAL_KINDS[spec.kind]
        if spec.kind == "spo2":
            if spec.fmt == "contec-cms50d":
                period = 1.0  # ticks of a second carrying round(1/profile period) packets
            else:
                period = spec.period_s or profile.sampling_period_s or DEFAULT_PERIODS["spo2"]
            device: SerialDevice = PulseOximeter(
                spec.device_id,
                hal,
                spec.fmt,
                period,
                spot_check=spec.spot_check,
                keep_log=self.keep_log,
                model=profile.model[:16],
            )
        else:
            period = spec.period_s or profile.sampling_period_s or DEFAULT_PERIODS[spec.kind]
            factory: Callable[..., SerialDevice] = cls
            device = factory(spec.device_id, hal, period, keep_log=self.keep_log)
        device.profile = profile
        self.devices[spec.device_id] = device
        self.specs[spec.device_id] = spec
        self.sinks[spec.device_id] = sink
        return device

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def start(self) -> None:
        """Power every device on, staggered within its first period (and at most 5 s):
        devices in a real site were not switched on in the same millisecond."""
        for device_id, device in self.devices.items():
            spec = self.specs[device_id]
            rng = rng_for(self.seed, "boot", spec.site, device_id)
            device.power_on(float(rng.uniform(0.0, min(device.period_s, 5.0))))
        for other in self.others:
            start = getattr(other, "start", None)
            if callable(start):
                start()

    def close(self) -> None:
        """Stop devices and release every port (ptys closed, sockets shut)."""
        for device in self.devices.values():
            device.power_off()
        for other in self.others:
            stop = getattr(other, "stop", None)
            if callable(stop):
                stop()
        for fn in reversed(self._closers):
            fn()
        for sink in self.sinks.values():
            sink.close()
