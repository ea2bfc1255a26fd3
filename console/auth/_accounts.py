"""The account vocabulary: who acts (a session or the local operator), errors, ids, roles.

Shared by the parts of the account service (logins, administration, signing keys) and
by its callers; no database access here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from console.auth._sessions import AuthError, Role, Session
from console.records import LOCAL_ROLE, local_actor, local_terminal

Outcome = Literal["success", "failure", "denied"]
#: Consecutive failures (per account or terminal) that open a security incident.
BURST_FAILURES = 5
USER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
OPERATOR_ROLE = LOCAL_ROLE


class AccountError(ValueError):
    """Bad account request (unknown role, bad id, duplicate …): message is user-facing."""


class AccountExistsError(AccountError):
    """A user id is unique per person: this one is taken."""


class UnknownAccountError(AccountError):
    """No account has this user id."""


class AuthenticationFailedError(AuthError):
    """Login refused. The message is the same whichever factor failed."""

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackoffError(AuthenticationFailedError):
    """Too many recent failures for this account or terminal: wait ``retry_after_s``."""


@dataclass(frozen=True)
class LocalOperator:
    """The command-line operator (see the module docstring)."""

    os_user: str
    terminal: str = "cli"

    @classmethod
    def current(cls) -> LocalOperator:
        """The OS user running this process, on this host's controlling terminal.

        Same actor and terminal spelling as the records store's own local events
        (``local:<os-user>``, ``<host>/<tty>``), so the trail reads consistently.
        """
        return cls(local_actor().removeprefix("local:"), local_terminal())

    @property
    def user_id(self) -> str:
        return f"local:{self.os_user}"

    @property
    def role_label(self) -> str:
        return OPERATOR_ROLE


Actor = Session | LocalOperator


@dataclass(frozen=True)
class Enrolment:
    """What a new (or reset) TOTP enrolment shows once: the otpauth URI for the QR code."""

    user_id: str
    otpauth_uri: str = field(repr=False)


@dataclass(frozen=True)
class AccountInfo:
    """An account as listed to administrators (no secrets)."""

    user_id: str
    roles: frozenset[Role]
    site: str | None
    disabled: bool
    totp_enrolled: bool
    created_at: str
    key_id: str | None


def iso(t: datetime) -> str:
    return t.isoformat()


def token_hash(token: str) -> bytes:
    """Sessions are stored by the hash of their token, never the token itself."""
    return hashlib.sha256(token.encode("ascii")).digest()


def validate_user_id(user_id: str) -> str:
    """Normalise (strip, lower-case) and check a user id.

    Raises:
        AccountError: not 2–64 characters of ``a-z 0-9 . _ -`` starting with a letter or digit.
    """
    uid = user_id.strip().lower()
    if not USER_ID.fullmatch(uid):
        raise AccountError(
            f"invalid user id {user_id!r}: 2 to 64 characters among a-z, 0-9, '.', '_', '-', "
            "starting with a letter or a digit"
        )
    return uid


def parse_roles(roles: Iterable[str]) -> frozenset[Role]:
    """Check role names against the five of the contract.

    Raises:
        AccountError: an unknown role (the message lists the valid ones).
    """
    out: set[Role] = set()
    for name in roles:
        try:
            out.add(Role(name.strip()))
        except ValueError:
            raise AccountError(
                f"unknown role {name!r}: one of {', '.join(r.value for r in Role)}"
            ) from None
    return frozenset(out)
