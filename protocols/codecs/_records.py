"""What a decoder yields: decoded messages and error records, and the codec interfaces.

Errors are data (protocols.md): a decoder never raises on bytes it receives; it yields a
:class:`DecodeError` carrying a short reason code, the absolute byte offset of the bad
frame in the input and its raw bytes, then resynchronises on the next frame boundary.
Keeping both kinds as plain slotted dataclasses (not pydantic models) is deliberate: a
decoder produces tens of thousands of them per second and validation happens on the
bytes, not on the objects built from them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: Value types a decoded measurement carries (``rr_ms`` is the only list).
Value = float | int | list[float] | None

#: The reason codes of protocols.md 1.3, plus ``truncated`` for a frame cut by the end of
#: the stream.
REASONS: Final[frozenset[str]] = frozenset(
    {"crc", "cobs", "length", "version", "type", "payload", "sync", "truncated"}
)

#: At most this many raw bytes are kept in an error record: an error about a 10 MB run
#: of garbage must not hold 10 MB (the decoder's buffer is bounded, so are its errors).
#: :class:`DecodeError` enforces it itself, whichever decoder built the record, and says
#: how many bytes there were (``raw_length``) when it had to cut.
RAW_CAP: Final[int] = 512
#: At most this many characters of ``detail``: a sentence, never a copy of the input.
DETAIL_CAP: Final[int] = 240

#: Keys of the JSON line that extras may not override.
_RESERVED_KEYS: Final[frozenset[str]] = frozenset(
    {
        "kind",
        "values",
        "offset",
        "seq",
        "device_time",
        "clock_set",
        "error",
        "detail",
        "raw",
        "raw_length",
    }
)


@dataclass(slots=True)
class Decoded:
    """One decoded message.

    Attributes:
        kind: ``spo2``, ``bp``, ``temperature``, ``heart_rate``, ``glucose``, ``weight``,
            ``status`` or ``hello``.
        values: Contract value keys (``spo2_pct``, ``pulse_bpm`` …). A key whose field is
            in the message but unavailable (dashes, 127/511, an IEEE-11073 NaN) is present
            with ``None``; a field the message does not carry is absent. The difference
            matters to a clinician: "sensor says no reading" is not "device cannot measure".
        offset: Absolute byte offset of the message's first byte in the input stream.
        raw: The message's bytes as received (for sbf1, the COBS bytes and their 0x00).
        seq: sbf1 frame sequence number; ``None`` for formats without one.
        device_time: sbf1 device clock (Unix seconds); ``None`` when the device's clock is
            not set (wire value 0) or the format has no clock field.
        extra: Format-specific details (flags, status and alarm bits by name, model,
            serial…), written as further keys of the JSON line.
    """

    kind: str
    values: dict[str, Value]
    offset: int
    raw: bytes
    seq: int | None = None
    device_time: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON line as a dict (``json.dumps`` it on one line).

        sbf1 lines (those with a ``seq``) always carry ``seq`` and ``device_time`` as the
        wire's u32, so ``0`` when the device clock is not set (protocols.md: "0 = clock not
        set"); such lines add ``"clock_set": false`` so no consumer reads 1970 as a time.
        """
        out: dict[str, Any] = {"kind": self.kind, "values": self.values, "offset": self.offset}
        if self.seq is not None:
            out["seq"] = self.seq
            out["device_time"] = 0 if self.device_time is None else self.device_time
            if self.device_time is None:
                out["clock_set"] = False
        for key, value in self.extra.items():
            if key not in _RESERVED_KEYS:
                out[key] = value
        return out


@dataclass(slots=True)
class DecodeError:
    """A frame (or run of bytes) that could not be decoded: quarantined, never dropped.

    Attributes:
        reason: One of :data:`REASONS`.
        offset: Absolute byte offset of the bad frame's first byte in the input.
        raw: The bad bytes as received, at most :data:`RAW_CAP` of them: longer bytes
            given to the constructor are cut to their first :data:`RAW_CAP`.
        detail: One human sentence saying what was wrong, for the quarantine view (at most
            :data:`DETAIL_CAP` characters: longer ones are cut and end with ``…``).
        raw_length: How many bad bytes there were; more than ``len(raw)`` when ``raw``
            was cut (a decoder that kept only the first bytes of a run passes the run's
            length). Defaults to ``len(raw)``.
    """

    reason: str
    offset: int
    raw: bytes
    detail: str = ""
    raw_length: int = 0

    def __post_init__(self) -> None:
        n = len(self.raw)
        self.raw_length = max(self.raw_length, n)
        if n > RAW_CAP:
            self.raw = bytes(self.raw[:RAW_CAP])
        if len(self.detail) > DETAIL_CAP:
            self.detail = self.detail[: DETAIL_CAP - 1] + "…"

    @property
    def truncated(self) -> bool:
        """True when ``raw`` holds only the first bytes of the bad run."""
        return self.raw_length > len(self.raw)

    def to_json(self) -> dict[str, Any]:
        """The contract's error line: ``error`` and ``offset``, plus ``detail`` and ``raw`` hex.

        ``raw`` lets ``samu protocols encode`` replay the exact bad bytes, so a capture
        survives a decode → encode round trip, errors included. When ``raw`` was cut to
        :data:`RAW_CAP` bytes the line also carries ``raw_length``, the original count,
        so nobody mistakes the kept bytes for the whole run (and such a line is not
        replayed: see :meth:`Codec.encode_error_line`).
        """
        out: dict[str, Any] = {
            "error": self.reason,
            "offset": self.offset,
            "detail": self.detail,
            "raw": self.raw.hex(),
        }
        if self.raw_length > len(self.raw):
            out["raw_length"] = self.raw_length
        return out


Item = Decoded | DecodeError


class EncodeError(ValueError):
    """A record cannot be encoded in this format (missing or out-of-range field)."""


class StreamDecoder(ABC):
    """Streaming decoder: bytes in any chunking in, decoded items and errors out.

    Contract (protocols.md): never raises on data; output does not depend on how the
    input was split into chunks; memory stays bounded whatever the input (at most
    ``max_buffer`` bytes are held while waiting for a frame boundary).
    """

    #: Absolute offset of the next byte :meth:`feed` will receive.
    position: int

    @abstractmethod
    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Item]:
        """Consume ``chunk``; return every item completed by it, in stream order."""

    @abstractmethod
    def flush(self) -> list[Item]:
        """End of stream: report a pending partial frame as ``truncated``, reset state."""

    def decode_all(self, data: bytes | bytearray | memoryview) -> list[Item]:
        """Feed ``data`` as one chunk and flush: convenient for files and tests."""
        return self.feed(data) + self.flush()


class Codec(ABC):
    """One serial format: a decoder factory and an encoder sharing one description."""

    #: Format name as used by ``--format`` and hardware profiles.
    name: str
    #: Default bound on bytes held while waiting for a frame boundary.
    default_max_buffer: int

    @abstractmethod
    def decoder(self, max_buffer: int | None = None) -> StreamDecoder:
        """A fresh streaming decoder (decoders are stateful; one per stream)."""

    @abstractmethod
    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Wire bytes for one record shaped like a decoded JSON line.

        Raises:
            EncodeError: the record is not encodable in this format.
        """

    def decode(self, data: bytes | bytearray | memoryview) -> list[Item]:
        """Decode a complete byte string (decoder + flush)."""
        return self.decoder().decode_all(data)

    def encode_error_line(self, record: Mapping[str, Any]) -> bytes:
        """Replay an error line's ``raw`` hex: lets captures with bad frames round-trip.

        A line whose ``raw`` was cut (it carries a ``raw_length`` larger than its bytes)
        is refused: replaying the kept bytes would silently shorten the capture.
        """
        raw = record.get("raw")
        if not isinstance(raw, str):
            raise EncodeError("an error line can only be re-encoded from its 'raw' hex bytes")
        try:
            data = bytes.fromhex(raw)
        except ValueError as exc:
            raise EncodeError(f"'raw' is not hex: {exc}") from None
        length = record.get("raw_length", len(data))
        if length != len(data):
            raise EncodeError(
                f"this error line keeps {len(data)} of its {length} bytes (raw_length): "
                "it cannot be replayed exactly; re-encode from the original capture"
            )
        return data


def check_max_buffer(max_buffer: int | None, default: int, minimum: int) -> int:
    """Resolve a decoder's buffer bound; too small a bound would reject valid frames."""
    if max_buffer is None:
        return default
    if max_buffer < minimum:
        raise ValueError(f"max_buffer must be at least {minimum} bytes, got {max_buffer}")
    return max_buffer
