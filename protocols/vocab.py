"""Code systems every message uses: LOINC + UCUM, IEEE 11073 MDC and MDC_IDC, Hub Santé.

The tables here are the single place where a code gets a meaning, a unit and a plausible
range, so the models, the device profiles, triage and the exports cannot disagree. Only
codes given by the design notes (docs of record: /work/shared/design/README.md) or the
Hub Santé nomenclatures are listed; nothing is invented.

Plausible ranges are *physiological* limits, not normal ranges: a value outside them
cannot come from a living patient or a working sensor, so the message is quarantined
rather than scored. Where triage has an accepted input range (triage.md) the same range is
used, so any value the models accept is one the scorer accepts too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ACVPU",
    "BATTERY_STATUSES",
    "CALLER_TYPES",
    "CONSENT_CALLER_TYPES",
    "DEVICE_FLAGS",
    "DEVICE_KINDS",
    "HV_LEAD_OHMS",
    "IDC_DEVICE_TYPES",
    "IDC_EPISODE_TYPE_CODE",
    "IDC_SESSION_TYPES",
    "IDC_TERMS",
    "ID_PATTERN",
    "LOINC",
    "MDC",
    "PACING_LEAD_OHMS",
    "SBF1_CHARACTERISTICS",
    "SERIAL_FORMATS",
    "SEXES",
    "VALUE_KEYS",
    "DeviceFlag",
    "DeviceKind",
    "IdcTerm",
    "IdcTermName",
    "LoincCode",
    "SerialFormat",
    "ValueKey",
    "is_valid_id",
    "lead_impedance_in_range",
    "nir_key",
]

ID_PATTERN: Final = r"^[A-Za-z0-9._-]{1,64}$"
"""Site, device, session, centre and key ids: safe as MQTT topic levels and file names
(no ``/``, ``+``, ``#``, no spaces, no NUL) and short enough to index."""

_ID_RE: Final = re.compile(ID_PATTERN)


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a string matching :data:`ID_PATTERN`.

    ``re.fullmatch`` is used because ``$`` alone would accept a trailing newline.
    """
    return isinstance(value, str) and len(value) <= 64 and _ID_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------------------
# LOINC observations (vital signs), with UCUM units
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoincCode:
    """One LOINC code accepted in an observation.

    Attributes:
        code: the LOINC code.
        display: English display name.
        unit: the one UCUM unit accepted, or ``None`` for a coded (non-numeric) answer.
        low: lowest plausible value (inclusive), ``None`` for coded answers.
        high: highest plausible value (inclusive).
        why: the reason for the range, kept next to it so it can be reviewed.
    """

    code: str
    display: str
    unit: str | None
    low: float | None
    high: float | None
    why: str

    @property
    def numeric(self) -> bool:
        """True for quantities, False for coded answers (ACVPU)."""
        return self.unit is not None


ACVPU: Final = ("A", "C", "V", "P", "U")
"""Level of consciousness (NEWS2): Alert, new Confusion, Voice, Pain, Unresponsive."""

LOINC: Final[dict[str, LoincCode]] = {
    c.code: c
    for c in (
        LoincCode(
            "9279-1",
            "Respiratory rate",
            "/min",
            0,
            80,
            "0 is apnoea and must be recordable; triage accepts 0–80 /min.",
        ),
        LoincCode(
            "59408-5",
            "Oxygen saturation in arterial blood by pulse oximetry",
            "%",
            0,
            100,
            "A saturation is a fraction of haemoglobin: 0–100 % by definition.",
        ),
        LoincCode(
            "2708-6",
            "Oxygen saturation in arterial blood",
            "%",
            0,
            100,
            "A saturation is a fraction of haemoglobin: 0–100 % by definition.",
        ),
        LoincCode(
            "8480-6",
            "Systolic blood pressure",
            "mm[Hg]",
            0,
            300,
            "0 is an unmeasurable pressure (arrest); above 300 is beyond cuffs and life; "
            "triage accepts 0–300.",
        ),
        LoincCode(
            "8462-4",
            "Diastolic blood pressure",
            "mm[Hg]",
            0,
            250,
            "Never above a plausible systolic; 250 leaves room for hypertensive crises.",
        ),
        LoincCode(
            "8867-4",
            "Heart rate",
            "/min",
            0,
            300,
            "0 is asystole; above 300 /min is not conducted by a human heart; "
            "triage accepts 0–300.",
        ),
        LoincCode(
            "8310-5",
            "Body temperature",
            "Cel",
            25,
            45,
            "Clinical thermometers do not read below 25 °C; above 45 °C is not survivable; "
            "triage accepts 25–45 °C.",
        ),
        LoincCode(
            "41653-7",
            "Glucose [Mass/volume] in Capillary blood by Glucometer",
            "mg/dL",
            5,
            3000,
            "No meter or laboratory reports a number below 5 mg/dL; the highest glucose "
            "recorded in a survivor is about 2 650 mg/dL.",
        ),
        LoincCode(
            "29463-7",
            "Body weight",
            "kg",
            0.2,
            650,
            "From the smallest surviving preterm newborns (≈0.25 kg) to the heaviest "
            "humans recorded (≈635 kg).",
        ),
        LoincCode(
            "67775-7",
            "Level of responsiveness",
            None,
            None,
            None,
            "Coded answer: one of A, C, V, P, U (NEWS2 ACVPU), never a number.",
        ),
    )
}
"""Accepted LOINC codes. An unknown code is refused: a number whose meaning the console
does not know cannot be shown or scored safely."""


# --------------------------------------------------------------------------------------
# IEEE 11073-10101 MDC codes (devices) and decoded value keys
# --------------------------------------------------------------------------------------

MDC: Final[dict[int, str]] = {
    150456: "MDC_PULS_OXIM_SAT_O2",
    149530: "MDC_PULS_OXIM_PULS_RATE",
    150021: "MDC_PRESS_BLD_NONINV_SYS",
    150022: "MDC_PRESS_BLD_NONINV_DIA",
    150023: "MDC_PRESS_BLD_NONINV_MEAN",
    149546: "MDC_PULS_RATE_NON_INV",
    150364: "MDC_TEMP_BODY",
    188736: "MDC_MASS_BODY_ACTUAL",
    160184: "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD",
    147842: "MDC_ECG_HEART_RATE",
    147240: "MDC_ECG_TIME_PD_RR_GL",
}
"""IEEE 11073-10101 numeric codes → reference ids, for device metrics (birth messages,
profiles, FHIR Device/Observation export)."""

ValueKey = Literal[
    "spo2_pct",
    "pulse_bpm",
    "systolic_mmhg",
    "diastolic_mmhg",
    "map_mmhg",
    "temperature_c",
    "heart_rate_bpm",
    "rr_ms",
    "glucose_mg_dl",
    "weight_kg",
    "battery_pct",
]
"""Keys of the ``values`` object the frame codecs produce (protocols.md §1.3)."""


@dataclass(frozen=True, slots=True)
class _ValueKeyInfo:
    loinc: str | None
    mdc: int | None
    unit: str


VALUE_KEYS: Final[dict[str, _ValueKeyInfo]] = {
    "spo2_pct": _ValueKeyInfo("59408-5", 150456, "%"),
    "pulse_bpm": _ValueKeyInfo("8867-4", 149530, "/min"),
    "systolic_mmhg": _ValueKeyInfo("8480-6", 150021, "mm[Hg]"),
    "diastolic_mmhg": _ValueKeyInfo("8462-4", 150022, "mm[Hg]"),
    "map_mmhg": _ValueKeyInfo(None, 150023, "mm[Hg]"),
    "temperature_c": _ValueKeyInfo("8310-5", 150364, "Cel"),
    "heart_rate_bpm": _ValueKeyInfo("8867-4", 147842, "/min"),
    "rr_ms": _ValueKeyInfo(None, 147240, "ms"),
    "glucose_mg_dl": _ValueKeyInfo("41653-7", 160184, "mg/dL"),
    "weight_kg": _ValueKeyInfo("29463-7", 188736, "kg"),
    "battery_pct": _ValueKeyInfo(None, None, "%"),
}
"""Decoded value key → LOINC code (when it is a vital sign), MDC code and UCUM unit, so a
gateway can turn a decoded frame into observations without its own table."""


SERIAL_FORMATS: Final = ("sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d")
"""Serial formats of protocols.md §1 (the codec names)."""

SerialFormat = Literal["sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d"]

SBF1_CHARACTERISTICS: Final[dict[int, str]] = {
    0x2A5E: "PLX Spot-Check Measurement",
    0x2A5F: "PLX Continuous Measurement",
    0x2A35: "Blood Pressure Measurement",
    0x2A1C: "Temperature Measurement",
    0x2A37: "Heart Rate Measurement",
    0x2A18: "Glucose Measurement",
    0x2A9D: "Weight Measurement",
}
"""Bluetooth GATT characteristics an sbf1 bridge carries (protocols.md §1.1)."""

DEVICE_KINDS: Final = (
    "pulse_oximeter",
    "blood_pressure_monitor",
    "thermometer",
    "ecg_patch",
    "glucometer",
    "scale",
    "implant_transmitter",
    "video_gateway",
    "nurse_station",
)
"""What a sender is. Measuring devices first, then the gateways that publish on behalf of
people (implant home transmitter, video-link gateway, EHPAD nurse station)."""

DeviceKind = Literal[
    "pulse_oximeter",
    "blood_pressure_monitor",
    "thermometer",
    "ecg_patch",
    "glucometer",
    "scale",
    "implant_transmitter",
    "video_gateway",
    "nurse_station",
]

DEVICE_FLAGS: Final = (
    "low_battery",
    "critical_battery",
    "charging",
    "sensor_off",
    "sensor_fault",
    "no_sensor",
    "clock_not_set",
    "measurement_error",
    "low_perfusion",
    "artifact",
    "searching",
    "interference",
)
"""Device condition flags: the union of the sbf1 STATUS bits and the Masimo/Nonin/Contec
status bits (protocols.md §1), named once so every codec maps onto the same words."""

DeviceFlag = Literal[
    "low_battery",
    "critical_battery",
    "charging",
    "sensor_off",
    "sensor_fault",
    "no_sensor",
    "clock_not_set",
    "measurement_error",
    "low_perfusion",
    "artifact",
    "searching",
    "interference",
]


# --------------------------------------------------------------------------------------
# IEEE 11073-10103 MDC_IDC (cardiac implants)
# --------------------------------------------------------------------------------------

IDC_DEVICE_TYPES: Final[dict[int, str]] = {
    753665: "pacemaker",
    753666: "icd",
    753667: "crt-d",
    753668: "crt-p",
}
"""MDC_IDC_DEV_TYPE values."""

IDC_SESSION_TYPES: Final[dict[int, str]] = {
    754051: "remote",
    754052: "device-initiated alert",
    754053: "scheduled",
}
"""Interrogation session types."""

BATTERY_STATUSES: Final = ("BOS", "MOS", "ERI", "RRT", "EOS")
"""Battery status answers: beginning / middle of service, elective replacement indicator,
recommended replacement time, end of service."""

IdcTermName = Literal[
    "MDC_IDC_MSMT_BATTERY_STATUS",
    "MDC_IDC_MSMT_BATTERY_REMAINING_LONGEVITY",
    "MDC_IDC_MSMT_BATTERY_RRT_TRIGGER",
    "MDC_IDC_MSMT_LEADCHNL_RA_IMPEDANCE_VALUE",
    "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE",
    "MDC_IDC_MSMT_LEADCHNL_LV_IMPEDANCE_VALUE",
    "MDC_IDC_MSMT_LEADHVCHNL_IMPEDANCE",
    "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT",
    "MDC_IDC_STAT_TACHYTHERAPY_ATP_DELIVERED_RECENT",
    "MDC_IDC_STAT_ATAF_BURDEN_PERCENT",
]


@dataclass(frozen=True, slots=True)
class IdcTerm:
    """One MDC_IDC observation term.

    Attributes:
        name: IEEE 11073-10103 reference identifier, used on the wire.
        code: numeric code when the design notes give it, else ``None``.
        unit: UCUM unit of a numeric value; ``None`` for coded or text answers.
        value: ``"number"``, ``"count"`` (non-negative integer), ``"code"`` or ``"text"``.
        low: lowest plausible number (inclusive); ``None`` for codes and text.
        high: highest plausible number (inclusive).
        lead: for impedances, which lead: ``"pacing"`` or ``"hv"``.
    """

    name: str
    code: int | None
    unit: str | None
    value: Literal["number", "count", "code", "text"]
    low: float | None = None
    high: float | None = None
    lead: Literal["pacing", "hv"] | None = None


IDC_TERMS: Final[dict[str, IdcTerm]] = {
    t.name: t
    for t in (
        IdcTerm("MDC_IDC_MSMT_BATTERY_STATUS", 721280, None, "code"),
        # Months to replacement: a new device lasts at most ~15-20 years.
        IdcTerm("MDC_IDC_MSMT_BATTERY_REMAINING_LONGEVITY", None, "mo", "number", 0, 300),
        IdcTerm("MDC_IDC_MSMT_BATTERY_RRT_TRIGGER", 754115, None, "text"),
        # Impedances: 0 is a short circuit, a fractured lead reads open (devices cap
        # their display near 3 000-10 000 Ω); both must be recordable, they are alerts.
        IdcTerm(
            "MDC_IDC_MSMT_LEADCHNL_RA_IMPEDANCE_VALUE", 722432, "Ohm", "number", 0, 20000, "pacing"
        ),
        IdcTerm(
            "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE", 722433, "Ohm", "number", 0, 20000, "pacing"
        ),
        IdcTerm(
            "MDC_IDC_MSMT_LEADCHNL_LV_IMPEDANCE_VALUE", 722435, "Ohm", "number", 0, 20000, "pacing"
        ),
        IdcTerm("MDC_IDC_MSMT_LEADHVCHNL_IMPEDANCE", 722624, "Ohm", "number", 0, 20000, "hv"),
        # Counts since the last session: an electrical storm delivers tens of shocks, a
        # device's ATP counter can reach thousands; above that is a corrupted counter.
        IdcTerm("MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT", 737824, "1", "count", 0, 1000),
        IdcTerm("MDC_IDC_STAT_TACHYTHERAPY_ATP_DELIVERED_RECENT", None, "1", "count", 0, 100000),
        IdcTerm("MDC_IDC_STAT_ATAF_BURDEN_PERCENT", 737696, "%", "number", 0, 100),
    )
}
"""Implant observation terms, keyed by reference identifier.

The wire carries the reference identifier rather than the numeric code because two terms
the design needs (remaining longevity, ATP delivered) have numeric codes we could not
check against the standard, and a wrong number is worse than a name; the numeric codes
given by the design notes are kept here for exports."""

IDC_EPISODE_TYPE_CODE: Final = 739568
"""MDC_IDC_EPISODE_TYPE: the term whose value is an episode's type (VT, VF, AT-AF)."""

PACING_LEAD_OHMS: Final = (200.0, 2000.0)
"""In-range pacing lead impedance (inclusive), triage.md."""

HV_LEAD_OHMS: Final = (20.0, 200.0)
"""In-range high-voltage (shock) lead impedance (inclusive), triage.md."""


def lead_impedance_in_range(lead: Literal["pacing", "hv"], ohms: float) -> bool:
    """True when an impedance lies in the normal window for that kind of lead."""
    low, high = PACING_LEAD_OHMS if lead == "pacing" else HV_LEAD_OHMS
    return low <= ohms <= high


# --------------------------------------------------------------------------------------
# Hub Santé nomenclatures (codes copied from HubSante.typeAppelant.csv, HubSante.sexe.csv)
# --------------------------------------------------------------------------------------

CALLER_TYPES: Final[dict[str, str]] = {
    "SUJET": "Le patient lui-même",
    "FAMILLE": "Famille ou proche du patient",
    "TIERS": "Autre particulier ou passant",
    "POMPIER": "Pompier",
    "AMBULANC": "Ambulancier",
    "AMBULANC.AASC": "Secouriste aasc",
    "AMBULANC.AUTRESEC": "Autre secouriste",
    "SECOUR": "Secouriste actif",
    "MED": "Médecin",
    "MED.MEDSOS": "Médecin SOS ou association PDS",
    "MED.MRL": "Médecin régulateur libéral",
    "MED.EFFML": "Effecteur de médecine libérale",
    "SANTE": "Autre acteur de santé",
    "SANTE.INF": "Infirmier",
    "SANTE.AIDESOIN": "Aide-soignant",
    "SANTE.SF": "Sage-femme",
    "SANTE.AIDEDOM": "Aide à domicile",
    "SANTE.PHARMA": "Pharmacien",
    "SANTE.DENTISTE": "Dentiste",
    "SANTE.LABO": "Personnel de laboratoire",
    "FDO-MILI": "Policier Gendarme Militaire",
    "FDO-MILI.POL": "Policier",
    "FDO-MILI.GENDARM": "Gendarme",
    "FDO-MILI.MILI": "Militaire",
    "ADM-TUTL": "Membre d'une autorité administrative",
    "VIP": "VIP",
    "OBJCONNC": "Objets connectés",
    "AUTRE": "Autre type d'appelant",
    "INCONNU": "Type d'appelant indéterminé",
}
"""Hub Santé caller types (typeAppelant), code → French label."""

CONSENT_CALLER_TYPES: Final = tuple(c for c in CALLER_TYPES if c not in ("OBJCONNC", "INCONNU"))
"""Caller types that may give consent to a video link: a consent must come from an
identified person, so a connected object and an unknown caller type are refused."""

SEXES: Final[dict[str, str]] = {
    "M": "Masculin",
    "F": "Féminin",
    "O": "Autre sexe (ni masculin, ni féminin)",
    "UN": "Inconnu",
}
"""Hub Santé sex codes (sexe)."""


def nir_key(first13: str) -> int:
    """INSEE control key of a NIR body: ``97 − (N mod 97)``, Corsica 2A→19, 2B→18.

    Args:
        first13: the first 13 characters of the NIR (digits, ``2A``/``2B`` at 6–7).

    Raises:
        ValueError: when ``first13`` is not such a string.
    """
    if len(first13) != 13:
        raise ValueError("a NIR body has 13 characters")
    dept = first13[5:7]
    body = first13
    if dept == "2A":
        body = first13[:5] + "19" + first13[7:]
    elif dept == "2B":
        body = first13[:5] + "18" + first13[7:]
    if not (body.isascii() and body.isdigit()):
        raise ValueError("a NIR body is made of digits (2A/2B allowed for Corsica)")
    return 97 - int(body) % 97
