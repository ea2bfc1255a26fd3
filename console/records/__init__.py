"""Authenticated, tamper-evident records in SQLite.

The store (:class:`Store`) owns one SQLite file: WAL, ``synchronous=FULL``, STRICT
tables, named transactional migrations, start-up checks of the protective triggers and
of the schema version. Every access and change appends an :class:`AuditEvent` to a
hash-chained, append-only trail with Ed25519-signed Merkle checkpoints kept inside the
database and outside it (a directory, and a retained MQTT topic published by
:class:`CheckpointPublisher`); :func:`verify_trail` is ``samu audit verify``. Incidents,
backups and the master key live here too; accounts and identities build on top
(``console.auth``, ``console.records.identity``). See ``console/records/README.md`` for
the on-disk layout as outside auditors need it.
"""

from console.records._audit import (
    LOCAL_ROLE,
    AuditContext,
    AuditEvent,
    AuditWriter,
    canonical_json,
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
    checkpoint_topic,
    fetch_retained_checkpoint,
    parse_broker_url,
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
from console.records._keys import derive_key, load_master_key, master_key_path
from console.records._merkle import merkle_root
from console.records._migrate import MIGRATION_SETS
from console.records._store import Store
from console.records._verify import KINDS, Damage, VerifyReport, verify_trail

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
    "canonical_json",
    "checkpoint_dir_for",
    "checkpoint_topic",
    "create_backup",
    "derive_key",
    "fetch_retained_checkpoint",
    "get_incident",
    "installation_key_path",
    "iter_fhir",
    "list_incidents",
    "load_master_key",
    "local_actor",
    "local_terminal",
    "master_key_path",
    "merkle_root",
    "open_incident",
    "parse_broker_url",
    "restore_backup",
    "to_fhir",
    "update_incident",
    "verify_backup",
    "verify_trail",
    "write_fhir_lines",
]
