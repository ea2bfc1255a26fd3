"""The hypothesis strategies of tests/support/strategies.py produce valid models."""

from __future__ import annotations

from hypothesis import given

from protocols import Envelope
from tests.support.strategies import envelopes


@given(envelopes())
def test_strategies_produce_valid_envelopes(env: Envelope) -> None:
    """A strategy producing an invalid model would raise here, not pass silently."""
    assert Envelope.model_validate(env.to_wire()) == env
