"""HL7 v2.6 ORU^R01 implant transmissions (IHE PCD-09 IDCO): the encoder.

What a vendor's remote-monitoring server sends a hospital for one interrogation: MSH
(profile ``IHE_PCD_009``), PID (the pseudonymous patient reference), OBR (the session),
then one OBX per MDC_IDC term (IEEE 11073-10103): device type, model, serial,
manufacturer, session type and time, the measurements with their UCUM units, the stored
episodes (OBX sub-id ``2.<n>``) and the alerts (sub-id ``3.<n>``). OBX-18 (equipment
instance identifier) names the transmitter as ``<device>^<site>``, which is how the
console finds the enrolled sender.

Terms are written ``<code>^<reference id>^MDC``, with the numeric code left empty when
:data:`protocols.vocab.IDC_TERMS` has none we could check (a wrong number is worse than
a name). Alerts are the manufacturer's conclusions, which 10103 has no terms for: they
use the local coding system ``99SAMU`` (HL7's convention for local codes).

Pure text building, no I/O (the simulator's ``--idco-out`` and the tests use it); the
console's parser (:mod:`console.interop`) reads it with the ``hl7`` library.
"""

from __future__ import annotations

from datetime import UTC, datetime

from protocols.models import ImplantBody
from protocols.vocab import IDC_DEVICE_TYPES, IDC_EPISODE_TYPE_CODE, IDC_SESSION_TYPES, IDC_TERMS

__all__ = [
    "ALERT_FIELDS",
    "DEVICE_TERMS",
    "EPISODE_FIELDS",
    "LOCAL",
    "MLLP_END",
    "MLLP_START",
    "PROFILE",
    "encode_idco",
    "escape",
    "hl7_time",
    "mllp_frame",
]

MLLP_START = b"\x0b"
MLLP_END = b"\x1c\x0d"
PROFILE = "IHE_PCD_009^IHE PCD^1.3.6.1.4.1.19376.1.6.1.9.1^ISO"
LOCAL = "99SAMU"
#: Device and session terms (reference ids; values CWE, ST or DTM).
DEVICE_TERMS = (
    "MDC_IDC_DEV_TYPE",
    "MDC_IDC_DEV_MODEL",
    "MDC_IDC_DEV_SERIAL",
    "MDC_IDC_DEV_MFG",
    "MDC_IDC_SESS_TYPE",
    "MDC_IDC_SESS_DTM",
)
#: Episode fields (sub-id ``2.<n>``): reference id → ImplantEpisode field.
EPISODE_FIELDS = {
    "MDC_IDC_EPISODE_ID": "id",
    "MDC_IDC_EPISODE_TYPE": "type",
    "MDC_IDC_EPISODE_DTM": "time",
    "MDC_IDC_EPISODE_DURATION": "duration_s",
    "MDC_IDC_EPISODE_THERAPY": "therapy",
    "MDC_IDC_EPISODE_SHOCKS": "shocks",
    "MDC_IDC_EPISODE_RESULT": "result",
}
#: Alert fields (sub-id ``3.<n>``, local codes): code → ImplantAlert field.
ALERT_FIELDS = {
    "ALERT": "code",
    "ALERT_DTM": "time",
    "ALERT_LEAD": "lead",
    "ALERT_OHMS": "ohms",
    "ALERT_EPISODES_24H": "episodes_24h",
    "ALERT_AF_BURDEN": "af_burden_pct",
    "ALERT_DETAIL": "detail",
}


def escape(text: str) -> str:
    """HL7 escaping of a text value (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``), line breaks as spaces."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    out = out.replace("&", "\\T\\").replace("~", "\\R\\")
    return out.replace("\r", " ").replace("\n", " ")


def hl7_time(when: datetime) -> str:
    """HL7 DTM with seconds and offset: ``20261123170000+0100``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.strftime("%Y%m%d%H%M%S%z")


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.0f}"


def encode_idco(
    body: ImplantBody, *, site: str, device: str, control_id: str, sent: datetime
) -> str:
    """One ORU^R01 message (segments separated by ``\\r``, ending with one)."""
    when = hl7_time(body.session.time)
    equipment = f"{escape(device)}^{escape(site)}"
    segments = [
        "MSH|^~\\&|SAMU-SIM^urn:samu:sim^URI|"
        + escape(site)
        + "|SAMU^fr.health^DNS|SAMU|"
        + hl7_time(sent)
        + "||ORU^R01^ORU_R01|"
        + escape(control_id)
        + "|P|2.6|||NE|AL||UNICODE UTF-8|||"
        + PROFILE,
        "PID|1||"
        + escape(body.patient or f"IMPLANT-{body.device.serial}")
        + "^^^"
        + escape(site)
        + "^PI",
        "OBR|1||" + escape(control_id) + "|754050^MDC_IDC_SESSION^MDC|||" + when,
    ]
    rows: list[tuple[str, str, str, str, str]] = []  # type, id, sub-id, value, units

    def code(ref: str, number: int | None = None, system: str = "MDC") -> str:
        return f"{number if number is not None else ''}^{ref}^{system}"

    dev = body.device
    kind = IDC_DEVICE_TYPES[dev.type].upper().replace("-", "_")
    rows.append(("CWE", code("MDC_IDC_DEV_TYPE"), "1",
                 f"{dev.type}^MDC_IDC_ENUM_DEV_TYPE_{kind}^MDC", ""))  # fmt: skip
    rows.append(("ST", code("MDC_IDC_DEV_MODEL"), "1", escape(dev.model), ""))
    rows.append(("ST", code("MDC_IDC_DEV_SERIAL"), "1", escape(dev.serial), ""))
    if dev.manufacturer:
        rows.append(("ST", code("MDC_IDC_DEV_MFG"), "1", escape(dev.manufacturer), ""))
    session = IDC_SESSION_TYPES[body.session.type].upper().replace(" ", "_").replace("-", "_")
    rows.append(("CWE", code("MDC_IDC_SESS_TYPE"), "1",
                 f"{body.session.type}^MDC_IDC_ENUM_SESS_TYPE_{session}^MDC", ""))  # fmt: skip
    rows.append(("DTM", code("MDC_IDC_SESS_DTM"), "1", when, ""))
    for o in body.observations:
        info = IDC_TERMS[o.term]
        ident = code(o.term, info.code)
        if isinstance(o.value, str):
            rows.append(("ST", ident, "1", escape(o.value), ""))
        else:
            unit = o.unit or ""
            rows.append(("NM", ident, "1", _number(float(o.value)), f"{unit}^{unit}^UCUM"))
    for n, e in enumerate(body.episodes, 1):
        sub = f"2.{n}"
        rows += [
            ("ST", code("MDC_IDC_EPISODE_ID"), sub, escape(e.id), ""),
            ("CWE", code("MDC_IDC_EPISODE_TYPE", IDC_EPISODE_TYPE_CODE), sub,
             f"{e.type}^{e.type}^MDC", ""),
            ("DTM", code("MDC_IDC_EPISODE_DTM"), sub, hl7_time(e.time), ""),
            ("NM", code("MDC_IDC_EPISODE_DURATION"), sub, _number(e.duration_s), "s^s^UCUM"),
            ("ST", code("MDC_IDC_EPISODE_THERAPY"), sub, e.therapy, ""),
            ("NM", code("MDC_IDC_EPISODE_SHOCKS"), sub, str(e.shocks), "1^1^UCUM"),
            ("ST", code("MDC_IDC_EPISODE_RESULT"), sub, e.result, ""),
        ]  # fmt: skip
    for n, a in enumerate(body.alerts, 1):
        sub = f"3.{n}"
        rows.append(("CWE", code("ALERT", system=LOCAL), sub, f"{a.code}^{a.code}^{LOCAL}", ""))
        rows.append(("DTM", code("ALERT_DTM", system=LOCAL), sub, hl7_time(a.time), ""))
        if a.lead is not None:
            rows.append(("ST", code("ALERT_LEAD", system=LOCAL), sub, a.lead, ""))
        if a.ohms is not None:
            rows.append(("NM", code("ALERT_OHMS", system=LOCAL), sub, _number(a.ohms),
                         "Ohm^Ohm^UCUM"))  # fmt: skip
        if a.episodes_24h is not None:
            rows.append(("NM", code("ALERT_EPISODES_24H", system=LOCAL), sub,
                         str(a.episodes_24h), "1^1^UCUM"))  # fmt: skip
        if a.af_burden_pct is not None:
            rows.append(("NM", code("ALERT_AF_BURDEN", system=LOCAL), sub,
                         _number(a.af_burden_pct), "%^%^UCUM"))  # fmt: skip
        if a.detail is not None:
            rows.append(("ST", code("ALERT_DETAIL", system=LOCAL), sub, escape(a.detail), ""))
    for i, (vtype, ident, sub, value, units) in enumerate(rows, 1):
        segments.append(
            f"OBX|{i}|{vtype}|{ident}|{sub}|{value}|{units}|||||F|||{when}||||{equipment}"
        )
    return "\r".join(segments) + "\r"


def mllp_frame(message: str) -> bytes:
    """One message in MLLP framing (start block, message, end block + CR)."""
    return MLLP_START + message.encode("utf-8") + MLLP_END
