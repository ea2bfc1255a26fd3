"""Device firmwares: state machines over the HAL, one class per device family."""

from firmware_sim.devices._bedside import (
    BloodPressureCuff,
    EcgPatch,
    Glucometer,
    Scale,
    Thermometer,
)
from firmware_sim.devices._firmware import ACTIVE_STATES, Emission, Firmware, State, Transition
from firmware_sim.devices._oximeter import OxReading, PulseOximeter
from firmware_sim.devices._serial import FIRMWARE_VERSION, SerialDevice

#: Serial device kinds (as in SPECs and scenario files) → firmware class.
SERIAL_KINDS: dict[str, type[SerialDevice]] = {
    "spo2": PulseOximeter,
    "bp": BloodPressureCuff,
    "temperature": Thermometer,
    "ecg": EcgPatch,
    "glucose": Glucometer,
    "weight": Scale,
}

#: Default sampling period (seconds) of each kind when neither profile nor scenario says.
DEFAULT_PERIODS: dict[str, float] = {
    "spo2": 1.0,
    "bp": 900.0,
    "temperature": 300.0,
    "ecg": 1.0,
    "glucose": 4 * 3600.0,
    "weight": 86400.0,
}

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_PERIODS",
    "FIRMWARE_VERSION",
    "SERIAL_KINDS",
    "BloodPressureCuff",
    "EcgPatch",
    "Emission",
    "Firmware",
    "Glucometer",
    "OxReading",
    "PulseOximeter",
    "Scale",
    "SerialDevice",
    "State",
    "Thermometer",
    "Transition",
]
