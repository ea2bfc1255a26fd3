"""The policy is versioned data: shipped TOML, validated strictly, its digest in results."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest
from pydantic import ValidationError

from console.triage import (
    PRIORITY_NAMES,
    Policy,
    TriageInputs,
    VitalsArrays,
    default_policy,
    default_policy_bytes,
    load_policy,
    score_vitals,
    triage,
)

SHIPPED = default_policy_bytes()


def _vitals(**values: object) -> VitalsArrays:
    base: dict[str, object] = {
        "resp_rate": 16,
        "spo2": 98,
        "on_oxygen": 0,
        "systolic_bp": 120,
        "heart_rate": 70,
        "consciousness": "A",
        "temperature": 37.0,
    }
    base.update(values)
    return VitalsArrays.from_values(**{k: [v] for k, v in base.items()})  # type: ignore[arg-type]


def test_shipped_policy_is_package_data_with_version_and_digest() -> None:
    path = resources.files("console.triage").joinpath("policy_v1.toml")
    assert path.read_bytes() == SHIPPED
    policy = default_policy()
    assert policy.version == "1"
    assert policy.sha256 == hashlib.sha256(SHIPPED).hexdigest()
    assert load_policy() is policy


def test_results_carry_policy_version_and_digest() -> None:
    policy = default_policy()
    scores = score_vitals(_vitals(), policy)
    assert (scores.policy_version, scores.policy_sha256) == (policy.version, policy.sha256)
    result = triage(TriageInputs(vitals=_vitals()), policy, now=0.0)
    assert (result.policy_version, result.policy_sha256) == (policy.version, policy.sha256)


def test_digest_is_of_the_exact_bytes() -> None:
    """A comment changes the bytes, hence the digest, though not the rules."""
    edited = SHIPPED + b"\n# reviewed\n"
    policy = Policy.from_bytes(edited)
    assert policy.sha256 == hashlib.sha256(edited).hexdigest() != default_policy().sha256


def test_engine_follows_the_policy_file_not_hard_coded_rules() -> None:
    stricter = SHIPPED.replace(b"[priority.P0]\nnews2_min = 7", b"[priority.P0]\nnews2_min = 8")
    assert stricter != SHIPPED
    policy = Policy.from_bytes(stricter.replace(b'version = "1"', b'version = "1-test"'))
    seven = _vitals(resp_rate=25, heart_rate=115, temperature=39.5)
    assert PRIORITY_NAMES[score_vitals(seven, default_policy()).priority[0]] == "P0"
    assert PRIORITY_NAMES[score_vitals(seven, policy).priority[0]] == "P1"
    assert score_vitals(seven, policy).policy_version == "1-test"


def test_a_changed_band_changes_the_score() -> None:
    changed = SHIPPED.replace(
        b"[news2.resp_rate]\nupper = [8, 11, 20, 24]", b"[news2.resp_rate]\nupper = [8, 11, 19, 24]"
    )
    assert changed != SHIPPED
    policy = Policy.from_bytes(changed)
    assert int(score_vitals(_vitals(resp_rate=20), policy).news2[0]) == 2
    assert int(score_vitals(_vitals(resp_rate=20), default_policy()).news2[0]) == 0


def test_single_parameter_rule_may_differ_from_the_risk_band() -> None:
    text = SHIPPED.replace(b"single_parameter_score = 3", b"single_parameter_score = 2")
    policy = Policy.from_bytes(text)
    two = _vitals(resp_rate=22)  # scores 2, total 2
    assert PRIORITY_NAMES[score_vitals(two, policy).priority[0]] == "P1"
    assert PRIORITY_NAMES[score_vitals(two, default_policy()).priority[0]] == "P2"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"upper = [8, 11, 20, 24]", b"upper = [8, 20, 11, 24]", "ascending"),
        (b"scores = [3, 1, 0, 2, 3]", b"scores = [3, 1, 0, 2]", "one more entry"),
        (b"scores = [3, 1, 0, 2, 3]", b"scores = [3, 1, 0, 2, 4]", "0 to 3"),
        (b"[priority.P3]\n", b"[priority.P3]\nnews2_min = 0\n", "P3"),
        (b'"therapies_exhausted", ', b"", "without a priority level"),
        (b"qsofa_min = 2\n", b"qsofa_min = 2\nbogus = 1\n", "bogus"),
        (b"news2_min = 5", b"news2_min = 9", "decrease"),
        (b"temperature = 1", b"temperature = 2", "temperature"),
        (
            b'[policy]\nname = "samu-triage"',
            b'sha256 = "x"\n[policy]\nname = "samu-triage"',
            "sha256",
        ),
    ],
)
def test_invalid_policies_are_refused(old: bytes, new: bytes, message: str) -> None:
    assert old in SHIPPED
    with pytest.raises((ValidationError, ValueError), match=message):
        Policy.from_bytes(SHIPPED.replace(old, new, 1))
