"""Installation settings: TOML file (``--config``) overridden by ``SAMU_*`` variables.

Nested sections map to ``SAMU_<SECTION>__<FIELD>`` (e.g. ``SAMU_TRIAGE__FRESHNESS_S``).
Secrets are never settings: the master key lives in a key file or ``SAMU_MASTER_KEY``,
read by the records package, not logged and not stored here in clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class TriageSettings(BaseModel):
    freshness_s: float = Field(
        900.0, gt=0, description="Values older than this are stale and leave the score."
    )


class ConsoleSettings(BaseModel):
    lock_idle_s: float = Field(
        60.0, gt=0, description="Idle time before the privacy lock hides the screen."
    )
    reauth_h: float = Field(
        12.0, gt=0, description="Sessions must re-authenticate after this many hours."
    )


class MqttSettings(BaseModel):
    """The broker. The password is never a setting: ``SAMU_MQTT_PASSWORD`` (read where it
    is used) goes with ``mqtt://user@host:port``; ``mqtts://`` verifies the broker against
    the system trust store or ``SAMU_MQTT_CA_FILE``."""

    url: str | None = Field(
        None,
        description="mqtt://[user@]host:port or mqtts://… of the broker; none = embedded/"
        "in-process. Audit checkpoints are published there (retained) when set.",
    )
    checkpoint_topic: str | None = Field(
        None,
        description="Retained topic of the signed audit checkpoints "
        "(default: samu/v1/centre/<centre>/audit/checkpoint).",
    )

    @field_validator("checkpoint_topic")
    @classmethod
    def _concrete_topic(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or any(c in value for c in "+#\0") or len(value.encode()) > 65535
        ):
            raise ValueError("checkpoint_topic must be a concrete MQTT topic (no + or #)")
        return value


class Settings(BaseSettings):
    """Every setting has a safe default so ``make demo`` needs no configuration."""

    model_config = SettingsConfigDict(env_prefix="SAMU_", env_nested_delimiter="__", extra="forbid")

    db: Path = Field(Path("samu.db"), description="SQLite database file.")
    checkpoint_dir: Path | None = Field(
        None, description="Outside audit checkpoints (default: <db>.checkpoints/)."
    )
    master_key_file: Path | None = Field(
        None, description="Installation master key file (default: <db>.key)."
    )
    centre: str = Field("samu075", description="SAMU centre id used in Hub Santé case ids.")
    triage: TriageSettings = Field(default_factory=TriageSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)

    _toml_path: Path | None = None

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


_CONFIG_PATH: dict[str, Path | None] = {"path": None}


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings: explicit overrides > ``SAMU_*`` environment > TOML file > defaults.

    Raises:
        FileNotFoundError: the named configuration file does not exist.
        pydantic.ValidationError: a value is wrong; the message names the field.
    """
    path = Path(config) if config is not None else None
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    _CONFIG_PATH["path"] = path
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _CONFIG_PATH["path"] = None
