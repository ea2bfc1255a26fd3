"""Cardiac implants (pacemaker, ICD, CRT-D, CRT-P) and their home transmitters."""

from firmware_sim.implants._device import (
    BASE_IMPEDANCE,
    LEADS,
    TYPE_CODES,
    Alert,
    Episode,
    EpisodePlan,
    Implant,
    ImplantType,
    LeadChange,
)
from firmware_sim.implants._transmitter import (
    SESSION_ALERT,
    SESSION_REMOTE,
    SESSION_SCHEDULED,
    Transmitter,
    Window,
)

__all__ = [
    "BASE_IMPEDANCE",
    "LEADS",
    "SESSION_ALERT",
    "SESSION_REMOTE",
    "SESSION_SCHEDULED",
    "TYPE_CODES",
    "Alert",
    "Episode",
    "EpisodePlan",
    "Implant",
    "ImplantType",
    "LeadChange",
    "Transmitter",
    "Window",
]
