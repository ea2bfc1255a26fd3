"""Shared field types and the base model every message part derives from.

Validation is strict (``strict=True``): ``"42"`` is not an integer, ``true`` is not a
number, ``1`` is not a string. Messages come from machines; a lax coercion would hide a
sender's bug until it mattered. Two deliberate exceptions, both still narrow:

* timestamps and dates arrive as JSON strings, so they are parsed from text — but only
  from the RFC 3339 shapes below, never from numbers (pydantic's lax mode would read
  ``1700000000`` as a Unix time) and never without an explicit UTC offset;
* arrays arrive as JSON lists and are stored as tuples so that frozen models stay
  immutable all the way down.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    WithJsonSchema,
)

from protocols.vocab import ID_PATTERN

__all__ = [
    "TIMESTAMP_PATTERN",
    "V1",
    "Date",
    "Id",
    "Message",
    "Seq",
    "ShortText",
    "Text",
    "Timestamp",
    "Tuple",
    "format_timestamp",
]

T = TypeVar("T")


class Message(BaseModel):
    """Base of every message part: unknown fields refused, immutable, strict types."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        str_max_length=16384,
        validate_default=False,
    )


Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
"""``[A-Za-z0-9._-]{1,64}``: site, device, session, centre, patient references."""

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
"""A name, a model string, a label."""

Text = Annotated[str, Field(min_length=1, max_length=4000)]
"""Free text a person typed (complaint, history); bounded so one field cannot fill the
64 KiB envelope by itself."""

Tuple = Annotated[tuple[T, ...], Strict(False)]
"""A JSON array, stored as a tuple. Only the container is lax (list → tuple); the items
keep the strictness of their own type."""

TIMESTAMP_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
"""RFC 3339 date-time with a mandatory offset (``Z`` or ``±hh:mm``), up to microseconds."""

_TIMESTAMP_RE: Final = re.compile(TIMESTAMP_PATTERN)
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _timestamp_input(value: Any) -> Any:
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("timestamp has no UTC offset (naive timestamps are refused)")
        if offset % timedelta(minutes=1):
            raise ValueError("UTC offset must be whole minutes")
        return value
    if isinstance(value, str):
        if _TIMESTAMP_RE.fullmatch(value) is None:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", value):
                raise ValueError(
                    f"timestamp {value!r} has no UTC offset (naive timestamps are refused)"
                )
            raise ValueError(
                f"timestamp {value!r} is not RFC 3339 with an offset, "
                "e.g. 2026-11-23T17:02:03.120+01:00"
            )
        return value
    raise ValueError("timestamp must be an RFC 3339 string with an offset")


def format_timestamp(value: datetime) -> str:
    """Write a timestamp as on the wire: milliseconds unless finer digits are needed.

    ``2026-11-23T17:02:03.120+01:00`` (the contract's example) round-trips unchanged; a
    microsecond-precision time keeps all six digits so nothing is lost.
    """
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec)


Timestamp = Annotated[
    AwareDatetime,
    Strict(False),
    BeforeValidator(_timestamp_input),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""An instant with an explicit UTC offset; naive times are refused."""


def _date_input(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("a date is expected, not a date-time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        return value
    raise ValueError("date must be written YYYY-MM-DD")


Date = Annotated[
    date,
    Strict(False),
    BeforeValidator(_date_input),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
]
"""A calendar date ``YYYY-MM-DD`` (birth dates)."""


Seq = Annotated[int, Field(ge=0, le=2**53 - 1)]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("version must be the integer 1, not a boolean")
    return value


V1 = Annotated[Literal[1], BeforeValidator(_not_bool)]
"""Version 1 of an envelope or body (``true``, equal to 1 in Python, is refused)."""
"""Per-device sequence number: non-negative and at most 2**53 − 1, the largest integer
every JSON implementation reads exactly (RFC 7493, I-JSON)."""
