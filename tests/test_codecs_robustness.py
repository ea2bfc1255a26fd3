"""Decoders never raise on data, report every error at an offset inside the input, do not
depend on chunking, and find valid frames again after garbage (protocols.md, section 1)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codecs import CODEC_NAMES, REASONS, Decoded, DecodeError, Item, get_codec

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "sbf1": [
        {"kind": "spo2", "values": {"spo2_pct": 97, "pulse_bpm": 64}, "seq": 1},
        {"kind": "bp", "values": {"systolic_mmhg": 131, "diastolic_mmhg": 82, "map_mmhg": 98}},
        {"kind": "temperature", "values": {"temperature_c": 38.2}, "seq": 3},
        {"kind": "status", "values": {"battery_pct": 9}, "flags": ["low_battery"], "seq": 4},
    ],
    "masimo-ascii1": [
        {
            "values": {"spo2_pct": 91, "pulse_bpm": 110},
            "device_clock": "11/23/26 17:02:03",
            "serial": "0123456789",
            "aux": {"pi_pct": 1.2, "pvi": 14},
            "alarm_code": "0012",
            "exception_code": "000000",
        },
        {"values": {"spo2_pct": None, "pulse_bpm": None}, "device_clock": "11/23/26 17:02:04"},
    ],
    "nonin-df8": [
        {"values": {"spo2_pct": 95, "pulse_bpm": 130}, "status": ["artifact"]},
        {"values": {"spo2_pct": None, "pulse_bpm": None}, "status": ["sensor_disconnected"]},
    ],
    "contec-cms50d": [
        {"values": {"spo2_pct": 98, "pulse_bpm": 72}, "signal_strength": 5, "pleth": 60},
        {"values": {"spo2_pct": 88, "pulse_bpm": 150}, "bar_graph": 7, "status": ["pulse_beep"]},
    ],
}


def stream(name: str) -> bytes:
    codec = get_codec(name)
    return b"".join(codec.encode(r) for r in SAMPLES[name])


def as_json(items: list[Item]) -> list[dict[str, Any]]:
    return [i.to_json() for i in items]


def check_items(items: list[Item], size: int) -> None:
    offsets = [i.offset for i in items]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    for item in items:
        assert 0 <= item.offset < size
        assert item.raw
        if isinstance(item, DecodeError):
            assert item.reason in REASONS
            assert item.detail


def chunked(codec_name: str, data: bytes, cuts: list[int]) -> list[Item]:
    decoder = get_codec(codec_name).decoder()
    items: list[Item] = []
    last = 0
    for cut in sorted(cuts):
        items += decoder.feed(data[last:cut])
        last = cut
    items += decoder.feed(data[last:])
    return items + decoder.flush()


names = st.sampled_from(CODEC_NAMES)


@given(names, st.binary(max_size=3000))
def test_random_bytes_never_raise(name: str, data: bytes) -> None:
    check_items(get_codec(name).decode(data), len(data))


@given(names, st.data())
def test_damaged_streams_never_raise(name: str, data: st.DataObject) -> None:
    """Truncation, bit flips, inserted and deleted bytes, spliced streams."""
    good = bytearray(stream(name))
    for _ in range(data.draw(st.integers(0, 6), label="damages")):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "splice", "truncate"]))
        pos = data.draw(st.integers(0, max(len(good) - 1, 0)))
        if op == "flip" and good:
            good[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "insert":
            good[pos:pos] = data.draw(st.binary(min_size=1, max_size=20))
        elif op == "delete":
            del good[pos : pos + data.draw(st.integers(1, 10))]
        elif op == "splice":
            other = stream(data.draw(names))
            good[pos:] = other[data.draw(st.integers(0, len(other) - 1)) :]
        else:
            del good[pos:]
    blob = bytes(good)
    check_items(get_codec(name).decode(blob), len(blob))


@given(names, st.data())
def test_output_does_not_depend_on_chunking(name: str, data: st.DataObject) -> None:
    garbage = data.draw(st.binary(max_size=300), label="garbage")
    blob = garbage + stream(name) + garbage + stream(name)[:-1]
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=12), label="cuts")
    assert as_json(chunked(name, blob, cuts)) == as_json(get_codec(name).decode(blob))


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_byte_by_byte_equals_whole(name: str) -> None:
    blob = b"\x00\xff\x81junk\n" + stream(name) * 3 + b"\x80\x7f"
    assert as_json(chunked(name, blob, list(range(len(blob))))) == as_json(
        get_codec(name).decode(blob)
    )


@given(names, st.binary(max_size=600))
def test_valid_frames_after_garbage_are_decoded(name: str, garbage: bytes) -> None:
    codec = get_codec(name)
    good = stream(name)
    expected = [i for i in codec.decode(good) if isinstance(i, Decoded)]
    items = codec.decode(garbage + good)
    check_items(items, len(garbage) + len(good))
    decoded = [i for i in items if isinstance(i, Decoded)]
    for got, want in zip(decoded[-len(expected) :], expected, strict=True):
        assert got.values == want.values
        # Where each frame ends: a Masimo line may legitimately start earlier (leading
        # blanks belong to the line), but it must end where the good line ends.
        assert got.offset + len(got.raw) == want.offset + len(want.raw) + len(garbage)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_valid_frame_glued_to_garbage_without_boundary(name: str) -> None:
    """No delimiter between the garbage and the frame: still recovered."""
    codec = get_codec(name)
    good = stream(name)
    garbage = b"\x13\x37garbage\xfe\x01"
    items = codec.decode(garbage + good)
    decoded = [i for i in items if isinstance(i, Decoded)]
    assert len(decoded) == len(SAMPLES[name])
    assert decoded[0].offset == len(garbage)
    assert isinstance(items[0], DecodeError)
    assert items[0].offset == 0


@pytest.mark.parametrize("name", ["masimo-ascii1", "nonin-df8", "contec-cms50d"])
def test_buffer_stays_bounded_without_a_boundary(name: str) -> None:
    """10 MB without a frame boundary (no LF for Masimo, no high byte for Nonin/Contec)."""
    decoder = get_codec(name).decoder()
    junk = (b"A" if name == "masimo-ascii1" else b"\x01") * 65536
    errors = 0
    for _ in range(160):
        for item in decoder.feed(junk):
            assert isinstance(item, DecodeError)
            assert len(item.raw) <= 4097
            errors += 1
        assert len(decoder._pending) <= 4096  # type: ignore[attr-defined]
    assert errors >= 1
    good = stream(name)
    items = decoder.feed(b"\n" + good) + decoder.flush()
    assert sum(isinstance(i, Decoded) for i in items) == len(SAMPLES[name])
