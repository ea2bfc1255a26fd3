"""Accounts, two-factor authentication and habilitations.

Every caller (TUI, CLI, hub) goes through :class:`AccountService`: it logs people in
(password + TOTP, back-off, 12 h sessions), manages accounts, and authorises each action
against the habilitation matrix (:data:`MATRIX`), auditing refusals. Pure pieces (the
password policy, TOTP step matching, back-off maths, the matrix) are exported too so
other layers and tests can use them without a database.
"""

from console.auth._accounts import (
    AccountError,
    AccountExistsError,
    AccountInfo,
    Actor,
    AuthenticationFailedError,
    BackoffError,
    Enrolment,
    LocalOperator,
    UnknownAccountError,
    parse_roles,
    validate_user_id,
)
from console.auth._authenticator import (
    Authenticator,
    AuthOutcome,
    PasswordTotpAuthenticator,
)
from console.auth._backoff import BackoffPolicy, BackoffState
from console.auth._breakglass import BREAK_GLASS_DURATION, BreakGlass, Grant
from console.auth._habilitations import (
    BREAK_GLASS_ACTIONS,
    CLINICAL_ROLES,
    MATRIX,
    Action,
    Authorization,
    Denied,
    MatrixRow,
    Scope,
    Target,
    allowed_role,
    require,
    scope_of,
)
from console.auth._passwords import (
    MIN_LENGTH,
    PasswordPolicyError,
    check_password_policy,
    hash_password,
    verify_password,
)
from console.auth._service import AccountService
from console.auth._sessions import (
    REAUTH_AFTER,
    ROLES,
    AuthError,
    Clock,
    Role,
    Session,
    SessionExpiredError,
    system_clock,
)
from console.auth._totp import code_at, match_step, new_secret, provisioning_uri

__all__ = [
    "BREAK_GLASS_ACTIONS",
    "BREAK_GLASS_DURATION",
    "CLINICAL_ROLES",
    "MATRIX",
    "MIN_LENGTH",
    "REAUTH_AFTER",
    "ROLES",
    "AccountError",
    "AccountExistsError",
    "AccountInfo",
    "AccountService",
    "Action",
    "Actor",
    "AuthError",
    "AuthOutcome",
    "AuthenticationFailedError",
    "Authenticator",
    "Authorization",
    "BackoffError",
    "BackoffPolicy",
    "BackoffState",
    "BreakGlass",
    "Clock",
    "Denied",
    "Enrolment",
    "Grant",
    "LocalOperator",
    "MatrixRow",
    "PasswordPolicyError",
    "PasswordTotpAuthenticator",
    "Role",
    "Scope",
    "Session",
    "SessionExpiredError",
    "Target",
    "UnknownAccountError",
    "allowed_role",
    "check_password_policy",
    "code_at",
    "hash_password",
    "match_step",
    "new_secret",
    "parse_roles",
    "provisioning_uri",
    "require",
    "scope_of",
    "system_clock",
    "validate_user_id",
    "verify_password",
]
