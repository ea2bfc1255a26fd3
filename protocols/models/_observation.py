"""A vital-sign observation: LOINC code, value, UCUM unit, time, how it was taken.

The unit is checked against the code, never converted: a thermometer that sends °F or a
glucometer that sends mmol/L has a bug the gateway must fix (protocols.md: "Convert;
never assume"), and a silently converted value would be scored as if nothing happened.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from protocols.models._types import Message, Timestamp
from protocols.vocab import ACVPU, LOINC

__all__ = ["LoincCodeStr", "Observation"]

LoincCodeStr = Literal[
    "9279-1",
    "59408-5",
    "2708-6",
    "8480-6",
    "8462-4",
    "8867-4",
    "8310-5",
    "41653-7",
    "29463-7",
    "67775-7",
]


def _observation_schema(schema: dict[str, Any]) -> None:
    """Add one ``if code == X then unit/value`` rule per LOINC code to the JSON Schema.

    Keeps the published schema as strict as the model: a schema-only consumer (another
    vendor's gateway, a conformance test) sees the same unit and range table.
    """
    rules: list[dict[str, Any]] = []
    for info in LOINC.values():
        if info.numeric:
            then: dict[str, Any] = {
                "properties": {
                    "unit": {"const": info.unit},
                    "value": {"type": "number", "minimum": info.low, "maximum": info.high},
                },
                "required": ["unit"],
            }
        else:
            then = {"properties": {"value": {"enum": list(ACVPU)}, "unit": {"type": "null"}}}
        rules.append(
            {
                "if": {"properties": {"code": {"const": info.code}}, "required": ["code"]},
                "then": then,
            }
        )
    schema["allOf"] = rules


class Observation(Message, json_schema_extra=_observation_schema):
    """One measured or typed value.

    Attributes:
        code: LOINC code (see :data:`protocols.vocab.LOINC`); unknown codes are refused.
        value: a number for quantities; one of ``A C V P U`` for 67775-7.
        unit: the UCUM unit the code requires; absent for 67775-7 (a coded answer has none).
        time: when the value was measured (explicit UTC offset).
        method: ``device`` (read from a device) or ``manual`` (typed by a nurse).
    """

    code: LoincCodeStr
    value: float | str
    unit: str | None = None
    time: Timestamp
    method: Literal["device", "manual"]

    @model_validator(mode="after")
    def _check_unit_and_range(self) -> Observation:
        info = LOINC[self.code]
        if not info.numeric:
            if not isinstance(self.value, str) or self.value not in ACVPU:
                raise ValueError(
                    f"{self.code} ({info.display}) takes one of {', '.join(ACVPU)} "
                    f"(ACVPU code), not {self.value!r}"
                )
            if self.unit is not None:
                raise ValueError(
                    f"{self.code} ({info.display}) is a coded answer and takes no unit, "
                    f"got {self.unit!r}"
                )
            return self
        if isinstance(self.value, str):
            raise ValueError(f"{self.code} ({info.display}) needs a number, got {self.value!r}")
        if self.unit != info.unit:
            raise ValueError(
                f"wrong unit {self.unit!r} for {self.code} ({info.display}): "
                f"expected UCUM {info.unit!r}"
            )
        assert info.low is not None and info.high is not None
        if not info.low <= self.value <= info.high:
            raise ValueError(
                f"{self.value:g} {info.unit} is not plausible for {self.code} ({info.display}): "
                f"accepted {info.low:g}–{info.high:g} {info.unit}. {info.why}"
            )
        return self
