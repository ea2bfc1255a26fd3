"""``samu idco import FILE`` on what is not an HL7 v2 file, or not quite one.

Binary data, an empty or blank file, UTF-16/UTF-32 text, a byte order mark, text without
an MSH segment, a message that is not text in the character set its MSH-18 declares: each
is quarantined (reason ``hl7``, exit 1, as any bad message) with a detail that says what
it is, never "truncated". A message really cut short is still "truncated", even when the
cut falls inside a multi-byte character. A directory or an unreadable path is a usage
error (exit 2) in one line, never a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.interop import IdcoError, parse_idco, split_messages
from protocols.idco import mllp_frame
from tests.test_interop_idco import _message

DECLARED = "|UNICODE UTF-8|"
MODEL = "|VR\\F\\200\\S\\x|"  # the model "VR|200^x", HL7-escaped


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("storm.hl7", _message("Z1"))
    return out.getvalue()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("idco-input")
    path = tmp / "samu.db"
    argv = ["devices", "enrol", "--db", str(path), "--site", "ehpad-a", "--device", "icd-1",
            "--kind", "icd", "--patient", "res-9", "--key-out", str(tmp / "icd.key")]  # fmt: skip
    assert main(argv) == EXIT_OK
    return path


def _import(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> tuple[int, list[dict], str]:  # type: ignore[type-arg]
    path = tmp_path / "in.hl7"
    path.write_bytes(data)
    capsys.readouterr()
    code = main(["idco", "import", str(path), "--db", str(db)])
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines()], err


def _last_quarantine(db: Path) -> tuple[str, str]:
    conn = sqlite3.connect(db)
    try:
        reason, detail = conn.execute(
            "SELECT reason, detail FROM quarantine ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return reason, detail


BINARY = {
    "random": random.Random(7).randbytes(4096),
    "png": _png(),
    "gzip": gzip.compress(_message("G1").encode()),
    "zip": _zip(),
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00" + bytes(range(256)) * 4,
    "elf": b"\x7fELF\x02\x01\x01\x00" + bytes(64) + random.Random(8).randbytes(512),
}


@pytest.mark.parametrize("kind", sorted(BINARY))
def test_a_binary_file_is_not_hl7_rather_than_truncated(
    kind: str, db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = _import(db, tmp_path, capsys, BINARY[kind])
    assert code == EXIT_CHECK_FAILED, err
    (line,) = lines
    assert line["status"] == "quarantined" and line["reason"] == "hl7"
    assert line["detail"].startswith("not an HL7 v2 message: binary data"), line
    assert "truncated" not in line["detail"]
    assert _last_quarantine(db) == ("hl7", line["detail"])


def test_known_binary_formats_are_named(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, name in (("png", "PNG image"), ("gzip", "gzip"), ("zip", "ZIP archive")):
        _, (line,), _ = _import(db, tmp_path, capsys, BINARY[kind])
        assert name in line["detail"], line


MESSAGE = _message("S1").encode()
SIBLINGS = {
    "empty": (b"", "empty file (0 bytes)"),
    "blank": (b" \r\n\t\n  \n", "only whitespace (8 bytes)"),
    "mllp-blank": (b"\x0b\x1c\r", "only whitespace"),
    "utf-16-le-bom": (MESSAGE.decode().encode("utf-16"), "UTF-16 (little-endian) text (byte"),
    "utf-16-be-bom": (b"\xfe\xff" + MESSAGE.decode().encode("utf-16-be"), "UTF-16 (big-endian)"),
    "utf-16-no-bom": (MESSAGE.decode().encode("utf-16-le"), "UTF-16 (little-endian) text without"),
    "utf-32": (MESSAGE.decode().encode("utf-32"), "UTF-32 (little-endian) text"),
    "text": (b"hello, this is not HL7\nat all", "no MSH segment (it starts with 'hello, this"),
    "latin-1 text": ("pas de message ici, désolé".encode("latin-1"), "not UTF-8 text"),
    "utf-8 bom": (b"\xef\xbb\xbf" + MESSAGE, "a UTF-8 byte order mark (EF BB BF) before MSH"),
}


@pytest.mark.parametrize("kind", list(SIBLINGS))
def test_each_not_quite_hl7_file_gets_its_reason(
    kind: str, db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, expected = SIBLINGS[kind]
    code, lines, err = _import(db, tmp_path, capsys, data)
    assert code == EXIT_CHECK_FAILED and not err
    (line,) = lines
    assert line["status"] == "quarantined" and line["reason"] == "hl7"
    assert expected in line["detail"], line
    assert "truncated" not in line["detail"] and "\n" not in line["detail"]
    assert _last_quarantine(db) == ("hl7", line["detail"])


def test_a_message_not_in_its_declared_encoding(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = _message("E1", **{MODEL: "|Modèle|"}).encode("latin-1")
    assert DECLARED.encode() in latin1
    code, (line,), _ = _import(db, tmp_path, capsys, latin1)
    assert code == EXIT_CHECK_FAILED and line["reason"] == "hl7"
    assert line["control_id"] == "E1"
    assert "not text in the declared encoding (MSH-18 'UNICODE UTF-8')" in line["detail"]
    ascii_only = _message("E2", **{DECLARED: "|ASCII|", MODEL: "|Modèle|"}).encode()
    with pytest.raises(IdcoError, match=r"declared encoding \(MSH-18 'ASCII'\)"):
        parse_idco(ascii_only)
    with pytest.raises(IdcoError, match="cannot read"):
        parse_idco(_message("E3", **{DECLARED: "|EBCDIC|", MODEL: "|Modèle|"}).encode())
    with pytest.raises(IdcoError, match="8-bit text"):
        parse_idco(_message("E4", **{DECLARED: "|UNICODE UTF-16|"}).encode())


def test_a_declared_8859_1_message_is_read_in_8859_1(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _message("L1", **{DECLARED: "|8859/1|", MODEL: "|Modèle|"})
    assert parse_idco(text.encode("latin-1")).body.device.model == "Modèle"
    code, (line,), err = _import(db, tmp_path, capsys, text.encode("latin-1"))
    assert code == EXIT_OK and line["status"] == "accepted", (line, err)
    # Still refused when the bytes are not 8859/1 at all (undefined in 8859/x: 0x81 in 8859/3…)
    with pytest.raises(IdcoError, match="declared encoding"):
        parse_idco(_message("L2", **{DECLARED: "|8859/3|"}).encode() + b"\xa5")


def test_a_nul_inside_a_message_is_binary_data() -> None:
    data = _message("N1", **{MODEL: "|VR\x00200|"}).encode()
    with pytest.raises(IdcoError, match=r"binary data \(a NUL byte at byte \d+\)"):
        parse_idco(data)


def test_a_message_cut_short_is_still_truncated(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = _message("T1", **{MODEL: "|Modèle été|"}).encode()
    cut_at = whole.index("é".encode()) + 1  # inside the two bytes of "é"
    for data in (whole[:700], whole[:cut_at], mllp_frame(_message("T0")) + whole[:cut_at]):
        code, lines, _ = _import(db, tmp_path, capsys, data)
        assert code == EXIT_CHECK_FAILED
        assert lines[-1]["reason"] == "hl7", lines
        assert lines[-1]["detail"] == "truncated message: the file ends inside a segment"
    assert [x["status"] for x in lines] == ["accepted", "quarantined"]


def test_a_bom_before_one_frame_spoils_that_message_only(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [mllp_frame(_message(c)) for c in ("B1", "B2", "B3")]
    frames[1] = frames[1].replace(b"MSH", b"\xef\xbb\xbfMSH", 1)
    assert split_messages(b"".join(frames))[1].startswith(b"\xef\xbb\xbfMSH")
    code, lines, _ = _import(db, tmp_path, capsys, b"".join(frames))
    assert code == EXIT_CHECK_FAILED
    got = [(x["control_id"], x["status"], x.get("reason")) for x in lines]
    assert got == [("B1", "accepted", None), ("B2", "quarantined", "hl7"), ("B3", "accepted", None)]
    assert "byte order mark" in lines[1]["detail"]


def test_split_keeps_the_file_bytes() -> None:
    data = _message("K1", **{DECLARED: "|8859/1|", MODEL: "|Modèle|"}).encode("latin-1")
    (one,) = split_messages(data)
    assert one == data


def test_a_directory_or_unreadable_path_is_one_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regular = tmp_path / "file.hl7"
    regular.write_bytes(MESSAGE)
    paths = {"is a directory": tmp_path, "Not a directory": regular / "x.hl7"}
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.hl7"
        locked.write_bytes(MESSAGE)
        locked.chmod(0)
        paths["Permission denied"] = locked
    for expected, path in paths.items():
        capsys.readouterr()
        code = main(["idco", "import", str(path), "--db", str(db)])
        out, err = capsys.readouterr()
        assert code == EXIT_USAGE and not out, path
        assert expected in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err


def _all(db: Path) -> Iterator[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        yield from conn.execute("SELECT reason, detail FROM quarantine")
    finally:
        conn.close()


def test_nothing_was_ever_reported_as_truncated_but_the_cut_messages(db: Path) -> None:
    truncated = [d for r, d in _all(db) if "truncated" in d]
    assert all(d == "truncated message: the file ends inside a segment" for d in truncated)
