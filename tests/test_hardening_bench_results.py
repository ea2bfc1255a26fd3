"""``make bench`` keeps its history in bench/results/ without leaving untracked files in
the work tree: the folder's results are ignored by git, its README (which says where
results go and how to keep one) is not."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from console.bench import _runner

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git work tree"
)


def ignored(path: str) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def test_results_written_by_the_runner_are_ignored_by_git(tmp_path: Path) -> None:
    assert ignored("bench/results/2099-12-31.jsonl")
    assert ignored("bench/results/any-other-output.json")


def test_the_folder_keeps_a_readme_saying_where_results_go() -> None:
    readme = ROOT / "bench" / "results" / "README.md"
    assert readme.is_file()
    assert not ignored("bench/results/README.md")
    assert "samu bench" in readme.read_text(encoding="utf-8")


def test_the_runner_explains_the_choice_and_still_appends_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ".gitignore" in (_runner.__doc__ or "")
    monkeypatch.setitem(_runner.BENCHMARKS, "tiny", "tests.test_hardening_bench_results:_tiny")
    (result,) = _runner.run_all(["tiny"], tmp_path / "results")
    (path,) = (tmp_path / "results").glob("*.jsonl")
    assert json.loads(path.read_text().splitlines()[0])["benchmark"] == result["benchmark"]


def _tiny() -> dict[str, object]:
    return {"benchmark": "tiny", "value": 1}


def test_a_benchmark_that_fails_loses_no_earlier_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(_runner.BENCHMARKS, "tiny", "tests.test_hardening_bench_results:_tiny")
    monkeypatch.setitem(_runner.BENCHMARKS, "boom", "tests.test_hardening_bench_results:_boom")
    with pytest.raises(RuntimeError):
        _runner.run_all(["tiny", "boom"], tmp_path)
    (path,) = tmp_path.glob("*.jsonl")
    assert [json.loads(x)["benchmark"] for x in path.read_text().splitlines()] == ["tiny"]


def _boom() -> dict[str, object]:
    raise RuntimeError("benchmark failed")
