"""The triage policy: a versioned TOML file shipped with the package, validated here.

The policy is data so that a physician, an auditor or a court can read exactly which
bands and rules produced a suggestion. Every result carries the policy ``version`` and the
SHA-256 of the file's exact bytes (not of a re-serialisation: the bytes are what was
reviewed and signed off), so the file can be found and re-run years later.

Validation is strict (unknown keys rejected, bands ascending, one level per rule,
every implant condition assigned to exactly one level) because a typo in a policy
must stop the console at start-up rather than silently under-triage.
"""

from __future__ import annotations

import hashlib
import tomllib
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: ACVPU codes in the order the engine stores them (index = code in the arrays).
CONSCIOUSNESS_LEVELS: tuple[str, ...] = ("A", "C", "V", "P", "U")

ConsciousnessCode = Literal["A", "C", "V", "P", "U"]
PriorityCode = Literal["P0", "P1", "P2", "P3", "NR"]

DEFAULT_POLICY_FILE = "policy_v1.toml"


class ImplantCondition(StrEnum):
    """Implant situations the policy assigns a priority to (derived by ``_implant``)."""

    SHOCK_UNSUCCESSFUL = "shock_unsuccessful"
    THERAPIES_EXHAUSTED = "therapies_exhausted"
    ELECTRICAL_STORM = "electrical_storm"
    SHOCK_DELIVERED = "shock_delivered"
    VT_VF_RECENT = "vt_vf_recent"
    BATTERY_EOS = "battery_eos"
    LEAD_IMPEDANCE_OUT_OF_RANGE = "lead_impedance_out_of_range"
    BATTERY_RRT = "battery_rrt"
    ATP_DELIVERED = "atp_delivered"
    AF_BURDEN_OVER_THRESHOLD = "af_burden_over_threshold"
    TRANSMITTER_DISCONNECTED = "transmitter_disconnected"
    OTHER_IMPLANT_ALERT = "other_implant_alert"


class BilanCondition(StrEnum):
    """Bilan situations the policy may assign a priority to."""

    CARDIAC_ARREST = "cardiac_arrest"
    FAST_POSITIVE = "fast_positive"
    CHEST_PAIN = "chest_pain"
    NEW_CONFUSION = "new_confusion"
    FALL = "fall"
    PAIN = "pain"
    ANY_BILAN = "any_bilan"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bands(_Strict):
    """One NEWS2 chart row: inclusive upper bounds and the score of each band."""

    upper: tuple[float, ...] = Field(min_length=1)
    scores: tuple[int, ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.scores) != len(self.upper) + 1:
            raise ValueError("scores must have one more entry than upper (last band is open)")
        if any(b <= a for a, b in zip(self.upper, self.upper[1:], strict=False)):
            raise ValueError("upper bounds must be strictly ascending")
        if self.upper[0] < 0:
            raise ValueError("band bounds are non-negative (no vital sign is negative)")
        if any(not 0 <= s <= 3 for s in self.scores):
            raise ValueError("NEWS2 band scores are 0 to 3")
        return self


class OxygenScores(_Strict):
    air: int = Field(ge=0, le=3)
    oxygen: int = Field(ge=0, le=3)


class ConsciousnessScores(_Strict):
    A: int = Field(ge=0, le=3)
    C: int = Field(ge=0, le=3)
    V: int = Field(ge=0, le=3)
    P: int = Field(ge=0, le=3)
    U: int = Field(ge=0, le=3)

    def by_code(self) -> tuple[int, ...]:
        """Scores indexed like ``CONSCIOUSNESS_LEVELS``."""
        return (self.A, self.C, self.V, self.P, self.U)


class RiskThresholds(_Strict):
    high: int = Field(ge=1)
    medium: int = Field(ge=1)
    single_parameter: int = Field(ge=1, le=3)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.medium >= self.high:
            raise ValueError("risk.medium must be below risk.high")
        return self


class News2Policy(_Strict):
    resp_rate: Bands
    spo2_scale1: Bands
    spo2_scale2_air: Bands
    spo2_scale2_oxygen: Bands
    systolic_bp: Bands
    heart_rate: Bands
    temperature: Bands
    oxygen: OxygenScores
    consciousness: ConsciousnessScores
    risk: RiskThresholds


class Rounding(_Strict):
    """Decimals kept (half up) before banding, per parameter.

    Pinned to the chart's resolution (whole numbers; temperature to 0.1 °C): the arrays
    store values in exactly these units, so a policy asking for another resolution is a
    different engine, not a different policy.
    """

    resp_rate: Literal[0]
    spo2: Literal[0]
    systolic_bp: Literal[0]
    heart_rate: Literal[0]
    temperature: Literal[1]


class QsofaPolicy(_Strict):
    resp_rate_min: float
    systolic_bp_max: float
    altered_consciousness: tuple[ConsciousnessCode, ...]


class ShockIndexPolicy(_Strict):
    decimals: int = Field(ge=0, le=4)


class FreshnessPolicy(_Strict):
    window_s: float = Field(gt=0)


class DeteriorationPolicy(_Strict):
    window_s: float = Field(gt=0)
    rise: int = Field(ge=1)


class BilanPolicy(_Strict):
    new_confusion_is_c: bool


class ImplantPolicy(_Strict):
    pacing_impedance_ohm: tuple[float, float]
    high_voltage_impedance_ohm: tuple[float, float]
    storm_episodes: int = Field(ge=1)
    storm_shocks: int = Field(ge=1)
    storm_window_s: float = Field(gt=0)
    recent_episode_s: float = Field(gt=0)


class PriorityLevel(_Strict):
    """The rules of one priority level; an absent rule does not apply at this level."""

    news2_min: int | None = Field(None, ge=0)
    consciousness: tuple[ConsciousnessCode, ...] = ()
    single_parameter_score: int | None = Field(None, ge=1, le=3)
    qsofa_min: int | None = Field(None, ge=0, le=3)
    shock_index_min: float | None = Field(None, gt=0)
    implant: tuple[ImplantCondition, ...] = ()
    bilan: tuple[BilanCondition, ...] = ()
    deterioration: bool = False

    def is_empty(self) -> bool:
        return self == PriorityLevel()


class NoDataPolicy(_Strict):
    engine: PriorityCode
    vital_signs_only: Literal["P0", "P1", "P2", "P3"]


class PriorityPolicy(_Strict):
    P0: PriorityLevel
    P1: PriorityLevel
    P2: PriorityLevel
    P3: PriorityLevel = PriorityLevel()
    no_data: NoDataPolicy

    def levels(self) -> tuple[PriorityLevel, PriorityLevel, PriorityLevel]:
        """The three levels that carry rules, most urgent first (index = P-number)."""
        return (self.P0, self.P1, self.P2)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.P3.is_empty():
            raise ValueError("P3 is 'NEWS2 0 and nothing above': it carries no rule")
        levels = self.levels()
        for key in (
            "single_parameter_score",
            "qsofa_min",
            "shock_index_min",
        ):
            if sum(getattr(lv, key) is not None for lv in levels) > 1:
                raise ValueError(f"rule {key} appears at more than one priority level")
        if sum(lv.deterioration for lv in levels) > 1:
            raise ValueError("rule deterioration appears at more than one priority level")
        mins = [lv.news2_min for lv in levels if lv.news2_min is not None]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("news2_min must decrease strictly from P0 to P2")
        for field in ("consciousness", "implant", "bilan"):
            seen: list[str] = [c for lv in levels for c in getattr(lv, field)]
            if len(seen) != len(set(seen)):
                raise ValueError(f"a {field} condition appears at more than one priority level")
        assigned = {c for lv in levels for c in lv.implant}
        missing = [c.value for c in ImplantCondition if c not in assigned]
        if missing:
            raise ValueError(f"implant conditions without a priority level: {', '.join(missing)}")
        return self


class PolicyHeader(_Strict):
    name: str
    version: str = Field(min_length=1)
    title: str = ""
    references: tuple[str, ...] = ()


class Policy(_Strict):
    """A validated triage policy and the SHA-256 of the bytes it was read from."""

    policy: PolicyHeader
    rounding: Rounding
    news2: News2Policy
    qsofa: QsofaPolicy
    shock_index: ShockIndexPolicy
    freshness: FreshnessPolicy
    deterioration: DeteriorationPolicy
    bilan: BilanPolicy
    implant: ImplantPolicy
    priority: PriorityPolicy
    sha256: str = Field("", description="SHA-256 (hex) of the policy file's bytes.")

    @property
    def version(self) -> str:
        return self.policy.version

    @classmethod
    def from_bytes(cls, data: bytes) -> Policy:
        """Parse and validate TOML bytes; the digest is of these exact bytes.

        Raises:
            tomllib.TOMLDecodeError: not TOML.
            pydantic.ValidationError: a rule or band is wrong (the message names it).
        """
        doc = tomllib.loads(data.decode("utf-8"))
        if "sha256" in doc:
            raise ValueError("sha256 is computed from the file's bytes; it cannot be declared")
        return cls.model_validate({**doc, "sha256": hashlib.sha256(data).hexdigest()})

    @classmethod
    def from_file(cls, path: Path | str) -> Policy:
        return cls.from_bytes(Path(path).read_bytes())


def default_policy_bytes() -> bytes:
    """The shipped policy file's bytes (package data)."""
    return resources.files("console.triage").joinpath(DEFAULT_POLICY_FILE).read_bytes()


@cache
def default_policy() -> Policy:
    """The shipped policy, parsed once per process."""
    return Policy.from_bytes(default_policy_bytes())


def load_policy(path: Path | str | None = None) -> Policy:
    """The policy at ``path``, or the shipped one when ``path`` is None."""
    return default_policy() if path is None else Policy.from_file(path)
