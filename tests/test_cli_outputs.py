"""Output files follow one rule (docs/cli.md, "Output files"): a derived output replaces
FILE atomically (temporary file, fsync, rename: a failure keeps the previous FILE, never a
half-written one), irreplaceable recordings and key files are never overwritten, and
anything holding identities or health data is created mode 0600."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import scenarios
from console.cases import default_dir
from console.cli import EXIT_OK, EXIT_USAGE, main
from console.cli._main import UsageError
from console.cli._output import atomic_output, write_output
from console.services import open_services
from console.settings import Settings
from tests.support.accounts import OP
from tests.support.patients import TRAITS

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = "the previous export\n"


@pytest.fixture(autouse=True)
def umask() -> Iterator[None]:
    """A usual umask, so "the mode open() gives" is 0644 whatever the runner's is."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A database with a case (the stroke scenario) and a registered patient."""
    db = tmp_path_factory.mktemp("outputs") / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("stroke-video-fast"), services).run()
        patient = services.patients.register(OP, TRAITS, site="ehpad-lilas")
        (case,) = services.store.fetchone("SELECT case_id FROM cases")
    return {"db": str(db), "case": case, "patient": patient}


def previous(path: Path) -> Path:
    """``path`` holding a previous output (mode 0644), and a hard link to that file: after
    an atomic replace the link still holds the old bytes; after an in-place rewrite not."""
    path.write_text(PREVIOUS)
    os.chmod(path, 0o644)
    link = path.with_name("hard-link")
    os.link(path, link)
    return link


def leftovers(folder: Path, *expected: str) -> list[str]:
    return sorted(set(p.name for p in folder.iterdir()) - set(expected))


OUTPUTS = {
    "audit-export": (["audit", "export", "--db", "{db}", "--out", "{out}"], True),
    "rights-export": (["rights", "export", "--db", "{db}", "--patient", "{patient}", "-o", "{out}"],
                      True),
    "hub-sante-export": (["hub-sante", "export", "--db", "{db}", "--case", "{case}", "-o", "{out}"],
                         True),
    "fhir-export": (["fhir", "export", "--db", "{db}", "--case", "{case}", "-o", "{out}"], True),
    "triage-score": (["triage", "score", str(ROOT / "docs/examples/vitals.csv"), "-o", "{out}"],
                     True),
    "sim-idco-out": (["sim", "--devices", "icd:mqtt", "--site", "ehpad-x", "--idco-out", "{out}",
                      "--duration", "7200"], True),
    "replay-write": (["replay", "--generate", "2x2", "--duration", "60", "--write", "{out}"],
                     False),
    "replay-junit": (["replay", "--generate", "1x1", "--duration", "30", "--headless", "--junit",
                      "{out}"], False),
}  # fmt: skip


NO_REFERENCE = pytest.mark.skipif(
    not (default_dir() / "schemas").is_dir(), reason="Hub Santé reference files absent"
)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=NO_REFERENCE) if "hub" in n else n for n in OUTPUTS]
)
def test_a_derived_output_replaces_the_previous_file_whole(
    name: str, world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, private = OUTPUTS[name]
    out = tmp_path / "out.file"
    link = previous(out)
    code = main([a.format(out=out, **world) for a in argv])
    assert code in (EXIT_OK, 1), capsys.readouterr().err  # triage: 1 for the sample's bad row
    assert out.read_text() not in ("", PREVIOUS)
    assert link.read_text() == PREVIOUS  # renamed into place, not truncated and rewritten
    assert stat.S_IMODE(out.stat().st_mode) == (0o600 if private else 0o644)
    assert leftovers(tmp_path, "out.file", "hard-link") == []  # no temporary file left


def test_protocol_schemas_replace_each_file_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["protocols", "schema", "--out", str(tmp_path)]) == EXIT_OK
    some = sorted(tmp_path.glob("*.json"))[0]
    link = previous(some)
    assert main(["protocols", "schema", "--out", str(tmp_path)]) == EXIT_OK
    assert json.loads(some.read_text()) and link.read_text() == PREVIOUS
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()]
)
def test_a_failed_export_keeps_the_previous_file(
    failure: BaseException,
    world: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The disk fills (or Ctrl-C comes) half-way through the trail: the last good export
    is still there, whole, and nothing half-written is left beside it."""
    import console.records

    def half_then_fail(conn: Any, out: Any, *args: Any) -> tuple[int, int, int]:
        out.write('{"resourceType": "AuditEvent"')
        out.flush()
        raise failure

    monkeypatch.setattr(console.records, "write_fhir_lines", half_then_fail)
    out = tmp_path / "trail.jsonl"
    previous(out)
    code = main(["audit", "export", "--db", world["db"], "--out", str(out)])
    assert code == (130 if isinstance(failure, KeyboardInterrupt) else EXIT_USAGE)
    if isinstance(failure, OSError):
        assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == PREVIOUS
    assert leftovers(tmp_path, "trail.jsonl", "hard-link") == []


def test_an_output_written_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(PREVIOUS)
    (tmp_path / "alias.json").symlink_to(real)
    write_output(tmp_path / "alias.json", "new\n", option="-o", private=True)
    assert (tmp_path / "alias.json").is_symlink() and real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_a_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    """``-o /dev/stdout`` on a pipe, or a named pipe: no previous file to keep, nothing to
    rename over; the bytes go straight to the reader."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, b"streamed\n", option="-o", private=True)
    reader.join(timeout=10)
    assert got == [b"streamed\n"] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert leftovers(tmp_path, "pipe") == []


def test_an_error_inside_the_block_discards_the_new_content(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    out.write_text(PREVIOUS)
    with (
        pytest.raises(ValueError, match="invalid"),
        atomic_output(out, option="-o", private=False) as fh,
    ):
        fh.write("half")
        raise ValueError("invalid export")
    assert out.read_text() == PREVIOUS and leftovers(tmp_path, "report.txt") == []
    with pytest.raises(UsageError, match="no such directory"):
        write_output(tmp_path / "no" / "x.txt", "x", option="-o", private=False)


# --- irreplaceable: never overwritten --------------------------------------------------------


def test_key_files_are_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": []}\n')
    hl7 = tmp_path / "out.hl7"
    argv = ["sim", "--devices", "icd:mqtt", "--site", "ehpad-x", "--idco-out", str(hl7),
            "--duration", "3600", "--keys-out", str(keys)]  # fmt: skip
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--keys-out" in err and "never overwritten" in err
    assert keys.read_text() == '{"keys": []}\n' and not hl7.exists()  # refused before running
    argv = ["devices", "enrol", "--db", str(tmp_path / "d.db"), "--scenario", "icd-shock-storm",
            "--keys-out", str(keys)]  # fmt: skip
    assert main(argv) == EXIT_USAGE and "never overwritten" in capsys.readouterr().err
    fresh = tmp_path / "fresh.json"
    assert main([*argv[:-1], str(fresh)]) == EXIT_OK
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_capture_is_never_overwritten_and_is_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        cap = tmp_path / "field.cap"
        argv = ["capture", "--out", str(cap), "--serial", f"{port}:sbf1", "--seconds", "0.3"]
        assert main(argv) == EXIT_OK
        assert stat.S_IMODE(cap.stat().st_mode) == 0o600  # vitals, bilans: health data
        assert scenarios.read_capture(cap).records == []
        before = cap.read_bytes()
        assert main(argv) == EXIT_USAGE
        assert "never overwritten" in capsys.readouterr().err and cap.read_bytes() == before
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("command", [["hub-sante", "validate"], ["idco", "import", "--db", "x.db"]])
def test_an_input_that_never_ends_is_refused_not_read_forever(
    command: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """/dev/zero says its size is 0 and never ends: the input is read up to its limit,
    not by trusting the size (a pipe, <(cat file), says 0 too and must still work)."""
    args = [a if a != "x.db" else str(tmp_path / "s.db") for a in command]
    assert main([*args, "/dev/zero"]) == EXIT_USAGE
    assert "more than" in capsys.readouterr().err
