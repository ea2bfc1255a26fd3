"""``sbf1``: our bridge frame for Bluetooth-class devices (protocols.md 1.1).

Wire: each frame COBS-encoded, then one 0x00. Decoded frame (little-endian, 12..256
bytes): version u8 (= 1), type u8 (1 HELLO, 2 MEASUREMENT, 3 STATUS), seq u16, device
time u32 (Unix seconds, 0 = clock not set), characteristic UUID16 (MEASUREMENT, else 0),
payload, CRC-16/CCITT-FALSE of everything before it.

Checks run in the order that makes the reason code truthful: ``length`` (no frame is
longer than 258 wire bytes or outside 12..256 decoded bytes), ``cobs``, ``crc``, then
``version``, ``type`` and ``payload``. The CRC comes before the header checks because a
frame that fails its CRC has no trustworthy header: calling line noise on byte 0 a
``version`` error would send a technician after a firmware mismatch. A characteristic
value that parses but holds a physiologically impossible value (SpO2 900 %: the
characteristic decoders of ``_gatt`` check the range table of ``_ranges``) is a
``payload`` error too, and the encoder refuses to write one, with the same sentence.

Resynchronisation and recovery: the decoder always restarts at the next 0x00. When a
segment fails framing (``length``, ``cobs`` or ``crc``) it also looks for a valid frame
ending the segment — the first frame after a device reset is glued to the half frame
the reset cut short, and a boot banner printed without a 0x00 precedes the first frame —
and, if one checks out entirely (COBS, CRC, version, type, payload), yields the leading
bytes as a ``sync`` error and then the frame. A false match needs a CRC-16 collision on
top of a valid header and payload, so this never invents readings in practice.

Empty segments (two delimiters in a row) are idle fill, as COBS senders commonly emit
a 0x00 to flush a receiver: they are not frames and not errors.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final

from protocols.codecs._bits import bits_to_names, names_to_bits
from protocols.codecs._cobs import CobsError, cobs_decode, cobs_encode, max_encoded_size
from protocols.codecs._crc import crc16_ccitt_false
from protocols.codecs._gatt import CHARACTERISTICS, DEFAULT_UUID, PayloadError
from protocols.codecs._ranges import check_values
from protocols.codecs._records import (
    Codec,
    Decoded,
    DecodeError,
    EncodeError,
    Item,
    StreamDecoder,
    check_max_buffer,
)

NAME: Final[str] = "sbf1"
VERSION: Final[int] = 0x01
HELLO: Final[int] = 0x01
MEASUREMENT: Final[int] = 0x02
STATUS: Final[int] = 0x03
HEADER_SIZE: Final[int] = 10
CRC_SIZE: Final[int] = 2
MIN_FRAME: Final[int] = HEADER_SIZE + CRC_SIZE
MAX_FRAME: Final[int] = 256
MAX_PAYLOAD: Final[int] = MAX_FRAME - MIN_FRAME
#: Longest COBS encoding of a 256-byte frame, delimiter excluded: 258 bytes.
MAX_WIRE: Final[int] = max_encoded_size(MAX_FRAME)

#: STATUS flags (u16).
STATUS_FLAGS: Final[dict[int, str]] = {
    0: "low_battery",
    1: "sensor_off",
    2: "sensor_fault",
    3: "clock_not_set",
    4: "charging",
    5: "measurement_error",
}
#: A battery byte above 100 is not a percentage; 255 is what encoders write for unknown.
BATTERY_UNKNOWN: Final[int] = 0xFF

_HEADER: Final = struct.Struct("<BBHIH")
_CRC: Final = struct.Struct("<H")
_HELLO: Final = struct.Struct("<16s16sBBBB")
_STATUS: Final = struct.Struct("<BHB")
_UUID_TEXT: Final[dict[int, str]] = {uuid: f"0x{uuid:04X}" for uuid in CHARACTERISTICS}
_ZERO: Final[bytes] = b"\x00"


class _Reject(Exception):  # noqa: N818 - control flow inside the decoder, never escapes
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _battery(raw: int, extra: dict[str, object]) -> int | None:
    if raw <= 100:
        return raw
    extra["battery_raw"] = raw
    return None


def _ascii_field(raw: bytes, what: str) -> str:
    text = raw.split(_ZERO, 1)[0]
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise _Reject("payload", f"HELLO {what} is not ASCII") from None


def _parse_frame(frame: bytes, offset: int, raw: bytes) -> Decoded:
    """Decode one COBS-decoded frame (header, payload, CRC).

    Raises:
        _Reject: with the contract reason code (internal; the decoder turns it into a
            :class:`DecodeError`).
    """
    n = len(frame)
    if n < MIN_FRAME or n > MAX_FRAME:
        raise _Reject("length", f"frame of {n} bytes, sbf1 frames are {MIN_FRAME}..{MAX_FRAME}")
    body_end = n - CRC_SIZE
    crc = crc16_ccitt_false(frame[:body_end])
    got = frame[body_end] | frame[body_end + 1] << 8
    if crc != got:
        raise _Reject("crc", f"CRC 0x{got:04X} on the wire, 0x{crc:04X} computed")
    version, ftype, seq, device_time, uuid = _HEADER.unpack_from(frame)
    if version != VERSION:
        raise _Reject("version", f"frame version {version}, this decoder reads version {VERSION}")
    payload = frame[HEADER_SIZE:body_end]
    time: int | None = device_time or None
    if ftype == MEASUREMENT:
        ch = CHARACTERISTICS.get(uuid)
        if ch is None:
            raise _Reject("payload", f"unsupported characteristic 0x{uuid:04X}")
        try:
            values, layout_extra = ch.decode(payload)
        except PayloadError as exc:
            raise _Reject("payload", str(exc)) from None
        except (struct.error, IndexError):
            raise _Reject("payload", f"{ch.name}: value shorter than its flags announce") from None
        extra: dict[str, object] = {"uuid": _UUID_TEXT[uuid]}
        if layout_extra:
            extra.update(layout_extra)
        return Decoded(ch.kind, values, offset, raw, seq, time, extra)
    if ftype == HELLO:
        if uuid:
            raise _Reject("payload", f"HELLO carries characteristic 0x{uuid:04X}, must be 0")
        if len(payload) != _HELLO.size:
            raise _Reject(
                "payload", f"HELLO payload of {len(payload)} bytes, expected {_HELLO.size}"
            )
        model, serial, major, minor, patch, battery = _HELLO.unpack(payload)
        extra = {
            "model": _ascii_field(model, "model"),
            "serial": _ascii_field(serial, "serial"),
            "firmware": f"{major}.{minor}.{patch}",
        }
        return Decoded(
            "hello", {"battery_pct": _battery(battery, extra)}, offset, raw, seq, time, extra
        )
    if ftype == STATUS:
        if uuid:
            raise _Reject("payload", f"STATUS carries characteristic 0x{uuid:04X}, must be 0")
        if len(payload) != _STATUS.size:
            raise _Reject(
                "payload", f"STATUS payload of {len(payload)} bytes, expected {_STATUS.size}"
            )
        battery, flags, error_code = _STATUS.unpack(payload)
        extra = {"flags": bits_to_names(flags, STATUS_FLAGS), "error_code": error_code}
        return Decoded(
            "status", {"battery_pct": _battery(battery, extra)}, offset, raw, seq, time, extra
        )
    raise _Reject("type", f"frame type 0x{ftype:02X} (known: HELLO 1, MEASUREMENT 2, STATUS 3)")


def _nested_problem(holder: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """Range problem of the contract values nested in extras (PLX Fast/Slow SpO2PR)."""
    for key in keys:
        nested = holder.get(key)
        if isinstance(nested, Mapping):
            problem = check_values(nested)
            if problem is not None:
                return f"{key}: {problem}"
    return None


def _segment(seg: bytes, offset: int) -> Decoded:
    """COBS-decode and parse one segment (the bytes between two delimiters)."""
    try:
        frame = cobs_decode(seg)
    except CobsError as exc:
        raise _Reject("cobs", str(exc)) from None
    return _parse_frame(frame, offset, seg + _ZERO)


def _recover(seg: bytes, offset: int) -> Decoded | None:
    """The valid frame ending ``seg``, if any (see module docstring).

    A frame starts with version 0x01, so its COBS form starts with a code byte >= 2
    followed by 0x01: only those positions are tried, which keeps scanning garbage cheap.
    """
    n = len(seg)
    k = seg.find(b"\x01", 2)
    while k >= 0 and n - k >= MIN_FRAME:
        if seg[k - 1] >= 2:
            try:
                return _segment(seg[k - 1 :], offset + k - 1)
            except _Reject:
                pass
        k = seg.find(b"\x01", k + 1)
    return None


class Sbf1Decoder(StreamDecoder):
    """Streaming sbf1 decoder: holds at most :data:`MAX_WIRE` bytes between feeds."""

    def __init__(self, max_buffer: int | None = None) -> None:
        # Frames cannot exceed MAX_WIRE bytes, so neither can the buffer: a larger
        # max_buffer is accepted and changes nothing; a smaller one would reject frames.
        check_max_buffer(max_buffer, MAX_WIRE, MAX_WIRE)
        self.position = 0
        self._pending = b""
        self._pending_start = 0
        #: Inside a segment already reported as too long: discard up to the next 0x00,
        #: keeping only its last MAX_WIRE bytes, where a frame may still end.
        self._skipping = False
        self._tail = b""
        self._tail_end = 0

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Item]:
        out: list[Item] = []
        if not chunk:
            return out
        data = bytes(chunk)
        base = self.position
        self.position += len(data)
        start = 0
        if self._skipping:
            end = data.find(_ZERO)
            if end < 0:
                self._tail = (self._tail + data)[-MAX_WIRE:]
                return out
            self._skipping = False
            tail = (self._tail + data[:end])[-MAX_WIRE:]
            self._tail = b""
            found = _recover(b"\x00" + tail, base + end - len(tail) - 1)
            if found is not None:
                out.append(found)
            start = end + 1
        elif self._pending:
            data = self._pending + data
            base = self._pending_start
        find = data.find
        while True:
            end = find(_ZERO, start)
            if end < 0:
                break
            if end > start:
                out.extend(self._frame(data, start, end, base))
            start = end + 1
        rest = len(data) - start
        if rest > MAX_WIRE:
            out.append(self._too_long(data, start, base))
            self._skipping = True
            self._tail = data[-MAX_WIRE:]
            self._pending = b""
        else:
            self._pending = data[start:]
            self._pending_start = base + start
        return out

    @staticmethod
    def _too_long(data: bytes, start: int, base: int) -> DecodeError:
        return DecodeError(
            "length",
            base + start,
            data[start : start + MAX_WIRE + 1],
            f"no 0x00 delimiter within {MAX_WIRE + 1} bytes: longer than any sbf1 frame",
        )

    def _frame(self, data: bytes, start: int, end: int, base: int) -> list[Item]:
        if end - start > MAX_WIRE:
            tail = data[max(start, end - MAX_WIRE) : end]
            error = self._too_long(data, start, base)
            found = _recover(b"\x00" + tail, base + end - len(tail) - 1)
            return [error] if found is None else [error, found]
        seg = data[start:end]
        offset = base + start
        try:
            return [_segment(seg, offset)]
        except _Reject as exc:
            error = DecodeError(exc.reason, offset, seg + _ZERO, exc.detail)
            if exc.reason in ("cobs", "crc", "length"):
                found = _recover(seg, offset)
                if found is not None:
                    k = found.offset - offset
                    return [
                        DecodeError(
                            "sync", offset, seg[:k], f"{k} bytes before a frame, no 0x00 between"
                        ),
                        found,
                    ]
            return [error]

    def flush(self) -> list[Item]:
        out: list[Item] = []
        if self._pending:
            out.append(
                DecodeError(
                    "truncated",
                    self._pending_start,
                    self._pending,
                    f"{len(self._pending)} bytes without their 0x00 delimiter at end of stream",
                )
            )
        self._pending = b""
        self._skipping = False
        self._tail = b""
        return out


def _u(value: object, key: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise EncodeError(f"{key} must be an integer 0..{(1 << bits) - 1}, got {value!r}")
    return value


def _battery_byte(values: Mapping[str, Any]) -> int:
    battery = values.get("battery_pct")
    if battery is None:
        return BATTERY_UNKNOWN
    if isinstance(battery, float) and battery.is_integer():
        battery = int(battery)
    if isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100:
        raise EncodeError(f"battery_pct must be 0..100 or null, got {battery!r}")
    return battery


def _ascii16(value: object, key: str) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"{key} must be a string")
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"{key} must be ASCII, got {value!r}") from None
    if len(raw) > 16 or _ZERO in raw:
        raise EncodeError(f"{key} must be at most 16 ASCII characters without NUL")
    return raw


def _uuid(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise EncodeError(f"uuid must be a UUID16 such as '0x2A5F', got {value!r}")


class Sbf1Codec(Codec):
    """sbf1 codec (see module docstring)."""

    name = NAME
    default_max_buffer = MAX_WIRE

    def decoder(self, max_buffer: int | None = None) -> Sbf1Decoder:
        return Sbf1Decoder(max_buffer)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Wire bytes (COBS + 0x00) of one record shaped like a decoded JSON line.

        ``seq`` defaults to 0, ``device_time`` ``None`` writes 0 (clock not set). HELLO
        takes ``model``, ``serial``, ``firmware`` ("major.minor.patch"); STATUS takes
        ``flags`` (names or an integer) and ``error_code``; measurements take the
        characteristic's extras (see ``_gatt``) and optionally ``uuid``. A battery of
        ``None`` is written as 255. An error line is replayed from its ``raw`` hex.
        """
        if "error" in record:
            return self.encode_error_line(record)
        return cobs_encode(self.frame(record)) + _ZERO

    def frame(self, record: Mapping[str, Any]) -> bytes:
        """The decoded frame (header, payload, CRC) for ``record``, before COBS."""
        kind = record.get("kind")
        values = record.get("values", {})
        if not isinstance(values, Mapping):
            raise EncodeError("'values' must be an object")
        problem = check_values(values)
        if problem is not None:
            raise EncodeError(problem)
        seq = _u(record.get("seq", 0), "seq", 16)
        device_time = record.get("device_time")
        device_time = 0 if device_time is None else _u(device_time, "device_time", 32)
        uuid = 0
        if kind == "hello":
            ftype = HELLO
            firmware = record.get("firmware", "0.0.0")
            parts = firmware.split(".") if isinstance(firmware, str) else []
            if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
                raise EncodeError(
                    f"firmware must be 'major.minor.patch' (0..255), got {firmware!r}"
                )
            payload = _HELLO.pack(
                _ascii16(record.get("model", ""), "model"),
                _ascii16(record.get("serial", ""), "serial"),
                *(int(p) for p in parts),
                _battery_byte(values),
            )
        elif kind == "status":
            ftype = STATUS
            try:
                flags = names_to_bits(record.get("flags", []), STATUS_FLAGS, 16)
            except ValueError as exc:
                raise EncodeError(f"flags: {exc}") from None
            payload = _STATUS.pack(
                _battery_byte(values), flags, _u(record.get("error_code", 0), "error_code", 8)
            )
        elif isinstance(kind, str) and kind in DEFAULT_UUID:
            ftype = MEASUREMENT
            uuid = _uuid(record["uuid"]) if "uuid" in record else DEFAULT_UUID[kind]
            ch = CHARACTERISTICS.get(uuid)
            if ch is None or ch.kind != kind:
                raise EncodeError(
                    f"characteristic {record.get('uuid')!r} does not carry kind {kind!r}"
                )
            problem = _nested_problem(record, ch.nested)
            if problem is not None:
                raise EncodeError(problem)
            try:
                payload = ch.encode(record)
            except PayloadError as exc:
                raise EncodeError(str(exc)) from None
        else:
            known = ", ".join(["hello", "status", *DEFAULT_UUID])
            raise EncodeError(f"unknown kind {kind!r} for sbf1 (known: {known})")
        if len(payload) > MAX_PAYLOAD:
            raise EncodeError(f"payload of {len(payload)} bytes, sbf1 allows {MAX_PAYLOAD}")
        body = _HEADER.pack(VERSION, ftype, seq, device_time, uuid) + payload
        return body + _CRC.pack(crc16_ccitt_false(body))
