"""Envelope bodies a gateway builds from decoded serial frames (vitals, status, birth, death).

One module per body family keeps the mapping from the codecs' vocabulary (value keys,
format-specific flags) to the protocols models in one place. Every body is a validated
protocols model: an observation the models would refuse (a heart rate of 0 from a patch
that lost contact) is left out here rather than sent to be quarantined, because the frame
itself was valid — the device had nothing to measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError

from hardware import DeviceProfile
from protocols import BirthBody, DeathBody, DeviceStatus, Observation, StatusBody, VitalsBody
from protocols.models import LoincCodeStr
from protocols.vocab import DEVICE_FLAGS, LOINC, VALUE_KEYS, DeviceFlag

#: Format-specific condition names (sbf1 STATUS/PLX status, Masimo exceptions and alarms,
#: Nonin and Contec status bits, heart-rate sensor contact) → contract device flags.
FLAG_MAP: dict[str, str] = {
    # sbf1 STATUS (already contract names)
    **{name: name for name in DEVICE_FLAGS},
    # PLX device and sensor status
    "sensor_unconnected_to_user": "sensor_off",
    "sensor_disconnected": "sensor_off",
    "sensor_displaced": "sensor_off",
    "erratic_signal": "artifact",
    "poor_signal": "artifact",
    "inadequate_signal": "artifact",
    "signal_analysis_ongoing": "searching",
    "sensor_malfunctioning": "sensor_fault",
    "equipment_malfunction": "sensor_fault",
    "sensor_interference": "interference",
    # Masimo exceptions
    "defective_sensor": "sensor_fault",
    "pulse_search": "searching",
    "ambient_light": "interference",
    "low_signal_iq": "artifact",
    # Nonin
    "out_of_track": "searching",
    "marginal_perfusion": "low_perfusion",
    "sensor_alarm": "sensor_fault",
    # Contec
    "finger_out": "sensor_off",
    "probe_error": "sensor_fault",
    # BP measurement status
    "body_movement": "artifact",
}

_FLAG_ORDER = {name: i for i, name in enumerate(DEVICE_FLAGS)}


def device_flags(extra: Mapping[str, Any]) -> tuple[str, ...]:
    """Contract flags found in a decoded frame's format-specific fields."""
    names: list[str] = []
    for key in ("flags", "device_status", "exceptions", "status", "measurement_status"):
        value = extra.get(key)
        if isinstance(value, list):
            names.extend(v for v in value if isinstance(v, str))
    alarm = extra.get("alarm")
    if isinstance(alarm, list) and "low_battery" in alarm:
        names.append("low_battery")
    if extra.get("sensor_contact") == "not_detected":
        names.append("sensor_off")
    if extra.get("device_clock_not_set"):
        names.append("clock_not_set")
    flags = {FLAG_MAP[n] for n in names if n in FLAG_MAP}
    return tuple(sorted(flags, key=_FLAG_ORDER.__getitem__))


def observations(values: Mapping[str, Any], time: datetime) -> list[Observation]:
    """One observation per vital-sign value key present with a plausible value."""
    out: list[Observation] = []
    seen: set[str] = set()
    for key, value in values.items():
        info = VALUE_KEYS.get(key)
        if info is None or info.loinc is None or value is None or isinstance(value, bool):
            continue
        if not isinstance(value, int | float) or info.loinc in seen:
            continue
        loinc = LOINC[info.loinc]
        assert loinc.low is not None and loinc.high is not None
        if not loinc.low <= value <= loinc.high:
            continue
        seen.add(info.loinc)
        out.append(
            Observation(
                code=cast(LoincCodeStr, info.loinc),
                value=float(value),
                unit=loinc.unit,
                time=time,
                method="device",
            )
        )
    return out


def vitals_body(
    values: Mapping[str, Any],
    time: datetime,
    *,
    patient: str | None,
    battery_pct: int | None,
    flags: Iterable[str] = (),
) -> VitalsBody | None:
    """A vitals body, or None when the frame carried no usable value."""
    obs = observations(values, time)
    if not obs:
        return None
    status = DeviceStatus(battery_pct=battery_pct, flags=tuple(cast(Iterable[DeviceFlag], flags)))
    try:
        return VitalsBody(v=1, patient=patient, observations=tuple(obs), device_status=status)
    except ValidationError:  # e.g. a diastolic above systolic from a spoiled reading
        return None


def status_body(
    state: str,
    *,
    battery_pct: int | None,
    flags: Iterable[str] = (),
    error_code: int | None = None,
    clock_offset_s: float | None = None,
    detail: str | None = None,
) -> StatusBody:
    return StatusBody(
        v=1,
        state=state,  # type: ignore[arg-type]
        battery_pct=battery_pct,
        flags=tuple(cast(Iterable[DeviceFlag], flags)),
        error_code=error_code,
        clock_offset_s=clock_offset_s,
        detail=detail[:200] if detail else None,
    )


def birth_body(
    profile: DeviceProfile,
    *,
    model: str | None = None,
    serial: str,
    firmware: str = "unknown",
    period_s: float | None = None,
) -> BirthBody:
    """What a device is, from its profile and (sbf1) its HELLO."""
    return BirthBody(
        v=1,
        kind=profile.kind,
        model=model or profile.model,
        manufacturer=profile.manufacturer,
        serial=serial,
        firmware=firmware,
        format=profile.format,
        mdc=tuple(profile.mdc),  # type: ignore[arg-type]
        profile=profile.name,
        sampling_period_s=period_s or profile.sampling_period_s,
    )


def death_body(reason: str) -> DeathBody:
    return DeathBody(v=1, reason=reason)  # type: ignore[arg-type]
