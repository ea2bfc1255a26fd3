"""Records in the shape each codec encodes: the one place that knows format-specific keys.

A record is what ``samu protocols decode`` prints for the frame (``kind``, ``values`` and
the format's extra keys), so "the frame decodes to the values the device produced" is a
plain comparison. Keeping all format knowledge here means a change in a codec's optional
keys is a change in this file only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_sim._hal import Battery, Rtc
    from firmware_sim.devices._oximeter import OxReading

#: Contec CMS50D+ live stream rate (packets per second), protocols.md 1.2.
CONTEC_RATE = 60


def gatt_time(rtc: Rtc) -> str | None:
    """GATT Date Time text (``YYYY-MM-DDTHH:MM:SS``) of the device clock, None if unset.

    The characteristic carries no zone: devices show local time (nurses set them from
    the wall clock); the gateway knows the site's zone and converts back.
    """
    local = rtc.local()
    return None if local is None else local.strftime("%Y-%m-%dT%H:%M:%S")


# -- oximeters ---------------------------------------------------------------------------
def sbf1_spo2(reading: OxReading, spot_check: bool, rtc: Rtc) -> dict[str, Any]:
    """PLX continuous (0x2A5F) or spot-check (0x2A5E) with the PLX device/sensor status."""
    record: dict[str, Any] = {
        "kind": "spo2",
        "uuid": "0x2A5E" if spot_check else "0x2A5F",
        "values": {"spo2_pct": reading.spo2, "pulse_bpm": reading.pulse},
    }
    status: list[str] = []
    if reading.finger_out:
        status.append("sensor_unconnected_to_user")
    if reading.low_perfusion:
        status.append("low_perfusion")
    if reading.motion:
        status.append("erratic_signal")
    if reading.searching:
        status.append("signal_analysis_ongoing")
    if status:
        record["device_status"] = status
    if spot_check:
        stamp = gatt_time(rtc)
        if stamp is not None:
            record["timestamp"] = stamp
        else:
            record["device_clock_not_set"] = True
    return record


def masimo_serial(device_id: str) -> str:
    """A 10-digit Masimo-style serial number derived from the device id (stable)."""
    import zlib

    return f"{zlib.crc32(device_id.encode()) % 10**10:010d}"


def masimo_clock(rtc: Rtc) -> str:
    """The monitor's clock as it prints it, local time: ``MM/DD/YY HH:MM:SS``.

    A Radical-7 whose clock was never set prints its epoch; we print ``00/00/00
    00:00:00`` so a test (and a technician) can tell.
    """
    t = rtc.local()
    if t is None:
        return "00/00/00 00:00:00"
    date = f"{t.month:02d}/{t.day:02d}/{t.year % 100:02d}"
    return f"{date} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def masimo_line(reading: OxReading, rtc: Rtc, serial: str, battery: Battery) -> dict[str, Any]:
    """A Radical-7 "ASCII 1" line: values, PI/PVI, alarm and exception bit fields.

    ``serial`` is the monitor's SN (see :func:`masimo_serial`).
    """
    alarm: list[str] = []
    if reading.spo2 is not None and reading.spo2 < 90:
        alarm += ["spo2_low", "alarm_active"]
    if reading.pulse is not None and reading.pulse > 120:
        alarm += ["pr_high", "alarm_active"]
    if reading.pulse is not None and reading.pulse < 50:
        alarm += ["pr_low", "alarm_active"]
    if battery.is_low():
        alarm.append("low_battery")
    exc: list[str] = []
    if reading.finger_out:
        exc += ["sensor_off"]
    if reading.low_perfusion:
        exc.append("low_perfusion")
    if reading.searching:
        exc.append("pulse_search")
    if reading.motion:
        exc += ["interference", "low_signal_iq"]
    aux: dict[str, Any] = {
        "pi_pct": None if reading.finger_out else round(min(reading.pi, 20.0), 2),
        "spco_pct": None,
        "spmet_pct": None,
        "desat": 0,
        "pi_delta": 0,
        "pvi": None if reading.pulse is None else 14,
    }
    return {
        "kind": "spo2",
        "device_clock": masimo_clock(rtc),
        "serial": serial,
        "values": {"spo2_pct": reading.spo2, "pulse_bpm": reading.pulse},
        "aux": aux,
        "alarm": sorted(set(alarm), key=alarm.index),
        "exceptions": exc,
    }


def nonin_record(reading: OxReading, battery: Battery) -> dict[str, Any]:
    """A Nonin Data Format 8 record: SpO2/HR (None → 127/511) and both status bytes."""
    status: list[str] = []
    if reading.finger_out:
        status.append("sensor_disconnected")
    if reading.searching:
        status.append("out_of_track")
    if reading.low_perfusion and not reading.finger_out:
        status.append("low_perfusion" if reading.pi < 0.1 else "marginal_perfusion")
    if reading.motion:
        status.append("artifact")
    if reading.finger_out or reading.searching:
        status.append("sensor_alarm")
    if battery.is_critical():
        status.append("critical_battery")
    elif battery.is_low():
        status.append("low_battery")
    return {
        "kind": "spo2",
        "values": {"spo2_pct": reading.spo2, "pulse_bpm": reading.pulse},
        "status": status,
    }


def contec_packet(reading: OxReading, pleth: int, beat: bool = False) -> dict[str, Any]:
    """One CMS50D+ live packet: values (None → 127/255), pleth sample, signal, bar graph."""
    status: list[str] = []
    if reading.finger_out:
        status.append("finger_out")
    if reading.searching:
        status.append("searching")
    if reading.spo2 is not None and reading.spo2 < 90:
        status.append("spo2_dropping")
    if beat:
        status.append("pulse_beep")
    if reading.finger_out or reading.pulse is None:
        signal = 0
    else:
        signal = max(1, min(8, round(2 + reading.pi)))
        if reading.motion:
            signal = max(1, signal - 3)
    return {
        "kind": "spo2",
        "values": {"spo2_pct": reading.spo2, "pulse_bpm": reading.pulse},
        "signal_strength": signal,
        "pleth": min(127, pleth),
        "bar_graph": min(15, pleth * 15 // 100),
        "status": status,
    }
