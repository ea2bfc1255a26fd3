"""``samu triage score|bench``: the command-line contract (design note triage.md)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.triage import OUTPUT_COLUMNS, default_policy, score_csv

HEADER = "id,resp_rate,spo2,spo2_scale,on_oxygen,systolic_bp,heart_rate,consciousness,temperature\n"
GOOD = "p1,20.5,96,1,0,120,80,A,38.05\np2,,,,,,,,\np3,30,85,1,1,85,135,U,34\n"


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parse(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == OUTPUT_COLUMNS
    return list(reader)


def test_score_to_stdout_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["triage", "score", str(write(tmp_path, HEADER + GOOD))], capsys)
    assert code == EXIT_OK, err
    assert out.splitlines()[0] == ",".join(OUTPUT_COLUMNS)
    rows = parse(out)
    assert [r["id"] for r in rows] == ["p1", "p2", "p3"]
    assert rows[0] == {
        "id": "p1",
        "news2": "3",
        "news2_complete": "true",
        "news2_risk": "low",
        "qsofa": "0",
        "shock_index": "0.67",
        "priority": "P2",
        "reasons": "NEWS2 3 (low)",
    }
    assert rows[1]["news2_complete"] == "false"
    assert rows[2]["priority"] == "P0"
    # stdout is the CSV only; stderr names the policy that scored it, and nothing else
    assert err.startswith("samu triage score: 3 row(s) scored with policy 1 (sha256 ")
    assert len(err.splitlines()) == 1


def test_bad_rows_get_error_reasons_the_run_continues_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEADER + (
        "a,abc,96,1,0,120,80,A,37\n"  # unparseable number
        "b,81,96,1,0,120,80,A,37\n"  # respiration rate above 80
        "c,20,101,1,0,120,80,A,37\n"  # SpO2 above 100
        "d,20,96,1,0,301,80,A,37\n"  # systolic above 300
        "e,20,96,1,0,120,-1,A,37\n"  # heart rate below 0
        "f,20,96,1,0,120,80,A,24.9\n"  # temperature below 25
        "g,20,96,1,0,120,80,A,45.1\n"  # temperature above 45
        "h,20,96,3,0,120,80,A,37\n"  # scale other than 1 or 2
        "i,20,96,1,2,120,80,A,37\n"  # on_oxygen other than 0 or 1
        "j,20,96,1,0,120,80,Z,37\n"  # unknown consciousness code
        "k,20,96,1,0,120,80,A,nan\n"  # not a finite number
        "ok,20,96,1,0,120,80,A,37\n"
        "l,20,96\n"  # too few fields
    )
    code, out, err = run(["triage", "score", str(write(tmp_path, text))], capsys)
    assert code == EXIT_CHECK_FAILED
    rows = parse(out)
    assert [r["id"] for r in rows] == [*list("abcdefghijk"), "ok", "l"]
    for row in rows:
        if row["id"] == "ok":
            assert row["priority"] == "P3" and not row["reasons"].startswith("error:")
            continue
        assert row["reasons"].startswith("error:"), row
        scores = [row[c] for c in OUTPUT_COLUMNS if c not in ("id", "reasons")]
        assert scores == [""] * 6, row
    assert "12 of 13" in err


@pytest.mark.parametrize(
    ("value", "ok"),
    [("0", True), ("80", True), ("80.0", True), ("80.4", False), ("-0", True), ("-0.1", False)],
)
def test_range_limits_are_inclusive_on_the_value_as_written(
    value: str, ok: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + f"x,{value},96,1,0,120,80,A,37\n")
    code, out, _ = run(["triage", "score", str(path)], capsys)
    assert code == (EXIT_OK if ok else EXIT_CHECK_FAILED)
    assert parse(out)[0]["reasons"].startswith("error:") is not ok


@pytest.mark.parametrize(
    ("scale", "oxygen", "ok"),
    [("1.0", "0.0", True), ("2.0", "1.0", True), ("1.5", "0", False), ("1", "0.5", False)],
)
def test_codes_written_as_whole_decimals_are_the_same_codes(
    scale: str, oxygen: str, ok: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spreadsheets and pandas write a code column holding an empty cell as 1.0/0.0."""
    path = write(tmp_path, HEADER + f"x,18,90,{scale},{oxygen},120,80,A,37\n")
    code, out, _ = run(["triage", "score", str(path)], capsys)
    assert code == (EXIT_OK if ok else EXIT_CHECK_FAILED)
    row = parse(out)[0]
    assert row["reasons"].startswith("error:") is not ok
    if ok:
        # SpO2 90: scale 1 scores 3; scale 2 on oxygen scores 0 (88-92), plus 2 for oxygen.
        assert row["news2"] == ("3" if scale == "1.0" else "2")


def test_output_file_is_written_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.csv"
    code, out, _ = run(
        ["triage", "score", str(write(tmp_path, HEADER + GOOD)), "-o", str(target)], capsys
    )
    assert code == EXIT_OK
    assert out == ""
    assert [r["id"] for r in parse(target.read_text(encoding="utf-8"))] == ["p1", "p2", "p3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_output_file_untouched_on_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    bad = write(tmp_path, "id,resp_rate\n1,2\n")
    code, _, err = run(["triage", "score", str(bad), "-o", str(target)], capsys)
    assert code == EXIT_USAGE
    assert "spo2" in err
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "header"),
        ("id,resp_rate,spo2\n1,2,3\n", "lacks required column"),
        (HEADER.replace("spo2,", "spo2,spo2,"), "duplicate"),
        (HEADER + "a," + "9" * 200_000 + "\n", "malformed CSV"),
    ],
)
def test_unusable_input_is_a_usage_error(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["triage", "score", str(write(tmp_path, content))], capsys)
    assert code == EXIT_USAGE
    assert message in err


def test_missing_input_file_and_missing_output_dir_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["triage", "score", str(tmp_path / "nope.csv")], capsys)
    assert code == EXIT_USAGE and "not found" in err
    src = write(tmp_path, HEADER + GOOD)
    code, _, err = run(["triage", "score", str(src), "-o", str(tmp_path / "x" / "o.csv")], capsys)
    assert code == EXIT_USAGE and "does not exist" in err


def test_header_columns_may_come_in_any_order_with_extras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "note,temperature,consciousness,heart_rate,systolic_bp,on_oxygen,spo2_scale,spo2,"
        "resp_rate,id\nx,38.05,A,80,120,0,1,96,20.5,p1\n"
    )
    code, out, _ = run(["triage", "score", str(write(tmp_path, text))], capsys)
    assert code == EXIT_OK
    assert parse(out)[0]["news2"] == "3"


def test_bom_blank_lines_and_header_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + "\n" + GOOD + "\n").encode("utf-8"))
    code, out, _ = run(["triage", "score", str(path)], capsys)
    assert code == EXIT_OK
    assert len(parse(out)) == 3
    code, out, _ = run(["triage", "score", str(write(tmp_path, HEADER, "h.csv"))], capsys)
    assert code == EXIT_OK
    assert out == ",".join(OUTPUT_COLUMNS) + "\n"


def test_stdin_and_stdout_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from console.cli._main import entry; entry()",
            "triage",
            "score",
            "-",
        ],
        input=(HEADER + GOOD).encode(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.decode().startswith(",".join(OUTPUT_COLUMNS) + "\n")
    assert b"\r\n" not in proc.stdout
    assert len(parse(proc.stdout.decode())) == 3


def test_invalid_policy_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(tmp_path, "[policy]\nname='x'\n", "policy.toml")
    code, _, err = run(
        ["triage", "score", str(write(tmp_path, HEADER + GOOD)), "--policy", str(policy)], capsys
    )
    assert code == EXIT_USAGE
    assert "invalid policy" in err


def _big_csv(path: Path, rows: int) -> None:
    pattern = [
        "20.5,96,1,0,120,80,A,38.05",
        ",,,,,,,",
        "30,85,1,1,85,135,U,34",
        "abc,96,1,0,120,80,A,37",
        "16,91,2,1,105,95,C,36.5",
    ]
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for i in range(rows):
            fh.write(f"r{i},{pattern[i % len(pattern)]}\n")


def _peak_bytes(src: Path, dst: Path, chunk: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        with src.open(encoding="utf-8", newline="") as fin, dst.open("w", newline="") as fout:
            report = score_csv(fin, fout, default_policy(), chunk_rows=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, report.rows


def test_memory_is_bounded_by_the_chunk_not_the_input(tmp_path: Path) -> None:
    """Ten million rows must run in bounded memory: peak use must not grow with rows."""
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    _big_csv(small, 4_000)
    _big_csv(big, 24_000)
    peak_small, n_small = _peak_bytes(small, tmp_path / "o1.csv", chunk=1_000)
    peak_big, n_big = _peak_bytes(big, tmp_path / "o2.csv", chunk=1_000)
    assert (n_small, n_big) == (4_000, 24_000)
    # Six times the rows, (nearly) the same peak: reading it all would use six times more.
    assert peak_big < peak_small * 1.5 + 500_000, (peak_small, peak_big)
    assert peak_big < 10_000_000
    lines = (tmp_path / "o2.csv").read_text().splitlines()
    assert len(lines) == 24_001
    assert lines[4].endswith("error: resp_rate 'abc' is not a number")


def test_bench_prints_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["triage", "bench", "--rows", "3000", "--oracle-rows", "300"], capsys)
    assert code == EXIT_OK
    result = json.loads(out)
    for key in (
        "benchmark",
        "rows",
        "numpy_rows_per_s",
        "oracle_rows_per_s",
        "speedup_vs_oracle",
        "roofline_rows_per_s",
        "fraction_of_roofline",
    ):
        assert key in result
    assert result["benchmark"] == "triage"
    assert result["rows"] == 3000
    assert result["oracle_rows"] == 300
    assert result["oracle_agrees"] is True
    assert result["fraction_of_roofline"] == pytest.approx(
        result["numpy_rows_per_s"] / result["roofline_rows_per_s"], abs=0.0011
    )
    assert result["speedup_vs_oracle"] == pytest.approx(
        result["numpy_rows_per_s"] / result["oracle_rows_per_s"], rel=0.01
    )


def test_bench_rejects_nonsense_rows(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["triage", "bench", "--rows", "0"])
    assert exc.value.code == EXIT_USAGE
