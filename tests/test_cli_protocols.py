"""The ``samu protocols decode|encode|schema`` contract (protocols.md 1.3).

The contract itself (stdout lines, the stderr summary, exit codes) is checked through
the real ``samu`` executable in a subprocess, as a user sees it; the many round trips
run the same handlers in-process (``samu`` start-up costs about a second here).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from protocols.codecs import get_codec

_SAMU = shutil.which("samu", path=str(Path(sys.executable).parent))
SAMU = [_SAMU] if _SAMU else [sys.executable, "-c", "from console.cli._main import entry; entry()"]

MASIMO = (
    b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=072 PI=20.00% SPCO=01.0% SPMET=00.5% "
    b"DESAT=01 PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820\r\n"
)


def samu(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*SAMU, *args], input=stdin, capture_output=True, timeout=60, check=False)


def samu_inproc(
    monkeypatch: pytest.MonkeyPatch, *args: str, stdin: bytes = b""
) -> tuple[int, bytes, str]:
    """Run ``samu`` in this process with binary stdin/stdout: (exit code, stdout, stderr)."""
    out, err = io.BytesIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    fake_out = io.TextIOWrapper(out, write_through=True)
    monkeypatch.setattr(sys, "stdout", fake_out)
    monkeypatch.setattr(sys, "stderr", err)
    code = main(list(args))
    fake_out.flush()
    return code, out.getvalue(), err.getvalue()


def lines(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.decode().splitlines()]


def test_decode_sbf1_vectors_from_a_file(tmp_path: Path) -> None:
    codec = get_codec("sbf1")
    good = codec.encode(
        {"kind": "spo2", "values": {"spo2_pct": 98, "pulse_bpm": 72}, "seq": 3, "device_time": 9}
    )
    bad = bytearray(good)
    bad[5] ^= 0xFF
    capture = tmp_path / "capture.bin"
    capture.write_bytes(good + bytes(bad) + good)
    result = samu("protocols", "decode", "--format", "sbf1", str(capture))
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert out[0]["kind"] == "spo2"
    assert out[0]["values"] == {"spo2_pct": 98, "pulse_bpm": 72}
    assert (out[0]["offset"], out[0]["seq"], out[0]["device_time"]) == (0, 3, 9)
    assert out[1]["error"] == "crc"
    assert out[1]["offset"] == len(good)
    assert out[2]["offset"] == 2 * len(good)
    assert result.stderr.decode().strip().splitlines()[-1] == "decoded 2, errors 1"


@pytest.mark.parametrize(
    ("fmt", "data", "values"),
    [
        ("masimo-ascii1", MASIMO, {"spo2_pct": 98, "pulse_bpm": 72}),
        ("nonin-df8", bytes([0x80, 72, 98, 0]), {"spo2_pct": 98, "pulse_bpm": 72}),
        ("contec-cms50d", bytes.fromhex("853C044862"), {"spo2_pct": 98, "pulse_bpm": 72}),
    ],
)
def test_decode_device_formats_from_stdin(fmt: str, data: bytes, values: dict[str, int]) -> None:
    result = samu("protocols", "decode", "--format", fmt, "-", stdin=data + data)
    assert result.returncode == 0
    out = lines(result.stdout)
    assert [o["values"] for o in out] == [values, values]
    assert [o["offset"] for o in out] == [0, len(data)]
    assert result.stderr.decode().strip() == "decoded 2, errors 0"


def test_decode_exits_0_on_garbage_and_counts_errors() -> None:
    result = samu("protocols", "decode", "--format", "nonin-df8", stdin=b"\x01\x02\x03" + b"\x85")
    assert result.returncode == 0
    out = lines(result.stdout)
    assert [(o["error"], o["offset"]) for o in out] == [("sync", 0), ("truncated", 3)]
    assert result.stderr.decode().strip() == "decoded 0, errors 2"


def test_decode_empty_input() -> None:
    result = samu("protocols", "decode", "--format", "sbf1")
    assert (result.returncode, result.stdout) == (0, b"")
    assert result.stderr.decode().strip() == "decoded 0, errors 0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "bogus", "-"], "unknown format 'bogus'"),
        (["--format", "sbf1", "/no/such/capture.bin"], "no such file: /no/such/capture.bin"),
    ],
)
def test_decode_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = samu("protocols", "decode", *args)
    assert result.returncode == 2
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert result.stdout == b""


def test_decode_requires_a_format() -> None:
    assert samu("protocols", "decode").returncode == 2


@pytest.mark.parametrize("fmt", ["sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d"])
def test_encode_then_decode_round_trip(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    all_records: dict[str, list[dict[str, Any]]] = {
        "sbf1": [
            {
                "kind": "hello",
                "values": {"battery_pct": 80},
                "model": "M",
                "serial": "S",
                "firmware": "1.0.2",
            },
            {
                "kind": "bp",
                "values": {
                    "systolic_mmhg": 120,
                    "diastolic_mmhg": 80,
                    "map_mmhg": 93,
                    "pulse_bpm": 72,
                },
                "seq": 1,
            },
            {"kind": "weight", "values": {"weight_kg": 70.0}, "seq": 2},
        ],
        "masimo-ascii1": [{"values": {"spo2_pct": 97, "pulse_bpm": 61}, "serial": "42"}],
        "nonin-df8": [{"values": {"spo2_pct": None, "pulse_bpm": 88}}],
        "contec-cms50d": [{"values": {"spo2_pct": 93, "pulse_bpm": 130}, "pleth": 33}],
    }
    records = all_records[fmt]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    code, encoded, err = samu_inproc(monkeypatch, "protocols", "encode", "--format", fmt, str(src))
    assert code == 0, err
    assert encoded == b"".join(get_codec(fmt).encode(r) for r in records)
    code, decoded, err = samu_inproc(
        monkeypatch, "protocols", "decode", "--format", fmt, stdin=encoded
    )
    assert code == 0
    assert err == f"decoded {len(records)}, errors 0\n"
    assert [o["values"] for o in lines(decoded)] == [r["values"] for r in records]
    # decode | encode reproduces the bytes.
    _, again, _ = samu_inproc(monkeypatch, "protocols", "encode", "--format", fmt, stdin=decoded)
    assert again == encoded


def test_decode_encode_replays_bad_frames_byte_for_byte() -> None:
    data = get_codec("sbf1").encode({"kind": "spo2", "values": {"spo2_pct": 91, "pulse_bpm": 101}})
    data = b"\x05\x01\x02\x00" + data
    decoded = samu("protocols", "decode", "--format", "sbf1", stdin=data)
    assert [o.get("error") for o in lines(decoded.stdout)] == ["cobs", None]
    assert samu("protocols", "encode", "--format", "sbf1", stdin=decoded.stdout).stdout == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"kind": "spo2", "values": {"spo2_pct": 98, "pulse_bpm": 72}}\nnot json\n',
            "line 2: not JSON",
        ),
        ('\n{"kind": "spo2", "values": {"spo2_pct": "x"}}\n', "line 2: spo2_pct"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
    ],
)
def test_encode_bad_line_names_its_number_and_exits_2(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = samu_inproc(
        monkeypatch, "protocols", "encode", "--format", "sbf1", stdin=text.encode()
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_schema_prints_and_writes_the_models_schemas(tmp_path: Path) -> None:
    from protocols.models import json_schemas

    expected = json_schemas()
    printed = samu("protocols", "schema")
    assert printed.returncode == 0
    assert json.loads(printed.stdout) == json.loads(json.dumps(expected))
    out = tmp_path / "schemas"
    written = samu("protocols", "schema", "--out", str(out))
    assert written.returncode == 0
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(expected)
    for name, schema in expected.items():
        assert json.loads((out / f"{name}.json").read_text()) == json.loads(json.dumps(schema))


def test_schema_calls_protocols_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The handler writes exactly what ``protocols.models.json_schemas()`` returns."""
    fake = {"Thing": {"type": "object", "title": "Thing"}}
    monkeypatch.setattr("protocols.models.json_schemas", lambda: fake)
    assert main(["protocols", "schema", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "Thing.json").read_text()) == fake["Thing"]
    assert main(["protocols", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == fake


def test_help_lists_the_formats() -> None:
    result = samu("protocols", "decode", "--help")
    assert result.returncode == 0
    assert b"sbf1,masimo-ascii1,nonin-df8,contec-cms50d" in result.stdout
