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
goes on. Reasons: ``hl7`` (not an HL7 v2 message at all, not parseable, truncated, not
ORU^R01, a required term missing), ``unknown_code`` (an OBX term the console does not
know), ``unit`` (a unit other than the term's UCUM unit: never converted), ``range`` (an
implausible value), ``schema`` (values the implant model refuses together),
``unknown_device``.

The envelope id is derived from (site, device, control id), so importing a file twice
adds nothing: the second time every message is a ``duplicate``.

What is not an HL7 v2 message at all is said so, precisely, before anything else is
concluded about it (the detail of its ``hl7`` quarantine): an empty file, a file of
whitespace, UTF-16/UTF-32 text, a known binary format (gzip, ZIP, PNG, JPEG, PDF), other
binary data, text without an MSH segment, a UTF-8 byte order mark before MSH (HL7 table
0211 forbids one in a UTF-8 message), a message that is not text in the character set its
MSH-18 declares. Only a message that is HL7 text can be "truncated".
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
_BOM = b"\xef\xbb\xbf"
#: Where a message starts: at the start of the text or of a segment, with or without a BOM.
_MESSAGE_START = re.compile(rb"(?:^|\r)((?:\xef\xbb\xbf)?MSH)")
#: Byte order marks of the encodings no 8-bit HL7 v2 file is in (UTF-32 LE before UTF-16 LE).
_WIDE_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
)
#: Signatures of the binary files most likely to be handed over by mistake.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data: decompress it first"),
    (b"PK\x03\x04", "a ZIP archive: extract it first"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
)
#: Control bytes no text file holds: C0 but whitespace, MLLP's start and end blocks and
#: ESC (a log with colours is still text), and DEL.
_BINARY_CONTROLS = bytes(b for b in range(0x20) if b not in b"\t\n\r\x0b\x0c\x1c\x1b") + b"\x7f"
#: MSH-18 (HL7 table 0211) → Python codec. Empty is HL7's default, ASCII, of which the
#: UTF-8 the console has always read is a superset.
_CHARSETS = {
    "": "utf-8",
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "UNICODE UTF-8": "utf-8",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
}
_WIDE_CHARSETS = ("UNICODE", "UNICODE UTF-16", "UNICODE UTF-32")
_EIGHT_BIT = (
    "not an HL7 v2 message as this import reads them (UTF-8, or the 8-bit character set "
    "MSH-18 declares): convert the file to UTF-8"
)


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
    quarantined), rather than silently dropped; so is a whole file without any MSH. The
    bytes of each message are the file's own (never re-encoded), and a message starting
    with a byte order mark stays a message of its own rather than segments of the one
    before it.
    """
    text = raw.replace(MLLP_START, b"").replace(MLLP_END, b"\r").replace(b"\x1c", b"\r")
    text = text.replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\r \t")
    if not text:
        return []
    starts = [m.start(1) for m in _MESSAGE_START.finditer(text)]
    if not starts:
        return [text]
    junk = text[: starts[0]]
    out = [junk.strip(b"\r")] if junk.strip(b"\r \t") else []
    bounds = sorted({starts[0], *(i for i in starts if text.startswith(_BOM, i))})
    for a, b in zip(bounds, [*bounds[1:], len(text)], strict=True):
        piece = text[a:b]
        bom = piece.startswith(_BOM)
        found = [
            m.encode("utf-8", "surrogateescape")
            for m in hl7.split_file(
                piece[len(_BOM) if bom else 0 :].decode("utf-8", "surrogateescape")
            )
        ]
        if bom and found:
            found[0] = _BOM + found[0]
        out += found
    return out


def file_problem(raw: bytes) -> str | None:
    """Why a whole file is no HL7 v2 at all, for what only the whole file shows (else None).

    Empty, whitespace only, UTF-16 or UTF-32 text (with or without byte order mark), or a
    known binary format. Everything else is judged message by message (:func:`not_hl7`).
    """
    if not raw:
        return "empty file (0 bytes): no HL7 v2 message"
    if not raw.strip(b" \t\r\n\x0b\x0c\x1c"):
        return f"only whitespace ({len(raw)} bytes): no HL7 v2 message"
    wide = next(((name, bom) for bom, name in _WIDE_BOMS if raw.startswith(bom)), None)
    if wide is not None:
        return f"{wide[0]} text (byte order mark {wide[1].hex(' ').upper()}): {_EIGHT_BIT}"
    head = raw[:512]
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        for zeros, other, order in ((odd, even, "little"), (even, odd, "big")):
            if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) == 0:
                return f"UTF-16 ({order}-endian) text without byte order mark: {_EIGHT_BIT}"
    for magic, name in _MAGIC:
        if raw.startswith(magic):
            return f"not an HL7 v2 message: binary data ({name})"
    return None


def _binary(data: bytes) -> bool:
    """NUL bytes, or control bytes text does not hold in more than 1 % of ``data``."""
    if b"\x00" in data:
        return True
    controls = len(data) - len(data.translate(None, _BINARY_CONTROLS))
    return controls * 100 > len(data)


def not_hl7(raw: bytes) -> str:
    """Why ``raw`` (one part of a file, not starting with ``MSH``) is no HL7 v2 message."""
    if raw.startswith(_BOM):
        if raw[len(_BOM) :].startswith(b"MSH"):
            return (
                "a UTF-8 byte order mark (EF BB BF) before MSH: HL7 v2 forbids one in a UTF-8 "
                "message (table 0211), which starts with MSH: save it without BOM"
            )
        raw = raw[len(_BOM) :]
    if _binary(raw):
        return "not an HL7 v2 message: binary data, no MSH segment"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            "not an HL7 v2 message: no MSH segment, and not UTF-8 text "
            f"({exc.reason} at byte {exc.start})"
        )
    first = text.lstrip().split("\r", 1)[0]
    more = "…" if len(first) > 40 else ""
    return f"not an HL7 v2 message: no MSH segment (it starts with {first[:40]!r}{more})"


def _msh18(raw: bytes) -> str:
    """MSH-18 (character set) of a message starting with ``MSH``, first repetition."""
    msh = raw.split(b"\r", 1)[0]
    sep = msh[3:4] or b"|"
    fields = msh.split(sep)
    if len(fields) < 18:
        return ""
    repetition = fields[1][1:2] or b"~"
    return fields[17].split(repetition, 1)[0].decode("ascii", "replace").strip().upper()


def decode_message(raw: bytes) -> str:
    """The text of one message, read in the character set its MSH-18 declares.

    Empty MSH-18 is read as UTF-8 (HL7's default is ASCII, which UTF-8 contains, and the
    console has always read UTF-8); a character set of table 0211 the console has no codec
    for is accepted only for a message that is all ASCII, which reads the same in each.

    Raises:
        IdcoError: ``hl7``: not an HL7 v2 message (:func:`not_hl7`), binary data in it, a
            character set the console cannot read, or bytes that are not text in it.
    """
    if not raw.startswith(b"MSH"):
        raise IdcoError("hl7", not_hl7(raw))
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise IdcoError("hl7", f"not an HL7 v2 message: binary data (a NUL byte at byte {nul})")
    declared = _msh18(raw)
    shown = f"MSH-18 {declared!r}" if declared else "MSH-18 empty: UTF-8"
    if declared in _WIDE_CHARSETS:
        raise IdcoError(
            "hl7", f"MSH-18 declares {declared!r}, but the message is 8-bit text (its MSH "
            "segment reads as ASCII)"
        )  # fmt: skip
    codec = _CHARSETS.get(declared)
    if codec is None:
        if raw.isascii():
            return raw.decode("ascii")
        at = next(i for i, b in enumerate(raw) if b > 0x7F)
        raise IdcoError(
            "hl7", f"MSH-18 declares character set {declared!r}, which the console cannot "
            f"read, and byte {at} is not ASCII (0x{raw[at]:02X})"
        )  # fmt: skip
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise IdcoError(
            "hl7", f"not text in the declared encoding ({shown}): {exc.reason} at byte "
            f"{exc.start} (0x{raw[exc.start]:02X})"
        ) from None  # fmt: skip


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
        msg = hl7.parse(raw.removeprefix(_BOM).decode("utf-8", "replace"))
        return _field(msg.segment("MSH"), 10) or None
    except Exception:
        return None


def parse_idco(raw: bytes) -> IdcoMessage:
    """One ORU^R01 message → :class:`IdcoMessage` (see the module docstring).

    Raises:
        IdcoError: with the quarantine reason.
    """
    text = decode_message(raw)
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


def _truncated(raw: bytes) -> None:
    """Raise the reason of the last message of a file that ends inside a segment.

    Raises:
        IdcoError: always: what :func:`decode_message` finds (a part that is not HL7 text
            is that before it is cut short), else "truncated" (a cut inside a multi-byte
            character is a cut, not an encoding error).
    """
    try:
        decode_message(raw)
    except IdcoError:
        whole = _without_a_cut_character(raw)
        if whole is None:
            raise
        decode_message(whole)
    raise IdcoError("hl7", "truncated message: the file ends inside a segment")


def _without_a_cut_character(raw: bytes) -> bytes | None:
    """``raw`` without the incomplete UTF-8 character it ends with (None: it does not)."""
    body = raw.rstrip(b"\r")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(body):
            return body[: exc.start] + b"\r"
    return None


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
        problem = file_problem(raw)
        messages = split_messages(raw) if problem is None else []
        if not messages:
            bad = IdcoError("hl7", problem or "no HL7 v2 message in the file")
            yield self._bad(raw, source, now, bad)
            return
        # A file cut short ends in the middle of a segment: its last message is truncated
        # even when what remains happens to parse; but only HL7 text can be truncated.
        complete = raw.rstrip(b" \t").endswith((b"\r", b"\n", MLLP_END, b"\x1c"))
        for n, one in enumerate(messages, 1):
            try:
                if n == len(messages) and not complete:
                    _truncated(one)
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
