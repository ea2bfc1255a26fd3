"""Pulse oximeter firmware, in each real format and in sbf1.

One measurement chain, four output formats: the sensor front end samples the patient,
the oximeter turns it into a reading (SpO2 and pulse with device accuracy, perfusion,
artefact flags, "searching" when there is no pulsatile signal) and the format module
(:mod:`firmware_sim.devices._records`) lays it out. Artefacts behave as they do at the
bedside: motion drags SpO2 down and makes the pulse erratic, low perfusion makes both
noisy, a finger out of the probe gives no reading at all, and without cardiac output (VF)
the oximeter searches for a pulse it cannot find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_sim._hal import Hal
from firmware_sim.devices import _records as records
from firmware_sim.devices._serial import SerialDevice
from firmware_sim.physiology import ChannelSpec, measure

#: Typical oximeter accuracy: ±2 % SpO2 (1 SD ≈ 1 %), ±2 bpm; both reported as integers.
SPO2_SPEC = ChannelSpec(noise_sd=0.8, resolution=1.0, lo=50.0, hi=100.0)
PULSE_SPEC = ChannelSpec(noise_sd=1.0, resolution=1.0, lo=25.0, hi=240.0)
#: Below this perfusion index (%) the signal is flagged as low perfusion.
LOW_PERFUSION_PI = 0.3
#: A spot-check oximeter shows its value only after averaging a few seconds of stable
#: signal (8 s is the usual averaging time), so its measurement noise is that of an
#: 8-sample mean: 1/sqrt(8) of a single beat-to-beat reading. Without it a healthy
#: resident's one-off spot check read 91 % now and then, which NEWS2 rightly scores 3
#: (P1): the noise, not the resident, was wrong. The resident's own slow wander is not
#: averaged away (it lasts minutes), nor is an artefact (it is flagged instead).
SPOT_CHECK_AVERAGE_S = 8


@dataclass(frozen=True, slots=True)
class OxReading:
    """What the oximeter's processor concluded for one second."""

    spo2: int | None
    pulse: int | None
    pi: float
    motion: bool = False
    low_perfusion: bool = False
    finger_out: bool = False
    searching: bool = False


class PulseOximeter(SerialDevice):
    """Finger pulse oximeter: continuous at 1 Hz (spot-check every ``period_s`` for
    ``spot_check`` sbf1 devices), contec streams 60 packets a second."""

    kind = "spo2"
    model = "SIM-OXI-100"

    def __init__(
        self,
        device_id: str,
        hal: Hal,
        fmt: str,
        period_s: float = 1.0,
        *,
        spot_check: bool = False,
        keep_log: bool = False,
        model: str | None = None,
    ) -> None:
        if model is None:
            model = {
                "masimo-ascii1": "Radical-7",
                "nonin-df8": "Nonin 7500",
                "contec-cms50d": "CMS50D+",
            }.get(fmt, "SIM-PLX-100")
        super().__init__(device_id, hal, fmt, period_s, model=model, keep_log=keep_log)
        if hal.sensor is None:
            raise ValueError(f"{device_id}: an oximeter needs a sensor front end")
        self.spot_check = spot_check and fmt == "sbf1"
        self._masimo_sn = records.masimo_serial(device_id)
        self._phase = 0.0  # pleth phase, for contec's waveform
        self._no_pulse_since: float | None = None

    def read(self, t: float) -> OxReading:
        sensor = self.hal.sensor
        assert sensor is not None
        vitals, artefacts = sensor.sample(t)
        noise = sensor.noise
        pi = max(0.02, vitals.perfusion_index)
        if "finger_out" in artefacts:
            return OxReading(None, None, 0.0, finger_out=True)
        low_perf = "low_perfusion" in artefacts or pi < LOW_PERFUSION_PI
        if "low_perfusion" in artefacts:
            pi = min(pi, 0.2)
        motion = "motion" in artefacts
        if pi <= 0.05 or vitals.rhythm == "VF":
            if self._no_pulse_since is None:
                self._no_pulse_since = t
            return OxReading(None, None, round(pi, 2), low_perfusion=True, searching=True)
        self._no_pulse_since = None
        scale = (3.0 if motion else 1.0) * (2.0 if low_perf else 1.0)
        if self.spot_check:
            scale /= math.sqrt(SPOT_CHECK_AVERAGE_S)
        true_spo2 = vitals.spo2
        if motion:  # venous pulsation under motion reads as desaturation
            true_spo2 -= abs(noise.normal(3.0))
        spo2 = measure(true_spo2, SPO2_SPEC, noise, scale)
        pulse = measure(vitals.heart_rate, PULSE_SPEC, noise, 2.0 * scale if motion else scale)
        return OxReading(int(spo2), int(pulse), round(pi, 2), motion, low_perf)

    def measure(self, t: float) -> float | None:
        reading = self.read(t)
        battery = self.hal.battery
        if self.format == "sbf1":
            self.send(records.sbf1_spo2(reading, self.spot_check, self.hal.rtc))
        elif self.format == "masimo-ascii1":
            self.send(records.masimo_line(reading, self.hal.rtc, self._masimo_sn, battery))
        elif self.format == "nonin-df8":
            self.send(records.nonin_record(reading, battery))
        elif self.format == "contec-cms50d":
            sensor = self.hal.sensor
            assert sensor is not None
            hr = reading.pulse or 60
            step = hr / 60.0 / records.CONTEC_RATE  # cycles per packet
            for _ in range(records.CONTEC_RATE):
                phase = self._phase + step
                beat = phase >= 1.0 and reading.pulse is not None
                self._phase = phase % 1.0
                self.send(records.contec_packet(reading, _pleth(self._phase, reading), beat))
        else:  # pragma: no cover - get_codec already refused unknown formats
            raise ValueError(self.format)
        self.housekeeping()
        return None


def _pleth(phase: float, reading: OxReading) -> int:
    """A plethysmogram sample 0..100: systolic upstroke, dicrotic notch, scaled by PI."""
    if reading.pulse is None:
        return 0
    wave = math.exp(-(((phase - 0.15) / 0.08) ** 2)) + 0.35 * math.exp(
        -(((phase - 0.45) / 0.1) ** 2)
    )
    amplitude = min(1.0, 0.25 + reading.pi / 5.0)
    return max(0, min(100, round(20 + 70 * amplitude * wave)))
