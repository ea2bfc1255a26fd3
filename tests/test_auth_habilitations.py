"""The habilitation matrix, enforced in the service layer, every refusal audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.auth import (
    MATRIX,
    Action,
    Denied,
    LocalOperator,
    Role,
    Scope,
    Target,
    scope_of,
)
from tests.support.accounts import Env, make_env

# The design note's table, transcribed independently of the code (records-security.md).
DESIGN_TABLE = {
    "see board (priority, scores, masked identity)": ("yes", "yes", "own site", "no", "no"),
    "see identities and clinical detail": ("yes", "yes", "own residents", "no", "no"),
    "take a régulation decision, sign a compte rendu": ("yes", "no", "no", "no", "no"),
    "create a case, record video consent": ("yes", "yes", "no", "no", "no"),
    "send a bilan": ("no", "no", "yes", "no", "no"),
    "read the audit trail and incidents": ("no", "no", "no", "yes", "own actions"),
    "manage accounts, devices and keys": ("no", "no", "no", "no", "yes"),
}
COLUMNS = ("regulateur", "arm", "ide_ehpad", "auditeur", "admin")
SITE = "ehpad-bellevue"


def test_matrix_data_is_the_design_note_table() -> None:
    assert {row.label: tuple(row.cells[Role(c)].value for c in COLUMNS) for row in MATRIX} == (
        DESIGN_TABLE
    )
    assert tuple(r.value for r in Role) == COLUMNS
    listed = [a for row in MATRIX for a in row.actions]
    assert len(listed) == len(set(listed))  # each action in exactly one row


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, dict]]:
    env = make_env(tmp_path_factory.mktemp("matrix") / "samu.db")
    sessions = {}
    for role in COLUMNS:
        env.add(f"u-{role}", role, site=SITE if role == "ide_ehpad" else None)
        sessions[role] = env.login(f"u-{role}")
    try:
        yield env, sessions
    finally:
        env.store.close()  # type: ignore[attr-defined]


CASES = [(role, action) for role in COLUMNS for action in Action]


def _target(role: str, action: Action, *, inside: bool) -> Target:
    """An object inside (or outside) the role's scope for scoped cells."""
    return Target(
        f"patient:p-{role}-{action.value}",
        site=SITE if inside else "ehpad-other",
        owner=f"u-{role}" if inside else "someone-else",
    )


@pytest.mark.parametrize(("role", "action"), CASES, ids=[f"{r}-{a.value}" for r, a in CASES])
def test_every_role_refused_outside_its_column_and_each_refusal_audited(
    world: tuple[Env, dict], role: str, action: Action
) -> None:
    env, sessions = world
    session = sessions[role]
    scope = scope_of(Role(role), action)
    before = env.events()
    outside = _target(role, action, inside=False)
    if scope is Scope.YES:
        auth = env.accounts.authorize(session, action, outside)
        assert auth.role == role and auth.purpose == "normal"
        assert env.events() == before  # an allowed check appends nothing by itself
        return
    with pytest.raises(Denied) as exc:
        env.accounts.authorize(session, action, outside)
    new = env.events()[len(before) :]
    assert len(new) == 1
    seq, actor, event_role, terminal, act, obj, purpose, outcome, _ = new[0]
    assert (actor, event_role, act, obj, outcome, purpose) == (
        f"u-{role}",
        role,
        action.value,
        outside.ref,
        "denied",
        "normal",
    )
    assert terminal == "t1" and exc.value.audit_seq == seq
    if scope is not Scope.NO:  # own site / own residents / own actions: inside is allowed
        assert (
            env.accounts.authorize(session, action, _target(role, action, inside=True)).role == role
        )


def test_ide_ehpad_object_without_site_is_refused(world: tuple[Env, dict]) -> None:
    env, sessions = world
    with pytest.raises(Denied):
        env.accounts.authorize(sessions["ide_ehpad"], Action.CLINICAL_READ, "patient:nosite")


def test_several_roles_union_and_role_recorded(tmp_path) -> None:
    env = make_env(tmp_path / "samu.db")
    env.add("drboth", "regulateur", "auditeur")
    session = env.login("drboth")
    assert env.accounts.authorize(session, Action.DECISION_TAKE, "case:1").role == "regulateur"
    assert env.accounts.authorize(session, Action.AUDIT_READ, "audit").role == "auditeur"
    with pytest.raises(Denied):
        env.accounts.authorize(session, Action.ACCOUNTS_MANAGE, "user:x")
    assert env.events()[-1][2] == "auditeur+regulateur"
    env.store.close()  # type: ignore[attr-defined]


def test_local_operator_is_outside_the_matrix(world: tuple[Env, dict]) -> None:
    env, _ = world
    auth = env.accounts.authorize(LocalOperator("root"), Action.RIGHTS_EXPORT, "patient:1")
    assert auth.role == "local-operator"
