"""HL7 v2 ORU^R01 implant transmissions (IHE PCD-09 IDCO) into the implant path.

A vendor's remote-monitoring server sends one ORU^R01 per interrogation; a file holds one
or many, MLLP framing optional. Each message is parsed with the ``hl7`` library (never
by splitting on ``|`` by hand), its OBX segments mapped term by term (IEEE 11073-10103
MDC_IDC) onto the same ``implant`` body the MQTT transmitters send, and that body then
takes the very path an MQTT message takes: an envelope sealed with the transmitter's
enrolled key, handed to the régulation core (ingest: MAC, schema, topic, dedup; then
cases and triage). An IDCO message is therefore triaged exactly like the transmission it
describes, and one naming a transmitter the centre never enrolled is refused the same
way (``unknown_device``).

A bad message is quarantined (sealed raw bytes, reason, detail) and the rest of the file
goes on. Reasons: ``hl7`` (not parseable, truncated, not ORU^R01, a required term
missing), ``unknown_code`` (an OBX term the console does not know), ``unit`` (a unit
other than the term's UCUM unit: never converted), ``range`` (an implausible value),
``schema`` (values the implant model refuses together), ``unknown_device``.

The envelope id is derived from (site, device, control id), so importing a file twice
adds nothing: the second time every message is a ``duplicate``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import hl7
from pydantic import ValidationError

from console.ingest import Accepted, Duplicate, Incoming, Ingest, Outcome, Quarantined, iso
from console.records import AuditContext, Store
from protocols import Envelope, ImplantBody, KeyRing, seal_envelope
from protocols.idco import ALERT_FIELDS, DEVICE_TERMS, EPISODE_FIELDS, LOCAL, MLLP_END, MLLP_START
from protocols.topics import device_topic
from protocols.vocab import IDC_EPISODE_TYPE_CODE, IDC_TERMS, is_valid_id

IDCO_REASONS = ("hl7", "unknown_code", "unit", "range", "schema", "unknown_device")
_BY_CODE = {t.code: name for name, t in IDC_TERMS.items() if t.code is not None}
_BY_CODE[IDC_EPISODE_TYPE_CODE] = "MDC_IDC_EPISODE_TYPE"
_HL7_TIME = re.compile(r"^(\d{14})(?:\.\d{1,4})?([+-]\d{4})$")
#: UCUM units of the episode and alert numbers.
_UNITS = {"MDC_IDC_EPISODE_DURATION": "s", "MDC_IDC_EPISODE_SHOCKS": "1",
          "ALERT_OHMS": "Ohm", "ALERT_EPISODES_24H": "1", "ALERT_AF_BURDEN": "%"}  # fmt: skip
_NAMESPACE = uuid.UUID("5d2f3c1e-8a44-4f0e-9b8c-1d2e3f405162")


class IdcoError(ValueError):
    """One message cannot be mapped: ``reason`` is one of :data:`IDCO_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class IdcoMessage:
    """A mapped message: who sent it, its control id, the implant body."""

    control_id: str
    site: str
    device: str
    sent: datetime
    body: ImplantBody


class Receive(Protocol):
    """What takes a batch the way the hub does (``RegulationCore.receive``)."""

    def __call__(self, items: Sequence[Incoming]) -> Any: ...


def split_messages(raw: bytes) -> list[bytes]:
    """The messages of a file: MLLP frames, or plain messages (``\\r``, ``\\n`` or both).

    Whatever comes before the first MSH is returned as a message of its own (it will be
    quarantined), rather than silently dropped.
    """
    text = raw.replace(MLLP_START, b"").replace(MLLP_END, b"\r").replace(b"\x1c", b"\r")
    text = text.replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\r \t")
    if not text:
        return []
    start = 0 if text.startswith(b"MSH") else text.find(b"\rMSH") + 1
    junk, rest = (text, b"") if start == 0 and not text.startswith(b"MSH") else (
        text[:start], text[start:])  # fmt: skip
    out = [junk.strip(b"\r")] if junk.strip(b"\r \t") else []
    if rest:
        out += [p.encode("utf-8") for p in hl7.split_file(rest.decode("utf-8", "replace"))]
    return out


def _time(text: str, what: str) -> datetime:
    m = _HL7_TIME.fullmatch(text.strip())
    if m is None:
        raise IdcoError("hl7", f"{what} {text!r}: expected YYYYMMDDHHMMSS±ZZZZ")
    try:
        return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S%z")
    except ValueError:
        raise IdcoError("hl7", f"{what} {text!r} is not a date") from None


def _field(seg: Any, n: int, component: int = 1) -> str:
    """Field ``n`` (HL7 numbering), first repetition, component ``component``, as text."""
    try:
        if len(seg) <= n:
            return ""
        value = seg(n)
        if isinstance(value, str):
            return value if component == 1 else ""
        rep = value(1)
        if isinstance(rep, str):
            return rep if component == 1 else ""
        comp = rep(component)
        return str(comp)
    except (IndexError, KeyError, TypeError, ValueError):
        return ""


def _unescape(msg: Any, text: str) -> str:
    try:
        return str(msg.unescape(text))
    except (ValueError, IndexError, KeyError, AttributeError):
        return text


def control_id_of(raw: bytes) -> str | None:
    """MSH-10 of a message, when it can be read (for reporting a bad one)."""
    try:
        msg = hl7.parse(raw.decode("utf-8", "replace"))
        return _field(msg.segment("MSH"), 10) or None
    except Exception:
        return None


def parse_idco(raw: bytes) -> IdcoMessage:
    """One ORU^R01 message → :class:`IdcoMessage` (see the module docstring).

    Raises:
        IdcoError: with the quarantine reason.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IdcoError("hl7", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not text.startswith("MSH"):
        raise IdcoError("hl7", "a message starts with an MSH segment")
    try:
        msg = hl7.parse(text)
        msh = msg.segment("MSH")
    except Exception as exc:
        raise IdcoError("hl7", f"unparseable HL7 v2 ({type(exc).__name__}: {exc})") from None
    mtype = f"{_field(msh, 9, 1)}^{_field(msh, 9, 2)}"
    if mtype != "ORU^R01":
        raise IdcoError("hl7", f"message type {mtype!r}: an IDCO transmission is ORU^R01")
    control = _field(msh, 10)
    if not control:
        raise IdcoError("hl7", "MSH-10 (message control id) is empty")
    sent = _time(_field(msh, 7), "MSH-7")
    try:
        obxs = msg.segments("OBX")
        msg.segment("OBR")
    except KeyError:
        raise IdcoError("hl7", "truncated message: no OBR/OBX segments") from None
    device_values: dict[str, str] = {}
    observations: list[dict[str, Any]] = []
    episodes: dict[str, dict[str, Any]] = {}
    alerts: dict[str, dict[str, Any]] = {}
    equipment: set[tuple[str, str]] = set()
    for i, obx in enumerate(obxs, 1):
        if len(obx) <= 11:
            raise IdcoError("hl7", f"truncated message: OBX {i} has {len(obx) - 1} fields")
        vtype = _field(obx, 2)
        number, ref, system = _field(obx, 3, 1), _field(obx, 3, 2), _field(obx, 3, 3)
        sub = _field(obx, 4)
        value = _unescape(msg, _field(obx, 5))
        unit = _field(obx, 6, 1)
        eq_device, eq_site = _field(obx, 18, 1), _field(obx, 18, 2)
        if eq_device:
            equipment.add((eq_device, eq_site or _field(msh, 4)))
        name = ref
        if system == "MDC" and number:
            try:
                name = _BY_CODE.get(int(number), "")
            except ValueError:
                name = ""
            if not name or (ref and ref != name):
                raise IdcoError(
                    "unknown_code", f"OBX {i}: {number}^{ref} is not a known MDC_IDC term"
                )
        where = f"OBX {i} {name or ref}"
        if system == LOCAL and name in ALERT_FIELDS:
            alert = alerts.setdefault(sub, {})
            alert[ALERT_FIELDS[name]] = _typed(name, vtype, value, unit, where)
        elif system == "MDC" and name in DEVICE_TERMS:
            device_values[name] = value if vtype != "CWE" else _field(obx, 5, 1)
        elif system == "MDC" and name in EPISODE_FIELDS:
            v = _field(obx, 5, 1) if vtype == "CWE" else value
            episodes.setdefault(sub, {})[EPISODE_FIELDS[name]] = _typed(name, vtype, v, unit, where)
        elif system == "MDC" and name in IDC_TERMS:
            observations.append(_measurement(name, vtype, value, unit, where))
        else:
            raise IdcoError("unknown_code", f"OBX {i}: {number}^{ref}^{system} is not a term the "
                            "console maps")  # fmt: skip
    for term in ("MDC_IDC_DEV_TYPE", "MDC_IDC_DEV_MODEL", "MDC_IDC_DEV_SERIAL",
                 "MDC_IDC_SESS_TYPE", "MDC_IDC_SESS_DTM"):  # fmt: skip
        if not device_values.get(term):
            raise IdcoError("hl7", f"truncated or incomplete message: no {term}")
    if len(equipment) != 1:
        raise IdcoError(
            "hl7", "OBX-18 must name one transmitter (<device>^<site>), found "
            f"{sorted(equipment) or 'none'}"
        )  # fmt: skip
    device, site = next(iter(equipment))
    if not (is_valid_id(device) and is_valid_id(site)):
        raise IdcoError("hl7", f"OBX-18 {device}^{site}: not valid site and device ids")
    patient = _field(msg.segment("PID"), 3, 1) if _has(msg, "PID") else ""
    try:
        body = ImplantBody.model_validate(
            {
                "v": 1,
                "patient": patient if is_valid_id(patient) and not patient.startswith(
                    "IMPLANT-") else None,
                "device": {
                    "type": _int(device_values["MDC_IDC_DEV_TYPE"], "MDC_IDC_DEV_TYPE"),
                    "model": device_values["MDC_IDC_DEV_MODEL"],
                    "serial": device_values["MDC_IDC_DEV_SERIAL"],
                    "manufacturer": device_values.get("MDC_IDC_DEV_MFG") or None,
                },
                "session": {
                    "type": _int(device_values["MDC_IDC_SESS_TYPE"], "MDC_IDC_SESS_TYPE"),
                    "time": _time(device_values["MDC_IDC_SESS_DTM"], "MDC_IDC_SESS_DTM"),
                },
                "observations": observations,
                "episodes": list(episodes.values()),
                "alerts": list(alerts.values()),
            }
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise IdcoError("schema", f"{loc}: {first['msg']}") from None
    return IdcoMessage(control, site, device, sent, body)


def _has(msg: Any, name: str) -> bool:
    try:
        msg.segment(name)
    except KeyError:
        return False
    return True


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise IdcoError("unknown_code", f"{what} {text!r}: expected a numeric MDC code") from None


def _number(vtype: str, value: str, where: str) -> float:
    if vtype != "NM":
        raise IdcoError("hl7", f"{where}: value type {vtype!r}, expected NM")
    try:
        return float(value)
    except ValueError:
        raise IdcoError("hl7", f"{where}: {value!r} is not a number") from None


def _typed(name: str, vtype: str, value: str, unit: str, where: str) -> Any:
    if vtype == "DTM":
        return _time(value, where)
    if vtype == "NM":
        expected = _UNITS.get(name)
        if expected is not None and unit != expected:
            raise IdcoError("unit", f"{where}: unit {unit!r}, expected UCUM {expected!r}")
        number = _number(vtype, value, where)
        return int(number) if number.is_integer() and name in (
            "MDC_IDC_EPISODE_SHOCKS", "ALERT_EPISODES_24H") else number  # fmt: skip
    return value


def _measurement(name: str, vtype: str, value: str, unit: str, where: str) -> dict[str, Any]:
    info = IDC_TERMS[name]
    if info.value in ("code", "text"):
        if vtype not in ("ST", "CWE", "TX"):
            raise IdcoError("hl7", f"{where}: value type {vtype!r}, expected ST")
        if unit:
            raise IdcoError("unit", f"{where}: takes no unit, got {unit!r}")
        return {"term": name, "value": value}
    if unit != info.unit:
        raise IdcoError("unit", f"{where}: unit {unit!r}, expected UCUM {info.unit!r} (never "
                        "converted)")  # fmt: skip
    number = _number(vtype, value, where)
    assert info.low is not None and info.high is not None
    if not info.low <= number <= info.high:
        raise IdcoError(
            "range", f"{where}: {number:g} {info.unit} is not plausible "
            f"(accepted {info.low:g}–{info.high:g})"
        )  # fmt: skip
    if info.value == "count" and not number.is_integer():
        raise IdcoError("range", f"{where}: {number:g} is not a count")
    return {"term": name, "value": number, "unit": info.unit}


class IdcoImport:
    """Imports a file of IDCO messages through a régulation core (module docstring)."""

    def __init__(self, store: Store, master_key: bytes, keyring: KeyRing) -> None:
        self._store = store
        self._keyring = keyring
        self._seal = Ingest(store, KeyRing(), master_key).seal_raw

    def run(
        self,
        raw: bytes,
        *,
        source: str,
        receive: Callable[[Sequence[Incoming]], Any],
        now: float,
    ) -> Iterator[dict[str, Any]]:
        """One result line per message: ``control_id``, ``device``, ``alerts``, ``status``."""
        messages = split_messages(raw)
        if not messages:
            yield self._bad(raw, source, now, IdcoError("hl7", "no HL7 message in the file"))
            return
        # A file cut short ends in the middle of a segment: its last message is truncated
        # even when what remains happens to parse.
        complete = raw.rstrip(b" \t").endswith((b"\r", b"\n", MLLP_END, b"\x1c"))
        for n, one in enumerate(messages, 1):
            if n == len(messages) and not complete:
                cut = IdcoError("hl7", "truncated message: the file ends inside a segment")
                yield self._bad(one, source, now, cut)
                continue
            try:
                parsed = parse_idco(one)
            except IdcoError as exc:
                yield self._bad(one, source, now, exc)
                continue
            yield self._through(parsed, one, source, receive, now)

    def _through(
        self,
        m: IdcoMessage,
        raw: bytes,
        source: str,
        receive: Callable[[Sequence[Incoming]], Any],
        now: float,
    ) -> dict[str, Any]:
        line: dict[str, Any] = {
            "control_id": m.control_id,
            "device": f"{m.site}/{m.device}",
            "alerts": sorted({a.code for a in m.body.alerts}),
        }
        if (m.site, m.device) not in self._keyring:
            bad = IdcoError("unknown_device", f"{m.site}/{m.device} is not an enrolled sender")
            return {**self._bad(raw, source, now, bad, site=m.site, device=m.device), **line}
        ident = uuid.uuid5(_NAMESPACE, f"{m.site}\x00{m.device}\x00{m.control_id}")
        env = Envelope.create(
            site=m.site,
            device=m.device,
            seq=ident.int % (2**53),
            body=m.body,
            sent=m.sent,
            message_id=str(ident),
        )
        key = self._keyring.current_key(m.site, m.device).key
        payload = seal_envelope(env, key)
        result = receive([Incoming(device_topic(m.site, m.device, "implant"), payload, now)])
        outcome: Outcome = result.outcomes[0]
        if isinstance(outcome, Accepted):
            line["status"] = "accepted"
            cases = {e.case_id for e in result.events if e.case_id}
            line["case_id"] = next(iter(sorted(cases)), None)
        elif isinstance(outcome, Duplicate):
            line["status"] = "duplicate"
        elif isinstance(outcome, Quarantined):
            line.update(status="quarantined", reason=outcome.reason, detail=outcome.detail)
        return line

    def _bad(
        self,
        raw: bytes,
        source: str,
        now: float,
        exc: IdcoError,
        *,
        site: str | None = None,
        device: str | None = None,
    ) -> dict[str, Any]:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO quarantine (received_at, source, site, device, reason, detail, raw)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (iso(now), source[:512], site, device, exc.reason, exc.detail[:1000],
                 self._seal(raw[: 1024 * 1024])),
            )  # fmt: skip
            if site is not None and device is not None:
                conn.execute(
                    "UPDATE devices SET quarantined = quarantined + 1"
                    " WHERE site = ? AND device = ?",
                    (site, device),
                )
            self._store.append_audit(
                AuditContext.local().event(
                    "idco.quarantine", "ingest", detail={"reason": exc.reason, "source": source}
                ),
                conn=conn,
            )
        return {
            "control_id": control_id_of(raw),
            "device": f"{site}/{device}" if site and device else None,
            "alerts": [],
            "status": "quarantined",
            "reason": exc.reason,
            "detail": exc.detail,
        }
