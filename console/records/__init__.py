"""Authenticated, tamper-evident records in SQLite.

The store (:class:`Store`) owns one SQLite file: WAL, ``synchronous=FULL``, STRICT
tables, named transactional migrations, start-up checks of the protective triggers and
of the schema version. Every access and change appends an :class:`AuditEvent` to a
hash-chained, append-only trail with Ed25519-signed Merkle checkpoints kept inside the
database and outside it (a directory, and a retained MQTT topic published by
:class:`CheckpointPublisher`, hosted by its owner's event loop); :func:`verify_trail`
is ``samu audit verify``. Incidents and backups live here too; keys are
:mod:`console.crypto`'s; accounts and identities build on top
(``console.auth``, ``console.identity``). See ``console/records/README.md`` for
the on-disk layout as outside auditors need it.

The names below are imported on first use (PEP 562): ``samu audit verify`` then loads
the verifier and what it needs, not SQLite-utils, numpy, MQTT or pydantic models it never
touches, which halves the command's start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.records._audit import (
        LOCAL_ROLE,
        AuditContext,
        AuditEvent,
        AuditWriter,
        local_actor,
        local_terminal,
    )
    from console.records._backup import (
        BackupCheck,
        BackupError,
        create_backup,
        restore_backup,
        verify_backup,
    )
    from console.records._checkpoint import (
        Checkpoint,
        OutsideFile,
        checkpoint_dir_for,
        installation_key_path,
    )
    from console.records._checkpoint_mqtt import (
        CheckpointMqttError,
        CheckpointPublisher,
        PublisherStatus,
        check_topic,
        checkpoint_topic,
        fetch_retained_checkpoint,
        publish_checkpoint,
    )
    from console.records._errors import KeyFileError, SchemaError, StoreError
    from console.records._export import iter_fhir, to_fhir, write_fhir_lines
    from console.records._incidents import (
        Incident,
        IncidentError,
        IncidentNote,
        get_incident,
        list_incidents,
        open_incident,
        update_incident,
    )
    from console.records._merkle import merkle_root
    from console.records._migrate import MIGRATION_SETS
    from console.records._store import Store
    from console.records._verify import KINDS, Damage, VerifyReport, verify_trail

_EXPORTS: dict[str, str] = {
    "AuditContext": "console.records._audit",
    "AuditEvent": "console.records._audit",
    "AuditWriter": "console.records._audit",
    "BackupCheck": "console.records._backup",
    "BackupError": "console.records._backup",
    "Checkpoint": "console.records._checkpoint",
    "CheckpointMqttError": "console.records._checkpoint_mqtt",
    "CheckpointPublisher": "console.records._checkpoint_mqtt",
    "Damage": "console.records._verify",
    "Incident": "console.records._incidents",
    "IncidentError": "console.records._incidents",
    "IncidentNote": "console.records._incidents",
    "KINDS": "console.records._verify",
    "KeyFileError": "console.records._errors",
    "LOCAL_ROLE": "console.records._audit",
    "MIGRATION_SETS": "console.records._migrate",
    "OutsideFile": "console.records._checkpoint",
    "PublisherStatus": "console.records._checkpoint_mqtt",
    "SchemaError": "console.records._errors",
    "Store": "console.records._store",
    "StoreError": "console.records._errors",
    "VerifyReport": "console.records._verify",
    "checkpoint_dir_for": "console.records._checkpoint",
    "checkpoint_topic": "console.records._checkpoint_mqtt",
    "create_backup": "console.records._backup",
    "fetch_retained_checkpoint": "console.records._checkpoint_mqtt",
    "get_incident": "console.records._incidents",
    "installation_key_path": "console.records._checkpoint",
    "iter_fhir": "console.records._export",
    "list_incidents": "console.records._incidents",
    "local_actor": "console.records._audit",
    "local_terminal": "console.records._audit",
    "merkle_root": "console.records._merkle",
    "open_incident": "console.records._incidents",
    "check_topic": "console.records._checkpoint_mqtt",
    "publish_checkpoint": "console.records._checkpoint_mqtt",
    "restore_backup": "console.records._backup",
    "to_fhir": "console.records._export",
    "update_incident": "console.records._incidents",
    "verify_backup": "console.records._backup",
    "verify_trail": "console.records._verify",
    "write_fhir_lines": "console.records._export",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "KINDS",
    "LOCAL_ROLE",
    "MIGRATION_SETS",
    "AuditContext",
    "AuditEvent",
    "AuditWriter",
    "BackupCheck",
    "BackupError",
    "Checkpoint",
    "CheckpointMqttError",
    "CheckpointPublisher",
    "Damage",
    "Incident",
    "IncidentError",
    "IncidentNote",
    "KeyFileError",
    "OutsideFile",
    "PublisherStatus",
    "SchemaError",
    "Store",
    "StoreError",
    "VerifyReport",
    "check_topic",
    "checkpoint_dir_for",
    "checkpoint_topic",
    "create_backup",
    "fetch_retained_checkpoint",
    "get_incident",
    "installation_key_path",
    "iter_fhir",
    "list_incidents",
    "local_actor",
    "local_terminal",
    "merkle_root",
    "open_incident",
    "publish_checkpoint",
    "restore_backup",
    "to_fhir",
    "update_incident",
    "verify_backup",
    "verify_trail",
    "write_fhir_lines",
]
