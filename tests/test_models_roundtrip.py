"""Every model round-trips through its wire form, and its JSON Schema accepts what it accepts."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import (
    BODY_MODELS,
    BilanBody,
    BirthBody,
    DeathBody,
    Envelope,
    ImplantBody,
    StatusBody,
    VideoBody,
    VitalsBody,
    canonical_json,
    json_schemas,
    parse_envelope,
)
from protocols.models import Message
from tests.support.strategies import (
    bilan_bodies,
    birth_bodies,
    death_bodies,
    envelopes,
    implant_bodies,
    status_bodies,
    video_bodies,
    vitals_bodies,
)

BODY_STRATEGIES: list[tuple[type[Message], st.SearchStrategy[Message]]] = [
    (VitalsBody, vitals_bodies),
    (StatusBody, status_bodies),
    (BirthBody, birth_bodies),
    (DeathBody, death_bodies),
    (ImplantBody, implant_bodies()),
    (VideoBody, video_bodies()),
    (BilanBody, bilan_bodies),
]

SCHEMAS = json_schemas()
VALIDATORS = {
    name: jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for name, schema in SCHEMAS.items()
}


def test_every_body_kind_has_a_strategy() -> None:
    assert {model for model, _ in BODY_STRATEGIES} == set(BODY_MODELS.values())


@pytest.mark.parametrize(
    ("model", "strategy"), BODY_STRATEGIES, ids=[m.__name__ for m, _ in BODY_STRATEGIES]
)
def test_body_round_trips_through_json(
    model: type[Message], strategy: st.SearchStrategy[Message]
) -> None:
    @given(strategy)
    def check(body: Message) -> None:
        wire = body.model_dump(mode="json", exclude_none=True)
        text = json.dumps(wire, ensure_ascii=False)
        again = model.model_validate(json.loads(text))
        assert again == body
        assert again.model_dump(mode="json", exclude_none=True) == wire
        VALIDATORS[model.__name__].validate(wire)

    check()


@given(envelopes())
def test_envelope_round_trips_through_canonical_bytes(env: Envelope) -> None:
    raw = canonical_json(env.to_wire())
    parsed = parse_envelope(raw)
    assert parsed == env
    assert canonical_json(parsed.to_wire()) == raw  # byte-identical on the second trip


@given(envelopes())
def test_envelope_schema_accepts_valid_envelopes(env: Envelope) -> None:
    VALIDATORS["Envelope"].validate(env.to_wire())


def test_schemas_are_valid_draft_2020_12() -> None:
    assert set(SCHEMAS) >= {"Envelope", *(m.__name__ for m in BODY_MODELS.values())}
    for schema in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(SCHEMAS)  # serialisable as is, for `samu protocols schema`


def test_envelope_schema_ties_body_to_kind() -> None:
    """A vitals envelope carrying a status body passes a plain anyOf; the if/then must not."""
    bad = {
        "v": 1,
        "id": "0b7e7c1e-4d4c-4a55-9b8e-2a1e6f3c9d10",
        "kind": "vitals",
        "site": "s",
        "device": "d",
        "seq": 1,
        "sent": "2026-11-23T17:02:03.120+01:00",
        "body": {"v": 1, "state": "ok"},
    }
    assert not VALIDATORS["Envelope"].is_valid(bad)
    assert VALIDATORS["Envelope"].is_valid({**bad, "kind": "status"})


def test_observation_schema_carries_the_unit_table() -> None:
    obs = {
        "code": "8310-5",
        "value": 37.2,
        "unit": "Cel",
        "time": "2026-11-23T17:02:03+01:00",
        "method": "device",
    }
    v = VALIDATORS["Observation"]
    assert v.is_valid(obs)
    assert not v.is_valid({**obs, "unit": "[degF]"})
    assert not v.is_valid({**obs, "value": 99.0})
    assert not v.is_valid({**obs, "time": "2026-11-23T17:02:03"})
    acvpu = {**obs, "code": "67775-7", "value": "V"}
    del acvpu["unit"]
    assert v.is_valid(acvpu)
    assert v.is_valid({**acvpu, "unit": None})
    assert not v.is_valid({**acvpu, "unit": "{score}"})
    assert not v.is_valid({**acvpu, "value": "X"})
