"""``samu audit|backup|incidents``: the audit trail, backups and incidents.

* ``samu audit verify --db PATH [--checkpoint-dir DIR] [--mqtt URL] [--json]`` — exit 0
  intact, 1 damaged (first bad seq and kind), 2 unusable; read-only and not itself
  audited (see ``console.records._verify``). With a broker (``--mqtt`` or
  ``SAMU_MQTT__URL``) the retained checkpoint is judged like an outside file; a broker
  named with ``--mqtt`` that cannot be read makes the result unusable, a configured one
  only adds a note.
* ``samu audit export [--since SEQ] [--until SEQ] [--out FILE]`` — FHIR R4 AuditEvent
  JSON lines; the export is audited. ``--out`` replaces FILE atomically, mode 0600
  (docs/cli.md, "Output files"): a failed export keeps the previous file.
* ``samu audit checkpoint [--mqtt URL [--replace-retained]]`` — sign and publish a
  checkpoint now (directory, and retained topic when a broker is given or configured;
  exit 1 when the broker did not take it).
* ``samu backup create --to DIR`` / ``verify BACKUP`` / ``restore BACKUP [--force]``;
  ``create`` and ``restore`` take ``--mqtt URL`` too: ``restore`` supersedes the retained
  checkpoint as it sets the checkpoint directory aside (audited).
* ``samu incidents list|show|add|update`` — security and technical incidents.

MQTT options: ``--mqtt URL`` (``mqtt://[user@]host:port`` or ``mqtts://…``; default
``SAMU_MQTT__URL``), password only from ``SAMU_MQTT_PASSWORD``, CA file
``SAMU_MQTT_CA_FILE``; ``--mqtt-topic`` (default ``SAMU_MQTT__CHECKPOINT_TOPIC`` or
``samu/v1/centre/<SAMU_CENTRE>/audit/checkpoint``).

Every command that touches the database runs as the local operator and is audited with
actor ``local:<os-user>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli._context import broker_of, db_path, services_of, settings_of
from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from console.cli._output import atomic_output, check_output

if TYPE_CHECKING:
    from console.records import AuditContext, Checkpoint, Store
    from transport import BrokerConfig

    _Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``audit``, ``backup`` and ``incidents`` command groups."""
    _register_audit(sub, common)
    _register_backup(sub, common)
    _register_incidents(sub, common)


def _checkpoint_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="outside checkpoint directory (default: $SAMU_CHECKPOINT_DIR or <db>.checkpoints/)",
    )


def _mqtt_options(p: argparse.ArgumentParser, *, timeout: float = 10.0) -> None:
    p.add_argument(
        "--mqtt",
        metavar="URL",
        help="broker holding the retained audit checkpoint: mqtt://[user@]host:port or "
        "mqtts://… (password from $SAMU_MQTT_PASSWORD, CA from $SAMU_MQTT_CA_FILE; "
        "default $SAMU_MQTT__URL)",
    )
    p.add_argument(
        "--mqtt-topic",
        metavar="TOPIC",
        help="retained checkpoint topic (default samu/v1/centre/<centre>/audit/checkpoint)",
    )
    p.add_argument(
        "--mqtt-timeout",
        type=float,
        default=timeout,
        metavar="SECONDS",
        help=f"how long to wait for the broker (default {timeout:g})",
    )


def _register_audit(sub: _Sub, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser(
        "audit", parents=[common], help="verify, export or checkpoint the audit trail"
    )
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    p = actions.add_parser(
        "verify",
        parents=[common],
        help="check the trail: exit 0 intact, 1 damaged (first bad seq and kind), 2 unusable",
        description=(
            "Verify the audit trail read-only: SQLite integrity check, sequence continuity, "
            "leaf and chain hashes, checkpoint signatures and Merkle roots, outside "
            "checkpoints. Prints one verdict line: 'intact: ...', 'damaged: <kind> at seq "
            "<n>' (kind: edited, deleted, reordered, truncated, rolled back, bad signature) "
            "or 'unusable: ...'."
        ),
    )
    _checkpoint_dir_option(p)
    _mqtt_options(p)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(handler=_audit_verify)

    p = actions.add_parser(
        "export", parents=[common], help="export the trail as FHIR R4 AuditEvent JSON lines"
    )
    p.add_argument("--since", type=int, default=1, metavar="SEQ", help="first seq (default 1)")
    p.add_argument("--until", type=int, default=None, metavar="SEQ", help="last seq (default: end)")
    p.add_argument(
        "--out", type=Path, metavar="FILE", help="write to FILE (replaced whole, mode 0600)"
    )
    p.set_defaults(handler=_audit_export)

    p = actions.add_parser("checkpoint", parents=[common], help="sign and publish a checkpoint now")
    _checkpoint_dir_option(p)
    _mqtt_options(p)
    p.add_argument(
        "--replace-retained",
        action="store_true",
        help="publish even over a retained checkpoint this database does not hold (after a "
        "legitimate restore; the replaced checkpoint is recorded in the trail)",
    )
    p.add_argument("--json", action="store_true", help="print the checkpoint as JSON")
    p.set_defaults(handler=_audit_checkpoint)


def _register_backup(sub: _Sub, common: argparse.ArgumentParser) -> None:
    backup = sub.add_parser(
        "backup", parents=[common], help="encrypted online backups (create, verify, restore)"
    )
    actions = backup.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    p = actions.add_parser("create", parents=[common], help="write an encrypted backup into DIR")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="destination directory")
    _mqtt_options(p, timeout=3.0)
    p.set_defaults(handler=_backup_create)
    p = actions.add_parser(
        "verify", parents=[common], help="check a backup (manifest, hashes, decryption, trail)"
    )
    p.add_argument("backup", type=Path, metavar="BACKUP", help="a samu-backup-* directory")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_backup_verify)
    p = actions.add_parser(
        "restore", parents=[common], help="verify BACKUP, then restore it to --db"
    )
    p.add_argument("backup", type=Path, metavar="BACKUP", help="a samu-backup-* directory")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing database (kept aside, not deleted)",
    )
    _mqtt_options(p)
    p.set_defaults(handler=_backup_restore)


def _register_incidents(sub: _Sub, common: argparse.ArgumentParser) -> None:
    incidents = sub.add_parser(
        "incidents", parents=[common], help="security and technical incidents"
    )
    actions = incidents.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", parents=[common], help="list incidents, newest first")
    p.add_argument("--status", choices=("open", "acknowledged", "closed"))
    p.add_argument("--kind", choices=("security", "technical"))
    p.add_argument("--json", action="store_true", help="JSON lines, with notes")
    p.set_defaults(handler=_incidents_list)
    p = actions.add_parser("show", parents=[common], help="one incident and its follow-up")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_incidents_show)
    p = actions.add_parser("add", parents=[common], help="record a new incident (status open)")
    p.add_argument("--kind", choices=("security", "technical"), required=True)
    p.add_argument(
        "--category",
        required=True,
        help="e.g. failed-login-burst, break-glass, verify-failure, mac-failure, "
        "device-disconnect, video-failure, broker-loss, other",
    )
    p.add_argument("--title", required=True, help="short description (no patient identity)")
    p.add_argument("--severity", choices=("low", "medium", "high", "critical"), default="medium")
    p.add_argument("--object", help="related record id, e.g. device:spo2-12")
    p.add_argument("--note", help="first follow-up note")
    p.set_defaults(handler=_incidents_add)
    p = actions.add_parser("update", parents=[common], help="change status and/or add a note")
    p.add_argument("id", type=int)
    p.add_argument("--status", choices=("open", "acknowledged", "closed"))
    p.add_argument("--note", help="follow-up note (required to close or reopen)")
    p.set_defaults(handler=_incidents_update)


# --- helpers -------------------------------------------------------------------------------


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    """The store of an existing database (the composition root checks the path)."""
    with services_of(args) as services:
        yield services.store


@dataclass(frozen=True)
class _MqttTarget:
    broker: BrokerConfig
    topic: str
    timeout: float
    explicit: bool  # named on the command line (not only configured)

    @property
    def display(self) -> str:
        return self.broker.display


def _mqtt_target(args: argparse.Namespace) -> _MqttTarget | None:
    """The broker of ``--mqtt`` or of the settings, and the topic; ``None`` without one."""
    from console.records import check_topic, checkpoint_topic

    explicit = getattr(args, "mqtt", None)
    settings = settings_of(args)
    broker = broker_of(args, explicit)
    if broker is None:
        if args.mqtt_topic:
            raise UsageError("--mqtt-topic needs --mqtt URL (or SAMU_MQTT__URL)")
        return None
    if args.mqtt_timeout <= 0:
        raise UsageError("--mqtt-timeout must be positive")
    try:
        topic = check_topic(
            args.mqtt_topic or settings.mqtt.checkpoint_topic or checkpoint_topic(settings.centre)
        )
    except ValueError as exc:
        raise UsageError(f"--mqtt-topic: {exc}") from exc
    return _MqttTarget(broker, topic, args.mqtt_timeout, explicit is not None)


def _master_key(args: argparse.Namespace, *, create: bool) -> bytes:
    from console.crypto import MasterKeyError, load_master_key

    settings = settings_of(args)
    try:
        return load_master_key(
            db_path(args),
            key=settings.master_key_text(),
            key_file=settings.master_key_file,
            create=create,
        )
    except MasterKeyError as exc:
        raise UsageError(str(exc)) from exc


# --- audit -----------------------------------------------------------------------------------


def _audit_verify(args: argparse.Namespace) -> int:
    from console.records import (
        CheckpointMqttError,
        VerifyReport,
        fetch_retained_checkpoint,
        verify_trail,
    )
    from console.services import ServicesError, check_database_path

    try:
        check_database_path(db_path(args), create=False)
    except ServicesError as exc:
        report = VerifyReport(db=str(db_path(args)), status="unusable", error=str(exc))
        _print_report(report, args.json)
        return EXIT_USAGE
    named = getattr(args, "checkpoint_dir", None)
    if named is not None and not Path(named).is_dir():
        problem = (
            f"--checkpoint-dir {named}: no such directory (the outside checkpoints you named "
            "are missing: were they moved, or is the path mistyped?)"
        )
        report = VerifyReport(db=str(db_path(args)), status="unusable", error=problem)
        _print_report(report, args.json)
        return EXIT_USAGE
    target = _mqtt_target(args)
    retained = []
    notes = []
    if target is not None:
        # Read before the database, like the directory: with a writer running, the
        # retained checkpoint can then only be older than the log we read.
        try:
            found = asyncio.run(
                fetch_retained_checkpoint(target.broker, target.topic, timeout=target.timeout)
            )
        except CheckpointMqttError as exc:
            problem = f"cannot read the retained checkpoint {target.topic}: {exc}"
            if target.explicit:
                report = VerifyReport(db=str(db_path(args)), status="unusable", error=problem)
                _print_report(report, args.json)
                return EXIT_USAGE
            notes.append(f"{problem} (configured broker; checked without it)")
        else:
            if found is None:
                notes.append(f"no retained checkpoint on {target.topic} at {target.display}")
            else:
                retained.append(found)
                cp = found.checkpoint
                if cp is None:
                    notes.append(
                        f"retained checkpoint on {target.topic} at {target.display} is "
                        f"unreadable ({found.error}): judged as a forged outside checkpoint"
                    )
                else:
                    notes.append(
                        f"retained checkpoint on {target.topic} at {target.display}: covers "
                        f"{cp.tree_size} events, signed {cp.time} by key {cp.key_id}; judged "
                        "with the outside checkpoints"
                    )
    report = verify_trail(
        db_path(args),
        settings_of(args).checkpoint_dir,
        workers=args.workers,
        outside_checkpoints=retained,
    )
    report.notes.extend(notes)
    _print_report(report, args.json)
    return report.exit_code


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print(report.verdict())
        for line in report.details():
            print(f"  {line}")


def _audit_export(args: argparse.Namespace) -> int:
    import os

    from console.records import AuditContext, write_fhir_lines

    if args.since < 1 or (args.until is not None and args.until < args.since):
        raise UsageError("--since must be >= 1 and --until >= --since")
    if args.out is not None:
        check_output(args.out, "--out")  # before the trail is read, not after
    who = AuditContext.local()
    with _store(args) as store:
        detail: dict[str, Any] = {"since": args.since, "format": "fhir-r4-auditevent-ndjson"}
        if args.until is not None:
            detail["until"] = args.until
        try:
            if args.out is not None:
                # Whole or not at all: a failed export keeps the previous file (docs/cli.md).
                with atomic_output(args.out, option="--out", private=True) as out:
                    count, first, last = write_fhir_lines(
                        store.conn, out, store.log_id, args.since, args.until
                    )
            else:
                count, first, last = write_fhir_lines(
                    store.conn, sys.stdout, store.log_id, args.since, args.until
                )
                sys.stdout.flush()
        except BrokenPipeError:
            # The reader (e.g. `| head`) stopped early: record what happened, exit quietly.
            detail["closed_early"] = True
            store.append_audit(who.event("audit.export", "audit-trail", detail=detail))
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        except (OSError, UsageError) as exc:
            store.append_audit(
                who.event("audit.export", "audit-trail", outcome="failure", detail=detail)
            )
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"cannot write export: {exc.strerror or exc}") from exc
        detail.update(
            {"count": count, "first": first, "last": last, "to": "file" if args.out else "stdout"}
        )
        store.append_audit(who.event("audit.export", "audit-trail", detail=detail))
    if args.out is not None:
        print(f"exported {count} audit events to {args.out}", file=sys.stderr)
    return EXIT_OK


def _check_last_level(path: Path, option: str) -> None:
    """Only the last level of a named directory is created: a typo must not build a tree."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a directory")
    if not path.exists() and not path.parent.is_dir():
        raise UsageError(
            f"{option} {path}: {path.parent} does not exist (only the last level is created)"
        )


def _audit_checkpoint(args: argparse.Namespace) -> int:
    from console.records import AuditContext, StoreError

    target = _mqtt_target(args)
    if args.replace_retained and target is None:
        raise UsageError("--replace-retained needs --mqtt URL (or SAMU_MQTT__URL)")
    who = AuditContext.local()
    named = getattr(args, "checkpoint_dir", None)
    if named is not None:
        _check_last_level(Path(named), "--checkpoint-dir")
    with _store(args) as store:
        store.append_audit(who.event("audit.checkpoint", "audit-trail"))
        try:
            checkpoint, problem = _checkpoint_now(
                store, who, target, replace=args.replace_retained, why="audit checkpoint"
            )
        except StoreError as exc:
            print(f"checkpoint refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        where = store.checkpoint_dir / checkpoint.file_name()
        if not where.is_file():
            print(
                f"checkpoint signed in the database, but it could not be written to {where}: "
                "see the error above",
                file=sys.stderr,
            )
            return EXIT_CHECK_FAILED
    if args.json:
        doc: dict[str, Any] = {**checkpoint.to_file_json(), "file": str(where)}
        if target is not None:
            doc["mqtt"] = {
                "broker": target.display,
                "topic": target.topic,
                "published": problem is None,
                "error": problem,
            }
        print(json.dumps(doc))
    else:
        print(
            f"checkpoint: {checkpoint.tree_size} events, root {checkpoint.root.hex()}, "
            f"chain head {checkpoint.chain_head.hex()}, key {checkpoint.key_id}"
        )
        print(f"written to {where}")
        if target is not None and problem is None:
            print(f"published (retained) to {target.display} {target.topic}")
    if target is not None and problem is not None:
        print(f"not published to {target.display} {target.topic}: {problem}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _checkpoint_now(
    store: Store, who: AuditContext, target: _MqttTarget | None, *, replace: bool, why: str
) -> tuple[Checkpoint, str | None]:
    """Take a checkpoint now and, with ``target``, publish it and wait for the broker.

    ``replace`` first records in the trail which retained checkpoint is superseded
    (``audit.checkpoint.supersede``), so the checkpoint published covers that decision.
    Returns the checkpoint and, when it did not reach the broker, why.

    Raises:
        StoreError: no checkpoint can be signed (damaged trail).
    """
    from console.records import publish_checkpoint

    if target is not None and replace:
        _record_supersede(store, who, target, why)
    checkpoint = store.checkpoint(force=True)
    assert checkpoint is not None
    if target is None:
        return checkpoint, None
    status = asyncio.run(
        publish_checkpoint(
            target.broker,
            target.topic,
            checkpoint,
            store=store,
            replace_retained=replace,
            timeout=target.timeout,
        )
    )
    if status.published is not None and status.published.tree_size >= checkpoint.tree_size:
        return checkpoint, None
    if status.refused:
        return checkpoint, (
            f"{status.refused}; the retained checkpoint was left in place (security incident "
            "opened). Check with `samu audit verify --mqtt URL`; after a legitimate restore "
            "add --replace-retained"
        )
    return checkpoint, (
        f"{status.last_error or 'no acknowledgement'} (the checkpoint is in the database and "
        "the checkpoint directory; the broker gets the latest when a writer next reaches it)"
    )


def _record_supersede(store: Store, who: AuditContext, target: _MqttTarget, why: str) -> None:
    """Audit which retained checkpoint a deliberate replacement overwrites."""
    from console.records import CheckpointMqttError, fetch_retained_checkpoint

    detail: dict[str, Any] = {"broker": target.display, "topic": target.topic, "reason": why}
    try:
        found = asyncio.run(
            fetch_retained_checkpoint(target.broker, target.topic, timeout=target.timeout)
        )
    except CheckpointMqttError as exc:
        detail["retained"] = None
        detail["error"] = str(exc)
    else:
        if found is None:
            detail["retained"] = None
        elif found.checkpoint is None:
            detail["retained"] = {"unreadable": found.error}
        else:
            cp = found.checkpoint
            detail["retained"] = {
                "tree_size": cp.tree_size,
                "root": cp.root.hex(),
                "chain_head": cp.chain_head.hex(),
                "time": cp.time,
                "log_id": cp.log_id,
                "key_id": cp.key_id,
                "signature": cp.signature.hex(),
            }
    store.append_audit(who.event("audit.checkpoint.supersede", "audit-trail", detail=detail))


# --- backup ----------------------------------------------------------------------------------


def _backup_create(args: argparse.Namespace) -> int:
    from console.records import AuditContext, BackupError, create_backup

    _check_last_level(Path(args.to), "--to")

    target = _mqtt_target(args)
    who = AuditContext.local()
    with services_of(args) as services:
        key = _master_key(args, create=True)
        try:
            final = create_backup(services.store, args.to, key, who)
        except BackupError as exc:
            raise UsageError(str(exc)) from exc
        problem = None
        if target is not None:
            _, problem = _checkpoint_now(services.store, who, target, replace=False, why="backup")
        key_path = services.master_key_path
    print(f"backup written: {final}")
    if problem is not None:
        print(
            f"checkpoint not published to {target.display if target else ''}: {problem}",
            file=sys.stderr,
        )
    print(
        f"keep the master key ({key_path} or $SAMU_MASTER_KEY) in a separate, "
        "offline place: the backup cannot be read without it",
        file=sys.stderr,
    )
    return EXIT_OK


def _backup_verify(args: argparse.Namespace) -> int:
    from console.records import BackupError, verify_backup

    try:
        key = _master_key(args, create=False)
    except UsageError as exc:
        raise UsageError(f"{exc}; {_backup_key_hint(Path(args.backup))}") from None
    try:
        check = verify_backup(args.backup, key)
    except BackupError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print(
            json.dumps(
                {
                    "ok": check.ok,
                    "path": str(check.path),
                    "problems": check.problems,
                    "backup_id": check.manifest.get("backup_id"),
                    "source": check.manifest.get("source"),
                }
            )
        )
    else:
        print(check.summary())
    return EXIT_OK if check.ok else EXIT_CHECK_FAILED


def _backup_key_hint(backup: Path) -> str:
    """Which master key a backup needs, from its manifest (no secret in it)."""
    try:
        source = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return "this backup needs the master key of the database it was made from"
    key_id = source.get("master_key_id")
    which = f" (master key id {key_id})" if key_id else ""
    return (
        f"this backup was made from {source.get('db', 'a database')}{which}: point "
        f"SAMU_MASTER_KEY_FILE at that database's key file ({source.get('db', '<db>')}.key)"
    )


def _backup_restore(args: argparse.Namespace) -> int:
    from console.records import AuditContext, BackupError, restore_backup

    db = db_path(args)
    key = _master_key(args, create=False)
    target = _mqtt_target(args)
    try:
        check, moved = restore_backup(args.backup, db, key, AuditContext.local(), force=args.force)
    except BackupError as exc:
        if "damaged" in str(exc) or "authentication failed" in str(exc):
            print(f"restore refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        raise UsageError(str(exc)) from exc
    print(f"restored {check.path} to {db}")
    for path in moved:
        print(f"  set aside: {path}")
    if target is not None:
        # The retained checkpoint, like the directory, rightly calls the restored copy a
        # roll-back: supersede it (audited), or the hub would refuse to overwrite it.
        from console.records import StoreError

        who = AuditContext.local()
        try:
            with _store(args) as store:
                _, problem = _checkpoint_now(
                    store, who, target, replace=True, why=f"backup.restore {check.path.name}"
                )
        except (StoreError, UsageError) as exc:
            problem = str(exc)
        if problem is None:
            print(f"  superseded: retained checkpoint {target.topic} at {target.display}")
        else:
            print(
                f"warning: the retained checkpoint {target.topic} at {target.display} was not "
                f"superseded ({problem}); run `samu audit checkpoint --mqtt URL "
                "--replace-retained` when the broker is back",
                file=sys.stderr,
            )
    return EXIT_OK


# --- incidents -------------------------------------------------------------------------------


def _print_incident(incident: Any, with_notes: bool) -> None:
    about = f" [{incident.object}]" if incident.object else ""
    print(
        f"#{incident.id} {incident.status:<12} {incident.kind:<9} {incident.severity:<8} "
        f"{incident.category}: {incident.title}{about} (opened {incident.opened_at} by "
        f"{incident.opened_by})"
    )
    if with_notes:
        for note in incident.notes:
            change = f" [{note.status_from} -> {note.status_to}]" if note.status_to else ""
            print(f"    {note.time} {note.author}{change}: {note.note}")


def _incident_call(fn: Any, *a: Any, **kw: Any) -> Any:
    from console.records import IncidentError

    try:
        return fn(*a, **kw)
    except IncidentError as exc:
        hint = " (ids are listed by samu incidents list)" if "no incident" in str(exc) else ""
        raise UsageError(f"{exc}{hint}") from exc


def _incidents_list(args: argparse.Namespace) -> int:
    from console.records import AuditContext, list_incidents

    with _store(args) as store:
        incidents = list_incidents(
            store, AuditContext.local(), status=args.status, kind=args.kind, with_notes=args.json
        )
    for incident in incidents:
        if args.json:
            print(incident.model_dump_json())
        else:
            _print_incident(incident, with_notes=False)
    if not incidents and not args.json:
        print("no incidents", file=sys.stderr)
    return EXIT_OK


def _incidents_show(args: argparse.Namespace) -> int:
    from console.records import AuditContext, get_incident

    with _store(args) as store:
        incident = _incident_call(get_incident, store, AuditContext.local(), args.id)
    if args.json:
        print(incident.model_dump_json())
    else:
        _print_incident(incident, with_notes=True)
    return EXIT_OK


def _incidents_add(args: argparse.Namespace) -> int:
    from console.records import AuditContext, open_incident

    with _store(args) as store:
        incident = _incident_call(
            open_incident,
            store,
            AuditContext.local(),
            kind=args.kind,
            category=args.category,
            title=args.title,
            severity=args.severity,
            object=args.object,
            note=args.note,
        )
    print(f"incident #{incident.id} opened")
    return EXIT_OK


def _incidents_update(args: argparse.Namespace) -> int:
    from console.records import AuditContext, update_incident

    with _store(args) as store:
        incident = _incident_call(
            update_incident,
            store,
            AuditContext.local(),
            args.id,
            status=args.status,
            note=args.note,
        )
    print(f"incident #{incident.id} is {incident.status}")
    return EXIT_OK
