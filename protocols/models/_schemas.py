"""JSON Schemas of the published models (``samu protocols schema`` prints them)."""

from __future__ import annotations

from typing import Any, Final

from protocols.models._bilan import BilanBody
from protocols.models._device import BirthBody, DeathBody, StatusBody, VitalsBody
from protocols.models._envelope import BODY_MODELS, Envelope
from protocols.models._implant import ImplantBody
from protocols.models._observation import Observation
from protocols.models._types import Message
from protocols.models._video import VideoBody

__all__ = ["SCHEMA_DIALECT", "json_schemas"]

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_PUBLISHED: Final[tuple[type[Message], ...]] = (
    Envelope,
    VitalsBody,
    StatusBody,
    BirthBody,
    DeathBody,
    ImplantBody,
    VideoBody,
    BilanBody,
    Observation,
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """Model name → JSON Schema (draft 2020-12) of every published message model.

    Each schema is self-contained (its sub-models under ``$defs``) and states its dialect,
    so it can be handed to any validator or another vendor as is. Generated from the
    models, never written by hand, so the two cannot drift; cross-field rules (unit per
    LOINC code, body per kind) are included as ``if``/``then`` clauses. Rules that a
    schema cannot express (plausibility across observations, INS control key) are only
    in the models.
    """
    out: dict[str, dict[str, Any]] = {}
    for model in _PUBLISHED:
        schema = model.model_json_schema(mode="validation")
        if model is Envelope:
            _add_body_rules(schema)
        out[model.__name__] = {"$schema": SCHEMA_DIALECT, **schema}
    return out


def _add_body_rules(schema: dict[str, Any]) -> None:
    """Publish the kind → body rule (``if kind == X then body is XBody``)."""
    defs = schema["$defs"]
    rules = []
    for kind, body_model in BODY_MODELS.items():
        name = body_model.__name__
        if name not in defs:  # pragma: no cover - pydantic naming changed
            raise RuntimeError(f"JSON Schema of Envelope lacks $defs/{name}")
        rules.append(
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"properties": {"body": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    schema["allOf"] = rules
