"""Break-glass: a reason, 15 minutes, flagged in the trail, listed for review."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.auth import Action, Denied, Target
from tests.support.accounts import Env, make_env

OTHER = Target("patient:p-other", site="ehpad-other")


@pytest.fixture
def env(tmp_path) -> Iterator[Env]:
    e = make_env(tmp_path / "samu.db")
    e.add("nurse1", "ide_ehpad", site="ehpad-bellevue")
    e.add("audit1", "auditeur")
    e.add("boss", "admin")
    try:
        yield e
    finally:
        e.store.close()  # type: ignore[attr-defined]


def test_break_glass_opens_for_15_minutes_flagged(env: Env) -> None:
    nurse = env.login("nurse1")
    with pytest.raises(Denied):
        env.accounts.authorize(nurse, Action.CLINICAL_READ, OTHER)
    with pytest.raises(ValueError, match="reason"):
        env.accounts.breakglass.open(nurse, OTHER.ref, "   ")
    grant = env.accounts.breakglass.open(nurse, OTHER.ref, "neighbouring EHPAD, cardiac arrest")
    auth = env.accounts.authorize(nurse, Action.CLINICAL_READ, OTHER)
    assert auth.break_glass and auth.purpose == "break-glass: neighbouring EHPAD, cardiac arrest"
    opened = env.events("breakglass.open")[-1]
    assert opened[6] == "break-glass: neighbouring EHPAD, cardiac arrest" and opened[7] == "success"
    incidents = env.store.db.execute(  # type: ignore[attr-defined]
        "SELECT kind, category, object, status FROM incidents"
    ).fetchall()
    assert incidents == [("security", "break-glass", OTHER.ref, "open")]
    # Read actions only: no writing through the broken glass.
    with pytest.raises(Denied):
        env.accounts.authorize(nurse, Action.IDENTITY_WRITE, OTHER)
    # Another object stays closed.
    with pytest.raises(Denied):
        env.accounts.authorize(nurse, Action.CLINICAL_READ, Target("patient:p-3", site="x"))
    env.clock.advance(minutes=14, seconds=59)
    env.accounts.authorize(nurse, Action.BOARD_VIEW, OTHER)
    env.clock.advance(seconds=1)
    assert env.clock.now == grant.expires_at
    with pytest.raises(Denied):
        env.accounts.authorize(nurse, Action.CLINICAL_READ, OTHER)


def test_non_clinical_roles_cannot_break_the_glass(env: Env) -> None:
    for user in ("audit1", "boss"):
        session = env.login(user)
        with pytest.raises(Denied, match="clinical roles"):
            env.accounts.breakglass.open(session, OTHER.ref, "curious")
        last = env.events("breakglass.open")[-1]
        assert last[1] == user and last[7] == "denied"


def test_grants_listed_for_auditor_review(env: Env) -> None:
    nurse = env.login("nurse1")
    grant = env.accounts.breakglass.open(nurse, OTHER.ref, "night cover")
    assert [g.grant_id for g in env.accounts.breakglass.pending_review()] == [grant.grant_id]
    boss = env.login("boss")
    with pytest.raises(Denied):  # admins do not review others' accesses
        env.accounts.breakglass.mark_reviewed(boss, grant.grant_id, "ok")
    auditor = env.login("audit1")
    env.accounts.breakglass.mark_reviewed(auditor, grant.grant_id, "justified: cardiac arrest")
    assert env.accounts.breakglass.pending_review() == []
    (reviewed,) = env.accounts.breakglass.all_grants()
    assert reviewed.reviewed_by == "audit1"
    assert env.events("breakglass.review")[-1][1] == "audit1"
