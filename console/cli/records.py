"""``samu audit|backup|incidents``: the audit trail, backups and incidents.

* ``samu audit verify --db PATH [--checkpoint-dir DIR] [--json]`` — exit 0 intact, 1
  damaged (first bad seq and kind), 2 unusable; read-only and not itself audited (see
  ``console.records._verify``).
* ``samu audit export [--since SEQ] [--until SEQ] [--out FILE]`` — FHIR R4 AuditEvent
  JSON lines; the export is audited.
* ``samu audit checkpoint`` — sign and publish a checkpoint now.
* ``samu backup create --to DIR`` / ``verify BACKUP`` / ``restore BACKUP [--force]``.
* ``samu incidents list|show|add|update`` — security and technical incidents.

Every command that touches the database runs as the local operator and is audited with
actor ``local:<os-user>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from console.records import Store

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
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(handler=_audit_verify)

    p = actions.add_parser(
        "export", parents=[common], help="export the trail as FHIR R4 AuditEvent JSON lines"
    )
    p.add_argument("--since", type=int, default=1, metavar="SEQ", help="first seq (default 1)")
    p.add_argument("--until", type=int, default=None, metavar="SEQ", help="last seq (default: end)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write to FILE (mode 0600), not stdout")
    p.set_defaults(handler=_audit_export)

    p = actions.add_parser("checkpoint", parents=[common], help="sign and publish a checkpoint now")
    _checkpoint_dir_option(p)
    p.add_argument("--json", action="store_true", help="print the checkpoint as JSON")
    p.set_defaults(handler=_audit_checkpoint)


def _register_backup(sub: _Sub, common: argparse.ArgumentParser) -> None:
    backup = sub.add_parser(
        "backup", parents=[common], help="encrypted online backups (create, verify, restore)"
    )
    actions = backup.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    p = actions.add_parser("create", parents=[common], help="write an encrypted backup into DIR")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="destination directory")
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


def _settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from console.settings import load_settings

    try:
        return load_settings(getattr(args, "config", None))
    except (FileNotFoundError, ValidationError, ValueError) as exc:
        raise UsageError(f"configuration: {exc}") from exc


def _db_path(args: argparse.Namespace) -> Path:
    db = getattr(args, "db", None)
    return Path(db) if db else Path(_settings(args).db)


def _checkpoint_dir(args: argparse.Namespace) -> Path | None:
    explicit = getattr(args, "checkpoint_dir", None)
    if explicit is not None:
        return Path(explicit)
    configured = _settings(args).checkpoint_dir
    return Path(configured) if configured else None


def _open_store(args: argparse.Namespace, *, must_exist: bool = True) -> Store:
    from console.records import Store, StoreError

    path = _db_path(args)
    if must_exist and not path.is_file():
        raise UsageError(f"database not found: {path}")
    try:
        return Store.open(path, checkpoint_dir=_checkpoint_dir(args), background_checkpoints=False)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def _master_key(db: Path, create: bool) -> bytes:
    from console.records import KeyFileError, load_master_key

    try:
        return load_master_key(db, create=create)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from exc


# --- audit -----------------------------------------------------------------------------------


def _audit_verify(args: argparse.Namespace) -> int:
    from console.records import verify_trail

    report = verify_trail(_db_path(args), _checkpoint_dir(args), workers=args.workers)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print(report.verdict())
        for line in report.details():
            print(f"  {line}")
    return report.exit_code


def _audit_export(args: argparse.Namespace) -> int:
    import os

    from console.records import AuditContext, write_fhir_lines

    if args.since < 1 or (args.until is not None and args.until < args.since):
        raise UsageError("--since must be >= 1 and --until >= --since")
    who = AuditContext.local()
    with _open_store(args) as store:
        detail: dict[str, Any] = {"since": args.since, "format": "fhir-r4-auditevent-ndjson"}
        if args.until is not None:
            detail["until"] = args.until
        try:
            if args.out is not None:
                fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
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
        except OSError as exc:
            store.append_audit(
                who.event("audit.export", "audit-trail", outcome="failure", detail=detail)
            )
            raise UsageError(f"cannot write export: {exc}") from exc
        detail.update(
            {"count": count, "first": first, "last": last, "to": "file" if args.out else "stdout"}
        )
        store.append_audit(who.event("audit.export", "audit-trail", detail=detail))
    if args.out is not None:
        print(f"exported {count} audit events to {args.out}", file=sys.stderr)
    return EXIT_OK


def _audit_checkpoint(args: argparse.Namespace) -> int:
    from console.records import AuditContext, StoreError

    with _open_store(args) as store:
        store.append_audit(AuditContext.local().event("audit.checkpoint", "audit-trail"))
        try:
            checkpoint = store.checkpoint(force=True)
        except StoreError as exc:
            print(f"checkpoint refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        assert checkpoint is not None
        where = store.checkpoint_dir / checkpoint.file_name()
    if args.json:
        print(json.dumps({**checkpoint.to_file_json(), "file": str(where)}))
    else:
        print(
            f"checkpoint: {checkpoint.tree_size} events, root {checkpoint.root.hex()}, "
            f"chain head {checkpoint.chain_head.hex()}, key {checkpoint.key_id}"
        )
        print(f"written to {where}")
    return EXIT_OK


# --- backup ----------------------------------------------------------------------------------


def _backup_create(args: argparse.Namespace) -> int:
    from console.records import AuditContext, BackupError, create_backup, master_key_path

    db = _db_path(args)
    if not db.is_file():
        raise UsageError(f"database not found: {db}")
    key = _master_key(db, create=True)
    with _open_store(args) as store:
        try:
            final = create_backup(store, args.to, key, AuditContext.local())
        except BackupError as exc:
            raise UsageError(str(exc)) from exc
    print(f"backup written: {final}")
    print(
        f"keep the master key ({master_key_path(db)} or $SAMU_MASTER_KEY) in a separate, "
        "offline place: the backup cannot be read without it",
        file=sys.stderr,
    )
    return EXIT_OK


def _backup_verify(args: argparse.Namespace) -> int:
    from console.records import BackupError, verify_backup

    key = _master_key(_db_path(args), create=False)
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


def _backup_restore(args: argparse.Namespace) -> int:
    from console.records import AuditContext, BackupError, restore_backup

    db = _db_path(args)
    key = _master_key(db, create=False)
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
        raise UsageError(str(exc)) from exc


def _incidents_list(args: argparse.Namespace) -> int:
    from console.records import AuditContext, list_incidents

    with _open_store(args) as store:
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

    with _open_store(args) as store:
        incident = _incident_call(get_incident, store, AuditContext.local(), args.id)
    if args.json:
        print(incident.model_dump_json())
    else:
        _print_incident(incident, with_notes=True)
    return EXIT_OK


def _incidents_add(args: argparse.Namespace) -> int:
    from console.records import AuditContext, open_incident

    with _open_store(args, must_exist=False) as store:
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

    with _open_store(args) as store:
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
