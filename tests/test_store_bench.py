"""The store benchmark runs end to end on small sizes (figures come from `make bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.records import verify_trail
from console.records.bench import build_trail, run


def test_bench_reports_figures_and_ratios(tmp_path: Path) -> None:
    result = run(append_events=300, verify_events=2000, batch=100, directory=tmp_path, rounds=2)
    assert result["benchmark"] == "store"
    assert result["verify_events"] == 2000
    for key in (
        "appends_per_s",
        "appends_with_model_per_s",
        "verify_s",
        "appends_ratio",
        "verify_ratio",
    ):
        assert result[key] > 0
    assert result["rounds"] == 2
    # the median of two rounds is their mean (not the fastest or the slowest alone)
    low, high = result["verify_s_range"]
    assert low <= high and result["verify_s"] == pytest.approx((low + high) / 2, abs=1e-3)
    low, high = result["appends_per_s_range"]
    assert low <= high and result["appends_per_s"] == pytest.approx((low + high) / 2, abs=1)
    assert list(tmp_path.iterdir()) == []  # temporary files removed


def test_build_trail_makes_a_verifiable_trail_of_the_requested_size(tmp_path: Path) -> None:
    db = tmp_path / "trail.db"
    build_trail(db, 250)
    report = verify_trail(db)
    assert report.exit_code == 0, report.verdict()
    assert report.events == 250
