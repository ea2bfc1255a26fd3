"""Frame codecs for every serial format of protocols.md section 1.

Each codec turns a byte stream into decoded messages and error records (never raising
on data) and encodes the same record shape back into wire bytes, so the simulator, the
ingest and the tests share one description of each format::

    codec = get_codec("sbf1")
    dec = codec.decoder()
    for item in dec.feed(chunk) + dec.flush():
        print(item.to_json())
    wire = codec.encode({"kind": "spo2", "values": {"spo2_pct": 98, "pulse_bpm": 72}})

Every codec refuses physiologically impossible values the same way, from one table
(:data:`PHYSIOLOGICAL_RANGES`): :class:`EncodeError` on encode, a ``payload`` error
record on decode. Error records keep at most :data:`RAW_CAP` raw bytes.
"""

from __future__ import annotations

from typing import Final

from protocols.codecs._cobs import CobsError, cobs_decode, cobs_encode
from protocols.codecs._crc import crc16_ccitt_false
from protocols.codecs._ieee11073 import float_decode, float_encode, sfloat_decode, sfloat_encode
from protocols.codecs._ranges import PHYSIOLOGICAL_RANGES, ValueRange
from protocols.codecs._records import (
    RAW_CAP,
    REASONS,
    Codec,
    Decoded,
    DecodeError,
    EncodeError,
    Item,
    StreamDecoder,
    Value,
)
from protocols.codecs.contec import ContecCodec
from protocols.codecs.masimo import MasimoCodec
from protocols.codecs.nonin import NoninCodec
from protocols.codecs.sbf1 import Sbf1Codec

#: Format names, as ``--format`` and hardware profiles spell them.
CODEC_NAMES: Final[tuple[str, ...]] = ("sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d")

_CODECS: Final[dict[str, Codec]] = {
    c.name: c for c in (Sbf1Codec(), MasimoCodec(), NoninCodec(), ContecCodec())
}


def get_codec(name: str) -> Codec:
    """The codec for a format name.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return _CODECS[name]
    except KeyError:
        raise KeyError(f"unknown frame format {name!r}; known: {', '.join(CODEC_NAMES)}") from None


__all__ = [
    "CODEC_NAMES",
    "PHYSIOLOGICAL_RANGES",
    "RAW_CAP",
    "REASONS",
    "CobsError",
    "Codec",
    "DecodeError",
    "Decoded",
    "EncodeError",
    "Item",
    "StreamDecoder",
    "Value",
    "ValueRange",
    "cobs_decode",
    "cobs_encode",
    "crc16_ccitt_false",
    "float_decode",
    "float_encode",
    "get_codec",
    "sfloat_decode",
    "sfloat_encode",
]
