"""Bodies a device (or its gateway) publishes about itself and its readings.

``birth`` is retained, so a subscriber that connects later still learns what a device
is; ``death`` is the gateway's MQTT Last Will. A Last Will is handed to the broker at
connect time, so its envelope is signed then: its ``sent`` is when the will was
registered, not when the connection died (the broker's delivery time tells the latter),
and its ``seq`` is one the gateway reserved for it at connect.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from protocols.models._observation import Observation
from protocols.models._types import V1, Id, Message, ShortText, Tuple
from protocols.vocab import DeviceFlag, DeviceKind, SerialFormat

__all__ = [
    "BirthBody",
    "DeathBody",
    "DeviceStatus",
    "MdcCode",
    "StatusBody",
    "VitalsBody",
]

MdcCode = Literal[
    150456, 149530, 150021, 150022, 150023, 149546, 150364, 188736, 160184, 147842, 147240
]
"""IEEE 11073-10101 codes a device may declare (:data:`protocols.vocab.MDC`)."""

BatteryPct = Annotated[int, Field(ge=0, le=100)]
ErrorCode = Annotated[int, Field(ge=0, le=255)]


class DeviceStatus(Message):
    """Condition of the measuring device at the time of a reading.

    Attributes:
        battery_pct: remaining battery, 0–100, when the device reports it.
        flags: active condition flags (:data:`protocols.vocab.DEVICE_FLAGS`), no repeats.
        error_code: device-specific error code (sbf1 STATUS byte), 0–255.
    """

    battery_pct: BatteryPct | None = None
    flags: Annotated[Tuple[DeviceFlag], Field(max_length=16)] = ()
    error_code: ErrorCode | None = None

    @model_validator(mode="after")
    def _unique_flags(self) -> DeviceStatus:
        if len(set(self.flags)) != len(self.flags):
            raise ValueError("flags must not repeat")
        return self


class VitalsBody(Message):
    """``vitals``: observations of one patient from one device (or typed by a nurse).

    Attributes:
        v: body version (1).
        patient: the site's pseudonymous reference of the resident/patient, or ``None``
            when the device is not (yet) assigned; the console then attaches readings
            through its device → patient assignment, never by guessing.
        observations: 1–256 observations.
        device_status: the device's condition, when known.
    """

    v: V1
    patient: Id | None = None
    observations: Annotated[Tuple[Observation], Field(min_length=1, max_length=256)]
    device_status: DeviceStatus | None = None

    @model_validator(mode="after")
    def _diastolic_below_systolic(self) -> VitalsBody:
        systolic = {o.time: o.value for o in self.observations if o.code == "8480-6"}
        for o in self.observations:
            if o.code == "8462-4" and o.time in systolic:
                sys_value = systolic[o.time]
                if isinstance(sys_value, str) or isinstance(o.value, str):
                    continue  # already refused by Observation
                if o.value > sys_value:
                    raise ValueError(
                        f"diastolic {o.value:g} mm[Hg] above systolic {sys_value:g} mm[Hg] "
                        "measured at the same time"
                    )
        return self


class StatusBody(Message):
    """``status``: the device's health as its gateway sees it.

    Attributes:
        v: body version (1).
        state: ``ok``; ``degraded`` (working with flags raised); ``fault`` (not
            measuring); ``disconnected`` (the gateway lost the device: cable, Bluetooth).
        battery_pct: remaining battery, 0–100.
        flags: active condition flags, no repeats.
        error_code: device-specific error code, 0–255.
        clock_offset_s: device clock minus gateway clock, seconds, so the console can
            show clock skew instead of silently misdating readings.
        detail: a short human-readable explanation.
    """

    v: V1
    state: Literal["ok", "degraded", "fault", "disconnected"]
    battery_pct: BatteryPct | None = None
    flags: Annotated[Tuple[DeviceFlag], Field(max_length=16)] = ()
    error_code: ErrorCode | None = None
    clock_offset_s: Annotated[float, Field(ge=-1e9, le=1e9)] | None = None
    detail: ShortText | None = None

    @model_validator(mode="after")
    def _unique_flags(self) -> StatusBody:
        if len(set(self.flags)) != len(self.flags):
            raise ValueError("flags must not repeat")
        return self


class BirthBody(Message):
    """``birth`` (retained): what the device is.

    Attributes:
        v: body version (1).
        kind: device kind (:data:`protocols.vocab.DEVICE_KINDS`).
        model: model name as the manufacturer writes it.
        manufacturer: manufacturer name.
        serial: serial number.
        firmware: firmware version string.
        format: serial format the gateway decodes, ``None`` for a device that publishes
            envelopes itself.
        mdc: IEEE 11073-10101 codes of the metrics it measures, no repeats.
        profile: hardware profile name (hardware/profiles/<name>.toml), when one applies.
        sampling_period_s: nominal seconds between readings.
    """

    v: V1
    kind: DeviceKind
    model: ShortText
    manufacturer: ShortText | None = None
    serial: ShortText
    firmware: ShortText
    format: SerialFormat | None = None
    mdc: Annotated[Tuple[MdcCode], Field(max_length=32)] = ()
    profile: Id | None = None
    sampling_period_s: Annotated[float, Field(gt=0, le=86400 * 7)] | None = None

    @model_validator(mode="after")
    def _unique_codes(self) -> BirthBody:
        if len(set(self.mdc)) != len(self.mdc):
            raise ValueError("mdc codes must not repeat")
        return self


class DeathBody(Message):
    """``death`` (Last Will, or a clean goodbye).

    Attributes:
        v: body version (1).
        reason: ``connection_lost`` (the Last Will), ``shutdown``, ``battery_depleted``,
            ``removed`` (unenrolled), ``fault``.
    """

    v: V1
    reason: Literal["connection_lost", "shutdown", "battery_depleted", "removed", "fault"]
