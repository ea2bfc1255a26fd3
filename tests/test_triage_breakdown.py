"""The Triage tab's score breakdown: recomputed from the observations a result rests on,
it must give back the recorded NEWS2 on every case of a replayed scenario."""

from __future__ import annotations

from pathlib import Path

import scenarios
from console.cases import triage_breakdown
from console.services import open_services
from console.settings import Settings
from console.triage import default_policy


def test_every_breakdown_adds_up_to_the_recorded_total(tmp_path: Path) -> None:
    policy = default_policy()
    with open_services(Settings(db=tmp_path / "samu.db"), create=True) as services:
        scenarios.InprocReplay(scenarios.load_scenario("demo-garde"), services).run()
        cases = [c for (c,) in services.store.fetchall("SELECT case_id FROM cases")]
        scored = 0
        for case_id in cases:
            b = triage_breakdown(services.store, case_id, policy)
            if b is None or b.news2 is None:
                continue
            scored += 1
            assert b.note is None, (case_id, b.note)
            assert sum(p.points for p in b.parameters) == b.news2, (case_id, b)
            assert b.policy_sha256 == policy.sha256
            assert any(p.value is not None for p in b.parameters)
        assert scored >= 2
        other = policy.model_copy(update={"sha256": "0" * 64})
        b = triage_breakdown(services.store, cases[0], other)
        assert b is not None and b.parameters == () and "not the one loaded" in (b.note or "")
