"""Every library scenario replayed into the real core at --speed max: its expectations
must be met (scenarios.md: `make test` replays the library and fails when one misses)."""

from __future__ import annotations

from pathlib import Path

import pytest

import scenarios
from console.records import Store
from console.services import open_services
from console.settings import Settings

#: The 200-EHPAD load scenario is the replay benchmark's, not a test's (minutes of CPU).
LIBRARY = [p for p in scenarios.library() if p.stem != "load-200-ehpad"]
#: Known misses, each a real finding to fix, not a flaky test (strict: a fix must remove it).
KNOWN: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=KNOWN[p.stem]))
        if p.stem in KNOWN
        else p
        for p in LIBRARY
    ],
    ids=[p.stem for p in LIBRARY],
)
def test_library_scenario_meets_its_expectations(path: Path, tmp_path: Path) -> None:
    scenario = scenarios.load_scenario(path)
    db = tmp_path / "samu.db"
    with open_services(Settings(db=db), create=True) as services:
        result = scenarios.InprocReplay(scenario, services).run()
    with Store.open(db, readonly=True) as store:
        report = scenarios.evaluate(result, store, db)
    missed = [f"[{v.index}] {v.expect.what}: {v.detail}" for v in report.verdicts if not v.met]
    assert report.verdicts and missed == []
