"""Captures ``samu replay`` must refuse, or replay only with what they need: another format
version (named, with the versions this code reads, whatever the header's layout), a
capture given where a scenario is expected, and signed MQTT traffic without ``--keys``."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import scenarios
from console.cli import EXIT_OK, EXIT_USAGE, main
from console.ingest import Sender, write_key_file
from protocols import Envelope, Observation, VitalsBody, seal_envelope
from protocols.topics import topic_for

T0 = 1_790_000_000.0
SITE, DEVICE = "ehpad-lilas", "ox-1"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digested(lines: list[bytes]) -> bytes:
    """``lines`` (header and records) with a trailer whose digest and count are right."""
    body = b"".join(line + b"\n" for line in lines)
    trailer = {"end": True, "records": len(lines) - 1, "sha256": hashlib.sha256(body).hexdigest()}
    return body + json.dumps(trailer, separators=(",", ":")).encode() + b"\n"


RECORD = json.dumps(
    {
        "t": 0.5,
        "src": "mqtt",
        "topic": "samu/v1/site/x/device/d/vitals",
        "payload": "e30=",
        "qos": 1,
        "retain": False,
        "properties": {},
    },
    separators=(",", ":"),
).encode()


def header(**fields: object) -> bytes:
    return json.dumps(fields).encode()  # json.dumps' spacing, not the writer's


@pytest.mark.parametrize(
    ("data", "found"),
    [
        # A newer samu's capture, digest and all: the version is the one thing wrong.
        (
            digested(
                [
                    header(
                        format="samu-capture",
                        version=2,
                        started=T0,
                        sources=[{"id": "mqtt", "kind": "mqtt"}],
                    ),
                    RECORD,
                ]
            ),
            "format version 2",
        ),
        # Its header laid out otherwise (version first, spaces): still ours, still refused.
        (
            digested([header(version=2, format="samu-capture", started=T0, sources=[])]),
            "format version 2",
        ),
        # Another version may have another trailer (here none): the version is said first.
        (header(version=3, format="samu-capture") + b"\n" + RECORD + b"\n", "format version 3"),
        (digested([header(format="samu-capture", started=T0, sources=[])]), "no format version"),
        (
            digested([header(format="samu-capture", version="1", started=T0, sources=[])]),
            'format version "1"',
        ),
    ],
    ids=["v2-digested", "v2-other-layout", "v3-other-trailer", "no-version", "version-string"],
)
def test_a_capture_of_another_version_is_refused_naming_both_versions(
    data: bytes, found: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "field.cap"
    cap.write_bytes(data)
    code, out, err = run(capsys, "replay", str(cap), "--json")
    assert code == EXIT_USAGE and out == ""
    (line,) = err.strip().splitlines()
    assert str(cap) in line and "unsupported capture" in line and found in line
    assert "reads capture version 1" in line
    assert "TOML" not in line and "digest" not in line


def test_the_supported_version_still_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "v1.cap"
    # The writer's own layout, and the same header re-spaced by another tool: both read.
    for text in (
        {"format": "samu-capture", "version": 1, "started": T0, "sources": []},
        {"version": 1, "sources": [], "started": T0, "format": "samu-capture"},
    ):
        cap.write_bytes(digested([json.dumps(text).encode()]))
        code, out, _ = run(capsys, "replay", str(cap), "--json")
        assert code == EXIT_OK and json.loads(out)["records"] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--scenario", "{cap}", "--duration", "1"],
        [
            "devices",
            "enrol",
            "--db",
            "{tmp}/d.db",
            "--scenario",
            "{cap}",
            "--keys-out",
            "{tmp}/k.json",
        ],
    ],
    ids=["sim", "devices-enrol"],
)
def test_a_capture_given_as_a_scenario_is_named_as_a_capture(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "field.cap"
    cap.write_bytes(digested([header(version=2, format="samu-capture")]))
    code, _, err = run(capsys, *(a.format(cap=cap, tmp=tmp_path) for a in argv))
    assert code == EXIT_USAGE
    (line,) = err.strip().splitlines()
    assert "capture file" in line and f"samu replay {cap}" in line and "TOML" not in line
    assert not (tmp_path / "k.json").exists()


# --- signed MQTT traffic ---------------------------------------------------------------------


def signed_capture(path: Path, key: bytes, n: int = 5) -> None:
    """``n`` vitals envelopes of one sender, MAC-signed under ``key``, as captured."""
    with path.open("xb") as fh:
        w = scenarios.CaptureWriter(fh, [{"id": "mqtt", "kind": "mqtt", "broker": "b"}], T0)
        for i in range(n):
            at = datetime.fromtimestamp(T0 + i, UTC)
            spo2 = Observation(code="59408-5", value=95.0, unit="%", time=at, method="device")
            body = VitalsBody(v=1, patient=None, observations=(spo2,))
            env = Envelope.create(site=SITE, device=DEVICE, seq=i + 1, body=body, sent=at)
            w.mqtt(topic_for(env), seal_envelope(env, key), T0 + i + 0.5)
        w.close()


def key_file(path: Path, key: bytes, device: str = DEVICE) -> Path:
    write_key_file(path, [(Sender(SITE, device, "spo2", "res-01"), key)])
    return path


def test_signed_traffic_without_keys_is_refused_saying_which_file_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = os.urandom(32)
    cap = tmp_path / "signed.cap"
    signed_capture(cap, key)
    code, out, err = run(capsys, "replay", str(cap))
    assert code == EXIT_USAGE and out == ""  # not a report of "0 accepted", not exit 0
    (line,) = err.strip().splitlines()
    assert "5 MQTT message(s)" in line and "cannot be verified" in line
    assert "--keys FILE" in line and "samu sim --keys-out" in line
    assert "samu devices enrol" in line
    # With the keys, the same file replays: every message verified and stored.
    keys = key_file(tmp_path / "keys.json", key)
    code, out, err = run(capsys, "replay", str(cap), "--keys", str(keys), "--json")
    summary = json.loads(out)
    assert code == EXIT_OK and err == ""
    assert summary["accepted"] == 5 and summary["quarantined"] == {}


def test_a_key_file_that_verifies_nothing_is_pointed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "signed.cap"
    signed_capture(cap, os.urandom(32))
    # Same sender, another run's key: every MAC fails.
    stale = key_file(tmp_path / "stale.json", os.urandom(32))
    code, out, err = run(capsys, "replay", str(cap), "--keys", str(stale), "--json")
    assert code == EXIT_OK and json.loads(out)["quarantined"] == {"mac": 5}
    assert "5 message(s) failed the MAC check" in err and str(stale) in err
    # Another sender's key file: the capture's sender is not in it.
    other = key_file(tmp_path / "other.json", os.urandom(32), device="ox-9")
    code, out, err = run(capsys, "replay", str(cap), "--keys", str(other), "--json")
    assert code == EXIT_OK and json.loads(out)["quarantined"] == {"unknown_device": 5}
    assert f"not in {other}" in err and f"{SITE}/{DEVICE}" in err


def test_unsigned_payloads_need_no_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only signed envelopes need keys: garbage is replayed and quarantined as the hub would."""
    cap = tmp_path / "junk.cap"
    with cap.open("xb") as fh:
        w = scenarios.CaptureWriter(fh, [{"id": "mqtt", "kind": "mqtt"}], T0)
        w.mqtt("samu/v1/site/x/device/d/vitals", b"\x00not json", T0 + 0.5)
        w.close()
    code, out, _ = run(capsys, "replay", str(cap), "--json")
    assert code == EXIT_OK and json.loads(out)["quarantined"] == {"json": 1}
