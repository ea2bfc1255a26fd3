"""Bedside sbf1 devices: blood pressure cuff, thermometer, ECG patch, glucometer, scale.

Each is a GATT health-profile sensor behind a BLE-to-serial bridge (protocols.md 1.1),
measuring from the same patient model with its own accuracy and quantisation:

* cuff (0x2A35): measures every ``period_s`` or on demand; inflation takes time
  (25 s + SBP/10 s), so the reading arrives after it started and reflects the pressure
  at the end; movement during inflation spoils the reading (status ``measurement_error``,
  one retry a minute later), as an oscillometric cuff does.
* thermometer (0x2A1C): continuous patch, 0.1 °C steps.
* ECG patch (0x2A37): heart rate plus the RR intervals of the beats in each frame, in
  1/1024 s ticks as on the wire; AF scatters them, a fall's motion loses contact.
* glucometer (0x2A18): a capillary test every ``period_s``, value in kg/L on the wire
  (the codec converts from mg/dL; never assumed mg/dL on the way back).
* scale (0x2A9D): 0.1 kg steps.
"""

from __future__ import annotations

from typing import Any

from firmware_sim._hal import Hal
from firmware_sim.devices._firmware import State
from firmware_sim.devices._records import gatt_time
from firmware_sim.devices._serial import SerialDevice
from firmware_sim.physiology import ChannelSpec, measure

SYS_SPEC = ChannelSpec(noise_sd=4.0, resolution=1.0, lo=40.0, hi=280.0)
DIA_SPEC = ChannelSpec(noise_sd=3.0, resolution=1.0, lo=20.0, hi=200.0)
CUFF_PULSE_SPEC = ChannelSpec(noise_sd=1.5, resolution=1.0, lo=30.0, hi=240.0)
TEMP_SPEC = ChannelSpec(noise_sd=0.05, resolution=0.1, lo=30.0, hi=43.0)
ECG_HR_SPEC = ChannelSpec(noise_sd=0.0, resolution=1.0, lo=20.0, hi=250.0)
GLUCOSE_SPEC = ChannelSpec(noise_sd=0.05, resolution=1.0, lo=20.0, hi=600.0, relative=True)
WEIGHT_SPEC = ChannelSpec(noise_sd=0.1, resolution=0.1, lo=0.0, hi=300.0)


class BloodPressureCuff(SerialDevice):
    kind = "bp"
    model = "SIM-NIBP-300"
    #: Battery used by one inflation (the pump dominates a cuff's consumption).
    inflation_cost_pct = 0.08

    def __init__(
        self, device_id: str, hal: Hal, period_s: float = 900.0, *, keep_log: bool = False
    ) -> None:
        super().__init__(device_id, hal, "sbf1", period_s, keep_log=keep_log)
        self._retry_left = 1
        self._inflating = False
        self._resume = State.MEASURING

    def first_tick_delay(self) -> float:
        return min(self.period_s, 30.0)  # first reading shortly after it is put on

    def request_measurement(self) -> bool:
        """Measure now (nurse presses the button, or the gateway asks); False if busy/off."""
        if self._inflating or self.state not in (State.MEASURING, State.LOW_BATTERY):
            return False
        self._start(self.hal.clock.now())
        return True

    def measure(self, t: float) -> float | None:
        if not self._inflating:
            self._retry_left = 1
            self._start(t)
        self.housekeeping()
        return None

    def _start(self, t: float) -> None:
        sensor = self.hal.sensor
        assert sensor is not None
        vitals, _ = sensor.sample(t)
        self._inflating = True
        self._resume = self.state
        self._go(State.INFLATING, "measurement started")
        self.hal.battery.consume(self.inflation_cost_pct)
        self.hal.clock.call_later(25.0 + vitals.systolic / 10.0, self._complete)

    def _complete(self) -> None:
        self._inflating = False
        if self.state is not State.INFLATING:  # link lost or shut down meanwhile
            return
        t = self.hal.clock.now()
        self._go(self._resume, "measurement done")
        sensor = self.hal.sensor
        assert sensor is not None
        vitals, artefacts = sensor.sample(t)
        if "motion" in artefacts or "finger_out" in artefacts or vitals.rhythm == "VF":
            self.send(
                {
                    "kind": "status",
                    "values": {"battery_pct": self.hal.battery.percent()},
                    "flags": [*self.status_flags(), "measurement_error"],
                    "error_code": 0x11,
                }
            )
            if self._retry_left > 0:
                self._retry_left -= 1
                self.hal.clock.call_later(60.0, self._retry)
            return
        noise = sensor.noise
        sys_ = int(measure(vitals.systolic, SYS_SPEC, noise))
        dia = int(min(measure(vitals.diastolic, DIA_SPEC, noise), sys_ - 10))
        record: dict[str, Any] = {
            "kind": "bp",
            "values": {
                "systolic_mmhg": sys_,
                "diastolic_mmhg": dia,
                "map_mmhg": round(dia + (sys_ - dia) / 3),
                "pulse_bpm": int(measure(vitals.heart_rate, CUFF_PULSE_SPEC, noise)),
            },
        }
        stamp = gatt_time(self.hal.rtc)
        if stamp is not None:
            record["timestamp"] = stamp
        if vitals.rhythm == "AF":
            record["measurement_status"] = ["irregular_pulse"]
        self.send(record)

    def _retry(self) -> None:
        if self.state in (State.MEASURING, State.LOW_BATTERY) and not self._inflating:
            self._start(self.hal.clock.now())


class Thermometer(SerialDevice):
    kind = "temperature"
    model = "SIM-TEMP-PATCH"

    def __init__(
        self, device_id: str, hal: Hal, period_s: float = 300.0, *, keep_log: bool = False
    ) -> None:
        super().__init__(device_id, hal, "sbf1", period_s, keep_log=keep_log)

    def first_tick_delay(self) -> float:
        return min(self.period_s, 10.0)

    def measure(self, t: float) -> float | None:
        sensor = self.hal.sensor
        assert sensor is not None
        vitals, artefacts = sensor.sample(t)
        if "finger_out" in artefacts:  # patch off the skin: nothing worth sending
            self.housekeeping()
            return None
        value = measure(vitals.temperature, TEMP_SPEC, sensor.noise)
        self.send(
            {
                "kind": "temperature",
                "values": {"temperature_c": value},
                "temperature_type": "armpit",
            }
        )
        self.housekeeping()
        return None


class EcgPatch(SerialDevice):
    """Heart rate with RR intervals. Beats are generated from the patient's heart rate
    with beat-to-beat variability (sinus) or irregularity (AF); each frame carries the
    intervals of the beats completed since the previous frame."""

    kind = "ecg"
    model = "SIM-ECG-PATCH"

    def __init__(
        self, device_id: str, hal: Hal, period_s: float = 1.0, *, keep_log: bool = False
    ) -> None:
        super().__init__(device_id, hal, "sbf1", period_s, keep_log=keep_log)
        self._next_beat: float | None = None
        self._recent: list[int] = []

    def measure(self, t: float) -> float | None:
        sensor = self.hal.sensor
        assert sensor is not None
        noise = sensor.noise
        vitals, artefacts = sensor.sample(t)
        if self._next_beat is None or self._next_beat < t - 5.0:
            self._next_beat = t
        ticks: list[int] = []
        # The rate and rhythm of this tick drive every beat in it: within a second they
        # do not change, and one patient sample per tick keeps a 1 Hz patch cheap.
        hr = max(20.0, vitals.heart_rate)
        while self._next_beat <= t:
            rr = 60.0 / hr
            if vitals.rhythm == "AF":
                rr *= noise.uniform(0.62, 1.38)
            else:
                rr *= 1.0 + noise.normal(0.025)
            tick = max(150, min(3000, round(rr * 1024)))
            ticks.append(tick)
            self._next_beat += tick / 1024.0
        if "finger_out" in artefacts or ("motion" in artefacts and noise.random() < 0.5):
            self.send(
                {
                    "kind": "heart_rate",
                    "values": {"heart_rate_bpm": 0},
                    "sensor_contact": "not_detected",
                }
            )
            self._recent.clear()
            self.housekeeping()
            return None
        self._recent = (self._recent + ticks)[-8:]
        if self._recent:
            hr_value = round(60.0 * 1024.0 * len(self._recent) / sum(self._recent))
        else:
            hr_value = round(vitals.heart_rate)
        values: dict[str, Any] = {"heart_rate_bpm": int(measure(hr_value, ECG_HR_SPEC, noise))}
        if ticks:
            # Exact on the wire: k/1024 s → k × 1000/1024 ms decodes back to k ticks.
            values["rr_ms"] = [k * 1000 / 1024 for k in ticks]
        self.send({"kind": "heart_rate", "values": values, "sensor_contact": "detected"})
        self.housekeeping()
        return None


class Glucometer(SerialDevice):
    kind = "glucose"
    model = "SIM-GLUCO-5"

    def __init__(
        self, device_id: str, hal: Hal, period_s: float = 4 * 3600.0, *, keep_log: bool = False
    ) -> None:
        super().__init__(device_id, hal, "sbf1", period_s, keep_log=keep_log)
        self._sequence = 0

    def first_tick_delay(self) -> float:
        return min(self.period_s, 60.0)

    def measure(self, t: float) -> float | None:
        sensor = self.hal.sensor
        assert sensor is not None
        vitals, _ = sensor.sample(t)
        value = measure(vitals.glucose, GLUCOSE_SPEC, sensor.noise)
        record: dict[str, Any] = {
            "kind": "glucose",
            "values": {"glucose_mg_dl": int(value)},
            "sequence": self._sequence,
            "base_time": gatt_time(self.hal.rtc) or "0000-00-00T00:00:00",
            "sample_type": 1,  # capillary whole blood
            "sample_location": 1,  # finger
        }
        self._sequence = (self._sequence + 1) & 0xFFFF
        self.send(record)
        self.housekeeping()
        return None


class Scale(SerialDevice):
    kind = "weight"
    model = "SIM-SCALE-200"

    def __init__(
        self, device_id: str, hal: Hal, period_s: float = 86400.0, *, keep_log: bool = False
    ) -> None:
        super().__init__(device_id, hal, "sbf1", period_s, keep_log=keep_log)

    def first_tick_delay(self) -> float:
        return min(self.period_s, 60.0)

    def measure(self, t: float) -> float | None:
        sensor = self.hal.sensor
        assert sensor is not None
        vitals, _ = sensor.sample(t)
        value = measure(vitals.weight, WEIGHT_SPEC, sensor.noise)
        self.send({"kind": "weight", "values": {"weight_kg": value}})
        self.housekeeping()
        return None
