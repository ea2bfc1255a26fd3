"""Error records keep at most ``RAW_CAP`` raw bytes, whatever the codec and its buffer
bound; a record whose bytes were cut says how many there were (``raw_length``), and such
a line cannot be replayed as if it were the whole capture."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codecs import CODEC_NAMES, RAW_CAP, DecodeError, EncodeError, get_codec

MASIMO = get_codec("masimo-ascii1")
BIG = 4 * 1024 * 1024


def errors(items: list[object]) -> list[DecodeError]:
    return [i for i in items if isinstance(i, DecodeError)]


def test_a_4_mb_masimo_line_keeps_a_capped_error() -> None:
    decoder = MASIMO.decoder(max_buffer=BIG)
    line = b"SPO2=098% " + b"X" * (BIG + 100) + b"\r\n"
    (error,) = errors(decoder.feed(line) + decoder.flush())
    assert error.reason == "length"
    assert len(error.raw) <= RAW_CAP
    assert error.raw_length == BIG + 1
    line_json = error.to_json()
    assert len(bytes.fromhex(line_json["raw"])) <= RAW_CAP
    assert line_json["raw_length"] == BIG + 1


@pytest.mark.parametrize("max_buffer", [None, BIG])
def test_default_and_large_buffers_cap_length_payload_sync_and_truncated(
    max_buffer: int | None,
) -> None:
    limit = max_buffer or MASIMO.default_max_buffer
    good = MASIMO.encode(
        {"device_clock": "11/23/26 17:02:03", "values": {"spo2_pct": 97, "pulse_bpm": 64}}
    )
    cases = {
        "length": b"Z" * (limit + 5) + b"\n",
        "payload": b"SPO2=098% " + b"W" * (limit - 20) + b"\n",
        "sync": b"N" * (limit - len(good) - 5) + good,
        "truncated": b"T" * (limit - 10),
    }
    for reason, data in cases.items():
        decoder = MASIMO.decoder(max_buffer=max_buffer)
        found = [e for e in errors(decoder.feed(data) + decoder.flush()) if e.reason == reason]
        assert found, reason
        for error in found:
            assert len(error.raw) <= RAW_CAP, reason
            assert error.raw_length > RAW_CAP, reason
            assert error.to_json()["raw_length"] == error.raw_length


def test_an_uncut_error_is_unchanged() -> None:
    (error,) = errors(MASIMO.decode(b"SPO2=abc%\r\n"))
    assert error.raw == b"SPO2=abc%\r\n" and error.raw_length == len(error.raw)
    assert "raw_length" not in error.to_json()
    assert MASIMO.encode(error.to_json()) == error.raw


def test_sync_runs_of_the_fixed_record_formats_say_how_long_they_were() -> None:
    nonin = get_codec("nonin-df8")
    (error,) = errors(nonin.decode(b"\x01" * 3000))
    assert error.reason == "sync" and len(error.raw) <= RAW_CAP
    assert error.raw_length == 3000 and error.to_json()["raw_length"] == 3000


def test_a_cut_error_line_is_not_replayed_as_if_whole() -> None:
    (error,) = errors(MASIMO.decode(b"Z" * 5000 + b"\n"))
    with pytest.raises(EncodeError, match="raw_length"):
        MASIMO.encode(error.to_json())


def test_the_record_itself_enforces_the_cap() -> None:
    error = DecodeError("payload", 7, b"x" * 10_000, "built by hand")
    assert len(error.raw) == RAW_CAP and error.raw_length == 10_000


@given(
    st.sampled_from(CODEC_NAMES),
    st.lists(st.binary(min_size=0, max_size=3000), max_size=4),
    st.sampled_from([None, 1 << 16]),
)
def test_no_codec_ever_holds_more_than_the_cap_in_an_error(
    name: str, chunks: list[bytes], max_buffer: int | None
) -> None:
    decoder = get_codec(name).decoder(max_buffer=max_buffer)
    items: list[object] = []
    for chunk in chunks:
        items += decoder.feed(chunk)
    items += decoder.flush()
    for error in errors(items):
        assert len(error.raw) <= RAW_CAP
        assert error.raw_length >= len(error.raw)


@pytest.mark.parametrize(
    "line",
    [
        b"SPO2=" + b"9" * 20 + b"x" * 3000 + b"%\r\n",  # a number that is not one
        b"SPO2=098% ALARM=" + b"Z" * 3000 + b"\r\n",  # not hexadecimal
        b"SPO2=098% " + b"K" * 3000 + b"=1 " + b"K" * 3000 + b"=2\r\n",  # a key twice
    ],
)
def test_the_detail_of_an_error_quotes_a_little_never_the_whole_input(line: bytes) -> None:
    (error,) = errors(MASIMO.decoder(max_buffer=BIG).decode_all(line))
    assert error.reason == "payload"
    assert len(error.detail) <= 120, error.detail


def test_the_record_caps_its_detail_too() -> None:
    error = DecodeError("payload", 0, b"x", "y" * 10_000)
    assert len(error.detail) <= 240 and error.detail.endswith("…")
