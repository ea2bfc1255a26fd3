"""Installation settings: TOML file (``--config``) overridden by ``SAMU_*`` variables.

This is the one module that reads the environment. Everything else — the store, the
key loaders, the MQTT transport, the triage engine — receives values from a
:class:`Settings` through the composition root (:func:`console.services.open_services`),
so a newcomer finds in one file every knob an installation has, and tests hand values
in instead of patching ``os.environ``.

Nested sections map to ``SAMU_<SECTION>__<FIELD>`` (e.g. ``SAMU_TRIAGE__FRESHNESS_S``).
Secrets are settings of type :class:`~pydantic.SecretStr` (never printed, never in a
``repr``) read only from the environment or the file: ``SAMU_MASTER_KEY`` and
``SAMU_MQTT_PASSWORD``. A person's own password and TOTP code for automation
(``SAMU_PASSWORD``, ``SAMU_TOTP``) are not installation settings; :func:`automation_secret`
reads them, still here.

Errors are reported in one line (:class:`SettingsError`), the same way by every command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = [
    "AUTOMATION_VARIABLES",
    "ConsoleSettings",
    "HubSettings",
    "MqttSettings",
    "Settings",
    "SettingsError",
    "TriageSettings",
    "automation_secret",
    "load_settings",
]

#: Variables a script sets to answer a command's own prompts (never arguments).
AUTOMATION_VARIABLES = ("SAMU_PASSWORD", "SAMU_TOTP")


class SettingsError(ValueError):
    """The configuration file or a ``SAMU_*`` variable is unusable (one-line message)."""


class TriageSettings(BaseModel):
    """Triage engine knobs (the policy itself is data: ``console/triage/policy_v1.toml``)."""

    # A mistyped key or an infinite number is an error, said (not a default, silently).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    freshness_s: float = Field(
        900.0, gt=0, description="Values older than this are stale and leave the score."
    )
    tick_s: float = Field(
        1.0, gt=0, le=60, description="Seconds between two triage passes over all open cases."
    )
    deescalate_after_s: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="A suggested priority lowers only after the lower one held this long "
        "(escalation is immediate): the board does not flap on noisy readings.",
    )


class ConsoleSettings(BaseModel):
    """The Textual apps."""

    # A mistyped key or an infinite number is an error, said (not a default, silently).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    lock_idle_s: float = Field(
        60.0, gt=0, description="Idle time before the privacy lock hides identities."
    )
    totp_after_lock_s: float = Field(
        900.0, gt=0, description="A lock longer than this also asks for a TOTP code to unmask."
    )
    reauth_h: float = Field(
        12.0, gt=0, le=24, description="Sessions must re-authenticate after this many hours."
    )
    theme: str = Field("textual-dark", description="Textual theme name.")
    bindings: dict[str, str] = Field(
        default_factory=dict,
        description="Key remapping: binding id -> key(s), e.g. {'board.open' = 'o,enter'}.",
    )


class MqttSettings(BaseModel):
    """The broker. ``mqtt://[user@]host:port`` or ``mqtts://…``; the password is the
    top-level ``mqtt_password`` setting (``SAMU_MQTT_PASSWORD``), never in the URL."""

    # A mistyped key or an infinite number is an error, said (not a default, silently).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    url: str | None = Field(
        None,
        description="Broker URL; none = embedded/in-process. Audit checkpoints are "
        "published there (retained) when set.",
    )
    checkpoint_topic: str | None = Field(
        None,
        description="Retained topic of the signed audit checkpoints "
        "(default: samu/v1/centre/<centre>/audit/checkpoint).",
    )
    client_id: str | None = Field(
        None,
        description="Fixed MQTT client id of the hub (persistent session); "
        "default samu-hub-<centre>.",
    )
    session_expiry_s: int = Field(
        7200, ge=3600, description="MQTT v5 session expiry: a hub restart within it loses nothing."
    )

    @field_validator("checkpoint_topic")
    @classmethod
    def _concrete_topic(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or any(c in value for c in "+#\0") or len(value.encode()) > 65535
        ):
            raise ValueError("checkpoint_topic must be a concrete MQTT topic (no + or #)")
        return value


class HubSettings(BaseModel):
    """``samu hub``: ingest and its limits."""

    # A mistyped key or an infinite number is an error, said (not a default, silently).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    batch_max: int = Field(500, ge=1, description="Largest batch of messages committed at once.")
    batch_wait_s: float = Field(
        0.05, gt=0, le=5, description="Longest wait to fill a batch before committing."
    )


class Settings(BaseSettings):
    """Every setting has a safe default so ``make demo`` needs no configuration."""

    model_config = SettingsConfigDict(env_prefix="SAMU_", env_nested_delimiter="__", extra="forbid")

    db: Path = Field(Path("samu.db"), description="SQLite database file (default ./samu.db).")
    checkpoint_dir: Path | None = Field(
        None, description="Outside audit checkpoints (default: <db>.checkpoints/)."
    )
    master_key: SecretStr | None = Field(
        None,
        description="Installation master key, base64 of 32 bytes (SAMU_MASTER_KEY); prefer "
        "master_key_file on another volume.",
    )
    master_key_file: Path | None = Field(
        None, description="Installation master key file (default: <db>.key)."
    )
    installation_key_file: Path | None = Field(
        None, description="Key signing the audit checkpoints (default: <db>.installation-key)."
    )
    mqtt_password: SecretStr | None = Field(
        None, description="Password of the broker user named in mqtt.url (SAMU_MQTT_PASSWORD)."
    )
    mqtt_ca_file: Path | None = Field(
        None, description="CA certificates trusted for mqtts:// (default: the system store)."
    )
    centre: str = Field(
        "samu075",
        pattern=r"^samu[0-9]{3}$",
        description="SAMU centre id used in Hub Santé case ids.",
    )
    log_format: Literal["json", "text"] = Field("json", description="samu hub log lines.")
    hub_sante_dir: Path | None = Field(
        None,
        description="Directory of the official Hub Santé files (nomenclatures/HubSante.*.csv); "
        "default: the reference copy beside a checkout (../shared/reference/hub-sante).",
    )
    triage: TriageSettings = Field(default_factory=TriageSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    hub: HubSettings = Field(default_factory=HubSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _CONFIG_PATH.get("path")
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def master_key_text(self) -> str | None:
        """The ``master_key`` secret's text, for the key loader (never logged)."""
        return self.master_key.get_secret_value() if self.master_key is not None else None

    def mqtt_password_text(self) -> str | None:
        """The broker password, for the transport (never logged)."""
        return self.mqtt_password.get_secret_value() if self.mqtt_password is not None else None


_CONFIG_PATH: dict[str, Path | None] = {"path": None}


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        variable = "SAMU_" + "__".join(str(p).upper() for p in err["loc"]) if err["loc"] else ""
        where = f"{loc} ({variable})" if variable else loc
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings: explicit overrides > ``SAMU_*`` environment > TOML file > defaults.

    Raises:
        SettingsError: the named file is missing, unreadable or not TOML, or a value (from
            the file or the environment) is wrong; the message is one line naming the
            setting and its variable.
    """
    path = Path(config) if config is not None else None
    if path is not None:
        if not path.exists():
            raise SettingsError(f"configuration file not found: {path}")
        if not path.is_file():
            raise SettingsError(f"configuration file is not a file: {path}")
        try:
            import tomllib

            tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read configuration file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from None
    _CONFIG_PATH["path"] = path
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(f"configuration: {_one_line(exc)}") from None
    except ValueError as exc:  # pydantic-settings' own parse errors (e.g. bad JSON in env)
        raise SettingsError(f"configuration: {str(exc).splitlines()[0]}") from None
    finally:
        _CONFIG_PATH["path"] = None


def automation_secret(name: str) -> str | None:
    """``SAMU_PASSWORD`` / ``SAMU_TOTP``: a person's answer to a prompt, set by a script.

    Raises:
        ValueError: ``name`` is not one of :data:`AUTOMATION_VARIABLES`.
    """
    if name not in AUTOMATION_VARIABLES:
        raise ValueError(f"{name} is not an automation variable")
    return os.environ.get(name)
