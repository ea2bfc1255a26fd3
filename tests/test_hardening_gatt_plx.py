"""The two PLX layouts (0x2A5E spot-check, 0x2A5F continuous) share one parser and one
encoder in ``protocols.codecs._gatt``, and factoring them changed no output.

The digests below were computed from the decoders and encoders as they were before the
shared parsing was factored out (git HEAD of protocols/codecs/_gatt.py when this file
was written): every flags byte with every payload length up to 24 (seeded contents,
random and plausible), and a grid of records through both encoders. The decoders now
also refuse physiologically impossible values (``_ranges``), so the expected decode
outcomes are the old ones with each value that table refuses turned into its refusal
(values first, then SpO2PR-Fast, then Slow: the order the decoders check in). Any
other change in a value, an extra, an error message or a byte changes the digest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import struct
from typing import Any

from protocols.codecs import _gatt
from protocols.codecs._gatt import (
    CHARACTERISTICS,
    PayloadError,
    plx_continuous_decode,
    plx_continuous_encode,
    plx_spot_check_decode,
    plx_spot_check_encode,
)

OTHERS_DIGEST = "c042749241113c3e48ebcecfaebded3ffc033878ad36134fa5d00f6b79690ad3"
DECODE_DIGEST = "6e998ac1eb157800e9f6b1ea9c61f951dff8f7df4ac6e5f5ddc981c886502d4c"
ENCODE_DIGEST = "7c37e1690f1506792c2dcfbcd84951300a4b66ff7c8ed4fca56e4bf5b5b36468"


def _body(rnd: random.Random, n: int, plausible: bool) -> bytes:
    """Random bytes; ``plausible`` ones are mostly 0 and otherwise 1..100, so that most
    SFLOATs they form are small whole numbers a patient can have (SpO2 98 = 62 00)."""
    if not plausible:
        return bytes(rnd.randrange(256) for _ in range(n))
    return bytes(0 if rnd.random() < 0.7 else rnd.randint(1, 100) for _ in range(n))


def _decode_outcomes() -> list[Any]:
    rnd = random.Random(2017)
    out: list[Any] = []
    for decode, plausible in (
        (plx_spot_check_decode, False),
        (plx_continuous_decode, False),
        (plx_spot_check_decode, True),
        (plx_continuous_decode, True),
    ):
        for flags in range(256):
            for n in range(25):
                body = _body(rnd, max(0, n - 1), plausible)
                payload = (bytes([flags]) + body)[:n]
                try:
                    values, extra = decode(payload)
                except PayloadError as exc:
                    out.append(["payload", str(exc)])
                except (struct.error, IndexError):
                    out.append(["short"])
                else:
                    out.append(["ok", values, extra])
        # IEEE-11073 specials (NaN, NRes, +INF, -INF) on each field, with and without
        # optional fields after them: the fast path and the general path alike.
        for special in (0x07FF, 0x0800, 0x07FE, 0x0802, 0xF3E8):
            for flags, tail in ((0x00, b""), (0x02, b"\x80\x01"), (0x10, b"\x32\x00")):
                for pair in ((special, 0x0048), (0x0062, special)):
                    payload = bytes([flags]) + struct.pack("<HH", *pair) + tail
                    try:
                        values, extra = decode(payload)
                    except PayloadError as exc:
                        out.append(["payload", str(exc)])
                    else:
                        out.append(["ok", values, extra])
    return out


def _encode_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    pairs = [(98, 72), (None, 60), (0, 300), (85.5, 41.2)]
    for spo2, pulse in pairs:
        base: dict[str, Any] = {"values": {"spo2_pct": spo2, "pulse_bpm": pulse}}
        if spo2 is None:
            base["unavailable"] = {"spo2_pct": "nres"}
        records.append(dict(base))
        records.append({**base, "fast": {"spo2_pct": 97, "pulse_bpm": 70}})
        records.append({**base, "slow": {"spo2_pct": None, "pulse_bpm": 71}})
        records.append({**base, "timestamp": "2026-11-23T17:02:03"})
        records.append({**base, "device_clock_not_set": True})
        records.append({**base, "measurement_status": ["validated_data", "bit0"]})
        records.append({**base, "device_status": ["low_perfusion", "bit20"]})
        records.append({**base, "pulse_amplitude_index": 4.5})
        records.append(
            {
                **base,
                "fast": {"spo2_pct": 96, "pulse_bpm": 69},
                "slow": {"spo2_pct": 95, "pulse_bpm": 68},
                "timestamp": "2026-01-02T03:04:05",
                "measurement_status": 0x0180,
                "device_status": ["sensor_displaced"],
                "pulse_amplitude_index": None,
                "device_clock_not_set": True,
            }
        )
    records.append({"values": {"spo2_pct": "x", "pulse_bpm": 1}})
    records.append({"values": {"spo2_pct": 98, "pulse_bpm": 72}, "fast": 3})
    records.append({"values": {"spo2_pct": 98, "pulse_bpm": 72}, "timestamp": "yesterday"})
    records.append({"values": []})
    return records


def _encode_outcomes() -> list[Any]:
    out: list[Any] = []
    for encode in (plx_spot_check_encode, plx_continuous_encode):
        for record in _encode_records():
            try:
                out.append(["ok", encode(record).hex()])
            except PayloadError as exc:
                out.append(["payload", str(exc)])
    return out


def _digest(outcomes: list[Any]) -> str:
    text = json.dumps(outcomes, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_plx_decoders_give_exactly_what_they_gave_before_the_refactor() -> None:
    assert _digest(_decode_outcomes()) == DECODE_DIGEST


def test_plx_encoders_give_exactly_what_they_gave_before_the_refactor() -> None:
    assert _digest(_encode_outcomes()) == ENCODE_DIGEST


def test_both_plx_layouts_are_parsed_and_written_by_one_function() -> None:
    """Spot-check and continuous differ only by their layout description."""
    assert plx_spot_check_decode.__code__ is plx_continuous_decode.__code__
    assert plx_spot_check_encode.__code__ is plx_continuous_encode.__code__
    assert plx_spot_check_decode.__code__ is _gatt.plx_decoder(_gatt.PLX_SPOT_CHECK).__code__
    vector = bytes.fromhex("00 62 00 48 00")  # protocols.md: SpO2 98 %, PR 72
    for decode in (plx_spot_check_decode, plx_continuous_decode):
        assert decode(vector) == ({"spo2_pct": 98, "pulse_bpm": 72}, {})


def _other_outcomes() -> list[Any]:
    """The five other characteristics, through the same grid (their shared helpers)."""
    rnd = random.Random(1973)
    out: list[Any] = []
    for uuid, plausible in itertools.product((0x2A35, 0x2A1C, 0x2A37, 0x2A18, 0x2A9D), (0, 1)):
        decode = CHARACTERISTICS[uuid].decode
        for flags in range(256):
            for n in range(32):
                body = _body(rnd, max(0, n - 1), bool(plausible))
                payload = (bytes([flags]) + body)[:n]
                try:
                    values, extra = decode(payload)
                except PayloadError as exc:
                    out.append(["payload", str(exc)])
                except (struct.error, IndexError):
                    out.append(["short"])
                else:
                    out.append(["ok", values, extra])
    return out


def test_the_other_characteristics_decode_exactly_as_before() -> None:
    assert _digest(_other_outcomes()) == OTHERS_DIGEST
