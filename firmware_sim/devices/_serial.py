"""Serial device firmware: frames through a codec onto the UART.

Every byte goes through :func:`protocols.codecs.get_codec` — the very codec the console
decodes with — so the simulator cannot drift from the contract; a test decodes the
UART's bytes and compares them with the records the firmware logged.

sbf1 devices also speak the bridge's housekeeping: a HELLO (model, serial, firmware,
battery) at boot and after every reconnection, and a STATUS frame when the battery, the
sensor or the clock changes state and every ``status_every_s`` otherwise — which is how a
real BLE bridge reports a device that is alive but not measuring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from firmware_sim._hal import Hal
from firmware_sim.devices._firmware import Firmware, State
from protocols.codecs import get_codec

if TYPE_CHECKING:
    from hardware import DeviceProfile

#: Firmware version the simulated devices report in HELLO.
FIRMWARE_VERSION = "2.4.1"


class SerialDevice(Firmware):
    """A device on a serial line (pty, socket, in-process) speaking one format.

    Args:
        device_id: id on the wire (also the HELLO serial number unless ``serial``).
        hal: its hardware; ``hal.uart`` must be set.
        fmt: serial format name (``sbf1``, ``masimo-ascii1``, …).
        period_s: sampling period.
        model: model string (HELLO / masimo SN context).
        serial: serial number.
    """

    model = "SIM-DEVICE"
    status_every_s = 300.0

    def __init__(
        self,
        device_id: str,
        hal: Hal,
        fmt: str,
        period_s: float,
        *,
        model: str | None = None,
        serial: str | None = None,
        keep_log: bool = False,
    ) -> None:
        super().__init__(device_id, hal, period_s, keep_log=keep_log)
        if hal.uart is None:
            raise ValueError(f"{device_id}: a serial device needs a UART")
        self.format = fmt
        self.codec = get_codec(fmt)
        if model is not None:
            self.model = model
        self.serial = (serial or device_id)[-16:]
        self._profile: DeviceProfile | None = None
        self._ranges: dict[str, tuple[float, float]] = {}
        self._seq = 0
        self._last_status_t = -1e18
        self._last_status_check = -1e18
        self._last_status_key: tuple[Any, ...] | None = None

    @property
    def profile(self) -> DeviceProfile | None:
        """The hardware profile this device follows (ranges pin what it can report)."""
        return self._profile

    @profile.setter
    def profile(self, profile: DeviceProfile | None) -> None:
        self._profile = profile
        self._ranges = (
            {} if profile is None else {k: (r.min, r.max) for k, r in profile.ranges.items()}
        )

    @property
    def is_sbf1(self) -> bool:
        return self.format == "sbf1"

    # -- framing -------------------------------------------------------------------------
    def send(self, record: dict[str, Any]) -> bytes:
        """Encode ``record`` (adding seq/device_time for sbf1) and write it to the UART."""
        ranges = self._ranges
        values = record.get("values")
        if ranges and values:
            # The device cannot report outside its measuring range: it pins to the limit.
            for key, value in values.items():
                limits = ranges.get(key)
                if limits is not None and isinstance(value, int | float):
                    lo, hi = limits
                    if value < lo or value > hi:
                        values[key] = type(value)(lo if value < lo else hi)
        if self.is_sbf1:
            record["seq"] = self._seq
            record["device_time"] = self.hal.rtc.unix_time() or None
            self._seq = (self._seq + 1) & 0xFFFF
        frame = self.codec.encode(record)
        t = self.hal.clock.now()
        self._record(t, record, frame)
        uart = self.hal.uart
        assert uart is not None
        uart.write_frame(frame)
        return frame

    def status_flags(self) -> list[str]:
        """sbf1 STATUS flag names describing the device right now."""
        flags: list[str] = []
        battery = self.hal.battery
        if battery.is_low():
            flags.append("low_battery")
        t = self.hal.clock.now()
        sensor = self.hal.sensor
        if sensor is not None:
            _, artefacts = sensor.sample(t)
            if "finger_out" in artefacts:
                flags.append("sensor_off")
        if self.state is State.FAULT:
            flags.append("sensor_fault")
        if not self.hal.rtc.is_set():
            flags.append("clock_not_set")
        if battery.charging:
            flags.append("charging")
        return flags

    # -- hooks -----------------------------------------------------------------------------
    def on_hello(self) -> None:
        if not self.is_sbf1:
            return
        self.send(
            {
                "kind": "hello",
                "values": {"battery_pct": self.hal.battery.percent()},
                "model": self.model[:16],
                "serial": self.serial,
                "firmware": FIRMWARE_VERSION,
            }
        )
        self._last_status_t = self.hal.clock.now()

    def on_status(self, *, force: bool = False) -> None:
        if not self.is_sbf1:
            return
        t = self.hal.clock.now()
        flags = self.status_flags()
        key = (tuple(flags), self.state)
        due = t - self._last_status_t >= self.status_every_s
        if not (force or due or key != self._last_status_key):
            return
        self._last_status_t = t
        self._last_status_key = key
        self.send(
            {
                "kind": "status",
                "values": {"battery_pct": self.hal.battery.percent()},
                "flags": flags,
                "error_code": 0x21 if self.state is State.FAULT else 0,
            }
        )

    #: How often (simulated seconds) a continuous device re-checks its status flags.
    status_check_s = 10.0

    def housekeeping(self) -> None:
        """Called after each measurement: periodic or changed STATUS (sbf1).

        Flags are re-evaluated at most every ``status_check_s``: a 1 Hz device need not
        recompute its battery and sensor flags every second (state changes force a STATUS
        at once anyway, see :meth:`Firmware._tick`).
        """
        if not self.is_sbf1:
            return
        t = self.hal.clock.now()
        if t - self._last_status_check < self.status_check_s:
            return
        self._last_status_check = t
        self.on_status()
