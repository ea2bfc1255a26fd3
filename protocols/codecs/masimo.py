"""``masimo-ascii1``: Masimo Radical-7 / Rad-8 / Rad-87 serial output "ASCII 1" (protocols.md 1.2).

9600 8N1, one CR LF terminated line a second, no checksum, e.g.::

    12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=072 PI=20.00% SPCO=01.0% SPMET=00.5%
    DESAT=01 PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820

(one line on the wire). The line is parsed by ``KEY=value`` tokens, never by position,
because older units omit fields; the leading ``MM/DD/YY HH:MM:SS`` clock is optional and
kept verbatim in ``device_clock`` (the monitor's local time, no zone, two-digit year:
interpreting it is the ingest's business, with the profile's time zone). Values made of
dashes (``SPO2=---%``, ``PIDELTA=+--``) mean unavailable and decode to ``None``; a key
that is absent is absent from ``values`` too.

Mapped to the contract: ``SPO2`` → ``spo2_pct``, ``BPM`` → ``pulse_bpm``. The other
parameters go to ``aux`` (``pi_pct``, ``spco_pct``, ``spmet_pct``, ``desat``,
``pi_delta``, ``pvi``; unknown keys verbatim). ``ALARM`` (4 hex digits) and ``EXC``
(6 hex digits) are decoded to names in ``alarm`` and ``exceptions``, with the codes kept
in ``alarm_code`` and ``exception_code``.

With no checksum, plausibility is the only defence against a garbled line: a line is a
``payload`` error if it has neither SPO2 nor BPM, holds a token that is neither
``KEY=value`` nor the leading clock, is not ASCII, or has a value that does not parse or
is physiologically impossible (SpO2, pulse rate, SpCO, SpMet, PI and PVI, checked
against the range table all codecs share: ``_ranges``). The encoder refuses the same
values with the same sentence. When such a line contains the monitor's clock further on — noise
or a half line glued to a whole one, no LF between — the first clock whose remainder
parses starts a recovered line, and only the bytes before it are a ``sync`` error.
A line longer than ``max_buffer`` (default 1024, about seven times the longest real
line) is a ``length`` error; the decoder then skips to the next LF. A last line without
its LF at the end of the stream is ``truncated``: a cut line may end in a cut number
(``BPM=07``) and must not be read as a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from protocols.codecs._bits import bits_to_names, names_to_bits
from protocols.codecs._ranges import LIMITS, check_decoded, check_values
from protocols.codecs._records import (
    RAW_CAP,
    Codec,
    Decoded,
    DecodeError,
    EncodeError,
    Item,
    StreamDecoder,
    Value,
    check_max_buffer,
)

NAME: Final[str] = "masimo-ascii1"
DEFAULT_MAX_LINE: Final[int] = 1024
_MIN_MAX_LINE: Final[int] = 256

ALARM_BITS: Final[dict[int, str]] = {
    0: "spo2_high",
    1: "spo2_low",
    2: "pr_high",
    3: "pr_low",
    4: "alarm_active",
    5: "alarm_silenced",
    6: "low_battery",
}
EXCEPTION_BITS: Final[dict[int, str]] = {
    0: "no_sensor",
    1: "defective_sensor",
    2: "low_perfusion",
    3: "pulse_search",
    4: "interference",
    5: "sensor_off",
    6: "ambient_light",
    10: "low_signal_iq",
}

_DATE_RE: Final = re.compile(r"^\d{2}/\d{2}/\d{2}$")
_TIME_RE: Final = re.compile(r"^\d{2}:\d{2}:\d{2}$")
_HEX_RE: Final = re.compile(r"^[0-9A-Fa-f]{1,8}$")
_LF: Final[bytes] = b"\n"

#: Numeric keys: wire key → (output key, integer?). SPO2 and BPM go to ``values``.
_AUX_NUMERIC: Final[dict[str, tuple[str, bool]]] = {
    "PI": ("pi_pct", False),
    "SPCO": ("spco_pct", False),
    "SPMET": ("spmet_pct", False),
    "DESAT": ("desat", True),
    "PIDELTA": ("pi_delta", True),
    "PVI": ("pvi", True),
}
_AUX_KEYS: Final[frozenset[str]] = frozenset(k for k, _ in _AUX_NUMERIC.values())


class _Bad(Exception):  # noqa: N818 - control flow inside the decoder
    pass


_INT_RE: Final = re.compile(r"[+-]?\d{1,9}\Z")
_FLOAT_RE: Final = re.compile(r"[+-]?\d{1,9}(?:\.\d{1,9})?\Z")


def _unavailable_or_bad(key: str, text: str) -> None:
    """Dashes (``---``, ``--.--``, and ``+--`` for the signed PIDELTA, as a Rad-8 prints
    it) mean unavailable; anything else is a bad line."""
    dashes = text[1:] if text[:1] in ("+", "-") and len(text) > 1 else text
    if "-" in dashes and dashes.strip("-.") == "":
        return
    raise _Bad(f"{key[:32]}={text[:32]!r} is not a number")


def _int(key: str, text: str) -> int | None:
    """A decimal integer as the monitor prints it (no ``1_000``, no ``nan``), or None."""
    text = text.removesuffix("%")
    if _INT_RE.match(text):
        return int(text)
    _unavailable_or_bad(key, text)
    return None


def _float(key: str, text: str) -> float | None:
    """A plain decimal (``20.00``); Python's float() would also take ``nan`` and ``1e9``,
    which no monitor sends and which are not valid JSON numbers."""
    text = text.removesuffix("%")
    if _FLOAT_RE.match(text):
        return float(text)
    _unavailable_or_bad(key, text)
    return None


@lru_cache(maxsize=256)
def _hex_names(key: str, text: str) -> tuple[str, ...]:
    """Names of the bits of an ALARM/EXC code (cached: a monitor repeats its codes)."""
    if not _HEX_RE.match(text):
        raise _Bad(f"{key}={text[:32]!r} is not hexadecimal")
    return tuple(bits_to_names(int(text, 16), ALARM_BITS if key == "ALARM" else EXCEPTION_BITS))


def _is_clock(date: str, time: str) -> bool:
    return bool(_DATE_RE.match(date) and _TIME_RE.match(time))


#: The complete line of a current monitor, in its field order, numbers in the syntax it
#: prints: one C-level match instead of a split and a dict per line (the 50 k lines/s
#: target). Anything else — older units, dashes, other orders — takes the general path.
_FULL_LINE: Final = re.compile(
    r"(\d\d/\d\d/\d\d \d\d:\d\d:\d\d) SN=(\S*) SPO2=(\d{1,3})% BPM=(\d{1,3}) "
    r"PI=(\d{1,3}\.\d{1,3})% SPCO=(\d{1,3}\.\d{1,3})% SPMET=(\d{1,3}\.\d{1,3})% "
    r"DESAT=(\d{1,3}) PIDELTA=([+-]?\d{1,3}) PVI=(\d{1,3}) "
    r"ALARM=([0-9A-Fa-f]{1,8}) EXC=([0-9A-Fa-f]{1,8})\Z"
)


#: Upper limits of the full line's numbers, for its fast path: they are unsigned digits
#: there (the regular expression allows no sign), so only the upper limits can fail.
_SPO2_HI, _PULSE_HI, _PI_HI, _SPCO_HI, _SPMET_HI, _PVI_HI = (
    LIMITS[k][1] for k in ("spo2_pct", "pulse_bpm", "pi_pct", "spco_pct", "spmet_pct", "pvi")
)
assert all(
    LIMITS[k][0] <= 0 for k in ("spo2_pct", "pulse_bpm", "pi_pct", "spco_pct", "spmet_pct", "pvi")
), "the fast path of masimo-ascii1 assumes lower limits of 0"


def _check(values: dict[str, Value] | dict[str, object]) -> None:
    problem = check_decoded(values)
    if problem is not None:
        raise _Bad(problem)


def _parse_full(m: re.Match[str]) -> tuple[dict[str, Value], dict[str, object]]:
    clock, sn, spo2_t, bpm_t, pi_t, spco_t, spmet_t, desat, pidelta, pvi_t, alarm, exc = m.groups()
    spo2, bpm = int(spo2_t), int(bpm_t)
    values: dict[str, Value] = {"spo2_pct": spo2, "pulse_bpm": bpm}
    pi, spco, spmet, pvi = float(pi_t), float(spco_t), float(spmet_t), int(pvi_t)
    aux: dict[str, object] = {
        "pi_pct": pi,
        "spco_pct": spco,
        "spmet_pct": spmet,
        "desat": int(desat),
        "pi_delta": int(pidelta),
        "pvi": pvi,
    }
    # The shared range table, inlined for the 50 k lines/s target; _check words it.
    if (
        spo2 > _SPO2_HI
        or bpm > _PULSE_HI
        or pi > _PI_HI
        or spco > _SPCO_HI
        or spmet > _SPMET_HI
        or pvi > _PVI_HI
    ):
        _check(values)
        _check(aux)
    return values, {
        "device_clock": clock,
        "serial": sn,
        "alarm": list(_hex_names("ALARM", alarm)),
        "alarm_code": alarm.upper(),
        "exceptions": list(_hex_names("EXC", exc)),
        "exception_code": exc.upper(),
        "aux": aux,
    }


def parse_line(line: str) -> tuple[dict[str, Value], dict[str, object]]:
    """Parse one line (without CR LF) into contract ``values`` and ``extra``.

    A current monitor's full line is matched at once (the 50 k lines/s target); any
    other line — older units omitting fields, other orders, unknown keys — is parsed
    token by token. Both paths give the same result for the same fields.

    Raises:
        _Bad: the line is not a plausible ASCII 1 record.
    """
    m = _FULL_LINE.match(line)
    if m is not None:
        return _parse_full(m)
    tokens = line.split()
    extra: dict[str, object] = {}
    if len(tokens) >= 2 and _is_clock(tokens[0], tokens[1]):
        extra["device_clock"] = f"{tokens[0]} {tokens[1]}"
        tokens = tokens[2:]
    fields: dict[str, str] = {}
    for token in tokens:
        key, sep, token_value = token.partition("=")
        if not sep or not key:
            raise _Bad(f"unexpected token {token[:32]!r}")
        if key in fields:
            raise _Bad(f"{key[:32]} appears twice")
        fields[key] = token_value
    pop = fields.pop
    values: dict[str, Value] = {}
    text = pop("SPO2", None)
    if text is not None:
        values["spo2_pct"] = _int("SPO2", text)
    text = pop("BPM", None)
    if text is not None:
        values["pulse_bpm"] = _int("BPM", text)
    if not values:
        raise _Bad("neither SPO2 nor BPM in the line")
    _check(values)
    text = pop("SN", None)
    if text is not None:
        extra["serial"] = text
    text = pop("ALARM", None)
    if text is not None:
        extra["alarm"] = list(_hex_names("ALARM", text))
        extra["alarm_code"] = text.upper()
    text = pop("EXC", None)
    if text is not None:
        extra["exceptions"] = list(_hex_names("EXC", text))
        extra["exception_code"] = text.upper()
    if fields:
        aux: dict[str, object] = {}
        for key in ("PI", "SPCO", "SPMET", "DESAT", "PIDELTA", "PVI", *fields):
            text = pop(key, None)
            if text is None:
                continue
            spec = _AUX_NUMERIC.get(key)
            if spec is None:
                aux[key] = text
            else:
                aux[spec[0]] = _int(key, text) if spec[1] else _float(key, text)
        _check(aux)
        extra["aux"] = aux
    return values, extra


_CLOCK_BYTES: Final = re.compile(rb"\d\d/\d\d/\d\d \d\d:\d\d:\d\d ")


def _parse_bytes(body: bytes) -> tuple[dict[str, Value], dict[str, object]]:
    try:
        line = body.decode("ascii")
    except UnicodeDecodeError:
        raise _Bad("line is not ASCII") from None
    return parse_line(line)


def _recover(body: bytes, raw: bytes, offset: int) -> list[Item] | None:
    """A valid line glued after garbage (noise while the cable was plugged in, a line
    cut by a restart, no LF between): real lines start with the monitor's clock, so the
    first clock after the start whose remainder parses is taken; the bytes before it
    become a ``sync`` error."""
    for m in _CLOCK_BYTES.finditer(body, 1):
        k = m.start()
        try:
            values, extra = _parse_bytes(body[k:])
        except _Bad:
            continue
        return [
            DecodeError("sync", offset, raw[:k], f"{k} bytes before a line, no LF between"),
            Decoded("spo2", values, offset + k, raw[k:], None, None, extra),
        ]
    return None


class MasimoDecoder(StreamDecoder):
    """Line decoder: holds at most ``max_buffer`` bytes of an unterminated line."""

    def __init__(self, max_buffer: int | None = None) -> None:
        self._limit = check_max_buffer(max_buffer, DEFAULT_MAX_LINE, _MIN_MAX_LINE)
        self.position = 0
        self._pending = b""
        self._pending_start = 0
        self._skipping = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Item]:
        out: list[Item] = []
        if not chunk:
            return out
        data = bytes(chunk)
        base = self.position
        self.position += len(data)
        start = 0
        if self._skipping:
            end = data.find(_LF)
            if end < 0:
                return out
            self._skipping = False
            start = end + 1
        elif self._pending:
            data = self._pending + data
            base = self._pending_start
        limit = self._limit
        find = data.find
        append = out.append
        while True:
            end = find(_LF, start)
            if end < 0:
                break
            if end - start > limit:
                append(self._too_long(data, start, base))
            elif end > start:
                item = self._line(data, start, end, base)
                if isinstance(item, list):
                    out.extend(item)
                elif item is not None:
                    append(item)
            start = end + 1
        if len(data) - start > limit:
            append(self._too_long(data, start, base))
            self._skipping = True
            self._pending = b""
        else:
            self._pending = data[start:]
            self._pending_start = base + start
        return out

    def _too_long(self, data: bytes, start: int, base: int) -> DecodeError:
        # Only the first RAW_CAP bytes are kept (and copied): the record says how many
        # bytes the line had when it was given up on.
        return DecodeError(
            "length",
            base + start,
            data[start : start + RAW_CAP],
            f"no LF within {self._limit + 1} bytes: longer than any ASCII 1 line",
            self._limit + 1,
        )

    @staticmethod
    def _line(data: bytes, start: int, end: int, base: int) -> Item | list[Item] | None:
        raw = data[start : end + 1]
        body = data[start:end].rstrip(b"\r")
        offset = base + start
        try:
            values, extra = _parse_bytes(body)
        except _Bad as exc:
            if not body.strip():
                return None  # blank line: idle, not a record
            recovered = _recover(body, raw, offset)
            return (
                recovered
                if recovered is not None
                else DecodeError("payload", offset, raw, str(exc))
            )
        return Decoded("spo2", values, offset, raw, None, None, extra)

    def flush(self) -> list[Item]:
        out: list[Item] = []
        if self._pending.strip():
            out.append(
                DecodeError(
                    "truncated",
                    self._pending_start,
                    self._pending,
                    "line without its LF at end of stream",
                )
            )
        self._pending = b""
        self._skipping = False
        return out


def _fmt_int(value: object, width: int, key: str, signed: bool = False) -> str:
    if value is None:
        return "+" + "-" * (width - 1) if signed else "-" * width
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"{key} must be an integer or null, got {value!r}")
    if signed:
        return f"{value:+0{width}d}"
    if value < 0:
        raise EncodeError(f"{key} must not be negative, got {value}")
    return f"{value:0{width}d}"


def _fmt_float(value: object, width: int, decimals: int, key: str) -> str:
    if value is None:
        return "-" * (width - decimals - 1) + "." + "-" * decimals
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise EncodeError(f"{key} must be a non-negative number or null, got {value!r}")
    return f"{value:0{width}.{decimals}f}"


def _code(
    record: Mapping[str, Any], code_key: str, names_key: str, table: dict[int, str], digits: int
) -> str | None:
    if code_key in record:
        text = record[code_key]
        if not isinstance(text, str) or not _HEX_RE.match(text):
            raise EncodeError(f"{code_key} must be hexadecimal, got {text!r}")
        return text.upper().zfill(digits)
    if names_key in record:
        try:
            return f"{names_to_bits(record[names_key], table, digits * 4):0{digits}X}"
        except ValueError as exc:
            raise EncodeError(f"{names_key}: {exc}") from None
    return None


class MasimoCodec(Codec):
    """masimo-ascii1 codec (see module docstring)."""

    name = NAME
    default_max_buffer = DEFAULT_MAX_LINE

    def decoder(self, max_buffer: int | None = None) -> MasimoDecoder:
        return MasimoDecoder(max_buffer)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """One ASCII 1 line (CR LF terminated) in the monitor's field order.

        Only the fields present in the record are written, as an older unit would; a
        ``None`` value is written as dashes. ``device_clock`` ("MM/DD/YY HH:MM:SS") and
        ``serial`` are optional; ``aux`` holds the secondary parameters.
        """
        if "error" in record:
            return self.encode_error_line(record)
        if record.get("kind", "spo2") != "spo2":
            raise EncodeError(f"masimo-ascii1 only carries kind 'spo2', got {record.get('kind')!r}")
        values = record.get("values", {})
        aux = record.get("aux", {})
        if not isinstance(values, Mapping) or not isinstance(aux, Mapping):
            raise EncodeError("'values' and 'aux' must be objects")
        if "spo2_pct" not in values and "pulse_bpm" not in values:
            raise EncodeError("a masimo-ascii1 line needs spo2_pct or pulse_bpm")
        problem = check_values(values) or check_values(aux)
        if problem is not None:
            raise EncodeError(problem)
        parts: list[str] = []
        clock = record.get("device_clock")
        if clock is not None:
            fields = clock.split() if isinstance(clock, str) else []
            if len(fields) != 2 or not _DATE_RE.match(fields[0]) or not _TIME_RE.match(fields[1]):
                raise EncodeError(f"device_clock must be 'MM/DD/YY HH:MM:SS', got {clock!r}")
            parts.append(clock)
        serial = record.get("serial")
        if serial is not None:
            if not isinstance(serial, str) or not serial.isascii() or not serial.isalnum():
                raise EncodeError(f"serial must be ASCII letters and digits, got {serial!r}")
            parts.append(f"SN={serial}")
        if "spo2_pct" in values:
            spo2 = values["spo2_pct"]
            if isinstance(spo2, float) and spo2.is_integer():
                spo2 = int(spo2)
            if spo2 is not None and (not isinstance(spo2, int) or not 0 <= spo2 <= 100):
                raise EncodeError(f"spo2_pct must be an integer 0..100 or null, got {spo2!r}")
            parts.append(f"SPO2={_fmt_int(spo2, 3, 'spo2_pct')}%")
        if "pulse_bpm" in values:
            parts.append(f"BPM={_fmt_int(values['pulse_bpm'], 3, 'pulse_bpm')}")
        if "pi_pct" in aux:
            parts.append(f"PI={_fmt_float(aux['pi_pct'], 5, 2, 'pi_pct')}%")
        if "spco_pct" in aux:
            parts.append(f"SPCO={_fmt_float(aux['spco_pct'], 4, 1, 'spco_pct')}%")
        if "spmet_pct" in aux:
            parts.append(f"SPMET={_fmt_float(aux['spmet_pct'], 4, 1, 'spmet_pct')}%")
        if "desat" in aux:
            parts.append(f"DESAT={_fmt_int(aux['desat'], 2, 'desat')}")
        if "pi_delta" in aux:
            parts.append(f"PIDELTA={_fmt_int(aux['pi_delta'], 3, 'pi_delta', signed=True)}")
        if "pvi" in aux:
            parts.append(f"PVI={_fmt_int(aux['pvi'], 3, 'pvi')}")
        for key, text in aux.items():
            if key not in _AUX_KEYS:
                if not isinstance(text, str) or not key.isalnum() or not text or " " in text:
                    raise EncodeError(f"aux field {key!r} must be a KEY=value token")
                parts.append(f"{key}={text}")
        alarm = _code(record, "alarm_code", "alarm", ALARM_BITS, 4)
        if alarm is not None:
            parts.append(f"ALARM={alarm}")
        exc = _code(record, "exception_code", "exceptions", EXCEPTION_BITS, 6)
        if exc is not None:
            parts.append(f"EXC={exc}")
        return (" ".join(parts) + "\r\n").encode("ascii")
