"""sbf1 framing: every reason code, offsets, resynchronisation, recovery, bounded buffer."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from console.bench.decode import long_sbf1_stream
from protocols.codecs import Decoded, DecodeError, cobs_encode, crc16_ccitt_false, get_codec
from protocols.codecs.sbf1 import MAX_WIRE

SBF1 = get_codec("sbf1")
SPO2 = {"kind": "spo2", "values": {"spo2_pct": 98, "pulse_bpm": 72}, "seq": 1, "device_time": 5}


def frame(body: bytes, crc: int | None = None) -> bytes:
    crc = crc16_ccitt_false(body) if crc is None else crc
    return cobs_encode(body + struct.pack("<H", crc)) + b"\x00"


def header(version: int = 1, ftype: int = 2, uuid: int = 0x2A5F) -> bytes:
    return struct.pack("<BBHIH", version, ftype, 1, 5, uuid)


def errors(data: bytes) -> list[tuple[str, int]]:
    return [(i.reason, i.offset) for i in SBF1.decode(data) if isinstance(i, DecodeError)]


GOOD = SBF1.encode(SPO2)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (frame(header() + bytes.fromhex("00 62 00 48 00"), crc=0x1234), "crc"),
        (frame(header(version=2) + bytes.fromhex("00 62 00 48 00")), "version"),
        (frame(header(ftype=9) + bytes.fromhex("00 62 00 48 00")), "type"),
        (frame(header(uuid=0x2A99) + bytes.fromhex("00 62 00 48 00")), "payload"),
        (frame(header() + bytes.fromhex("00 62 00")), "payload"),
        (frame(header() + bytes.fromhex("01 62 00 48 00")), "payload"),  # flags announce more
        (frame(header(ftype=1, uuid=0) + b"short"), "payload"),
        (frame(header(ftype=3, uuid=0) + bytes(5)), "payload"),
        (cobs_encode(b"\x01\x02\x03") + b"\x00", "length"),
        (frame(header() + bytes(245)), "length"),
        (b"\x09\x01\x02\x00", "cobs"),
    ],
)
def test_each_reason_code_with_the_frame_offset(bad: bytes, reason: str) -> None:
    data = GOOD + bad + GOOD
    items = SBF1.decode(data)
    assert [type(i) for i in items] == [Decoded, DecodeError, Decoded]
    error = items[1]
    assert isinstance(error, DecodeError)
    assert (error.reason, error.offset) == (reason, len(GOOD))
    assert error.raw == bad
    assert items[2].offset == len(GOOD) + len(bad)
    line = error.to_json()
    assert line["error"] == reason
    assert line["offset"] == len(GOOD)
    assert bytes.fromhex(line["raw"]) == bad


def test_crc_is_checked_before_the_header() -> None:
    """A flipped version byte fails the CRC: a line-noise hit, not a firmware mismatch."""
    wire = bytearray(GOOD)
    wire[1] ^= 0x02  # version byte (after the COBS code byte)
    assert errors(bytes(wire)) == [("crc", 0)]


def test_largest_frame_decodes() -> None:
    rr = [float(300 + i) for i in range(121)]  # 121 RR intervals: a 256-byte frame
    record = {"kind": "heart_rate", "values": {"heart_rate_bpm": 60, "rr_ms": rr}}
    assert len(SBF1.frame(record)) == 256  # type: ignore[attr-defined]
    items = SBF1.decode(SBF1.encode(record))
    assert isinstance(items[0], Decoded)
    assert len(items[0].values["rr_ms"]) == 121  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="payload of"):
        SBF1.encode({"kind": "heart_rate", "values": {"heart_rate_bpm": 60, "rr_ms": [*rr, 300.0]}})


def test_idle_delimiters_are_neither_frames_nor_errors() -> None:
    assert [i.offset for i in SBF1.decode(b"\x00\x00" + GOOD + b"\x00" + GOOD)] == [
        2,
        3 + len(GOOD),
    ]


def test_truncated_frame_at_end_of_stream() -> None:
    items = SBF1.decode(GOOD + GOOD[:-4])
    assert isinstance(items[0], Decoded)
    assert isinstance(items[1], DecodeError)
    assert (items[1].reason, items[1].offset, items[1].raw) == ("truncated", len(GOOD), GOOD[:-4])


def test_frame_glued_to_a_partial_one_is_recovered() -> None:
    """A device reset mid-frame, then a complete frame: no 0x00 between them."""
    data = GOOD[:7] + GOOD + GOOD
    items = SBF1.decode(data)
    assert [type(i) for i in items] == [DecodeError, Decoded, Decoded]
    assert isinstance(items[0], DecodeError)
    assert (items[0].reason, items[0].offset, items[0].raw) == ("sync", 0, GOOD[:7])
    assert [i.offset for i in items[1:]] == [7, 7 + len(GOOD)]


def test_frame_after_a_long_boot_banner_is_recovered() -> None:
    banner = b"BLE bridge v2 booting...\r\n" * 40  # >1 KB without a 0x00
    items = SBF1.decode(banner + GOOD)
    assert [type(i) for i in items] == [DecodeError, Decoded]
    assert isinstance(items[0], DecodeError)
    assert (items[0].reason, items[0].offset) == ("length", 0)
    assert items[1].offset == len(banner)


def test_buffer_stays_bounded_without_any_delimiter() -> None:
    """10 MB with no 0x00: one length error, nothing held beyond one frame's worth."""
    decoder = SBF1.decoder()
    junk = bytes(range(1, 256)) * 257  # 65535 bytes, no zero
    items = []
    for _ in range(160):
        items += decoder.feed(junk)
        assert len(decoder._pending) <= MAX_WIRE  # type: ignore[attr-defined]
        assert len(decoder._tail) <= MAX_WIRE  # type: ignore[attr-defined]
    items += decoder.feed(b"\x00" + GOOD)
    items += decoder.flush()
    assert [(type(i), i.offset) for i in items] == [
        (DecodeError, 0),
        (Decoded, 160 * len(junk) + 1),
    ]
    assert len(items[0].raw) <= MAX_WIRE + 1


def test_max_buffer_cannot_be_below_a_frame() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        SBF1.decoder(max_buffer=100)
    assert SBF1.decoder(max_buffer=1 << 20).feed(GOOD)


def test_long_stream_decodes_in_bounded_memory() -> None:
    """100 MB generated lazily (mostly noise, frames every 4 MiB), under tracemalloc.

    The benchmark streams 200 MB (1 GB with SAMU_BENCH_DECODE_MB=1024) with 16× the
    frame density; here the frames are thinned so the test stays within seconds.
    """
    decoder = SBF1.decoder()
    stream = long_sbf1_stream(100_000_000, frame_bytes=16 * 1024, pattern_bytes=4 << 20)
    first = next(stream)
    decoded = errors = 0
    tracemalloc.start()
    try:
        for chunk in [first]:
            decoder.feed(chunk)
        tracemalloc.reset_peak()
        for chunk in stream:
            for item in decoder.feed(chunk):
                if isinstance(item, Decoded):
                    decoded += 1
                else:
                    errors += 1
        decoder.flush()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded > 10_000
    assert errors >= 23  # one length error per noise run
    assert peak < 4 << 20, f"peak {peak} bytes"
