"""``samu users|retention|rights``: accounts, retention and patients' rights.

These commands run as the *local operator* — whoever holds the database file and its
master key — and every action is audited with actor ``local:<os-user>``
(records-security.md). The first admin account is created this way.

Passwords are never command-line arguments (they would land in shell history and
``ps``): ``users add`` asks twice at a hidden prompt, or reads ``SAMU_PASSWORD`` for
automation. Nothing secret is printed except, at enrolment, the otpauth URI and its
QR code — showing them once is the point.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from console.cli._context import prompt_secret, services_of
from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from console.cli._output import check_output, write_output

_ROLES = ("regulateur", "arm", "ide_ehpad", "auditeur", "admin")
#: Where the ids ``--patient`` takes come from, for the help and the "no patient" errors.
_PATIENT_IDS = (
    "patient ids (pat_ and 16 hex digits) are given when an identity is registered on a "
    "case: list them with samu rights list, or find one by birth name with "
    "samu rights list --name NAME"
)


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``users``, ``retention`` and ``rights`` command groups."""
    users = sub.add_parser(
        "users", parents=[common], help="manage accounts (local operator, audited)"
    )
    usub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    add = usub.add_parser(
        "add",
        parents=[common],
        help="create an account and print its TOTP enrolment (URI + QR code)",
        description="Create an account. The password is asked twice at a hidden prompt, "
        "or read from SAMU_PASSWORD; it is never an argument.",
    )
    add.add_argument("user_id", metavar="ID", help="unique user id (one per person)")
    add.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=_ROLES,
        help="a role held (repeat for several)",
    )
    add.add_argument("--site", help="EHPAD site of an ide_ehpad (own residents only)")
    add.set_defaults(handler=_users_add)

    lst = usub.add_parser("list", parents=[common], help="list accounts (no secrets)")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(handler=_users_list)

    dis = usub.add_parser(
        "disable", parents=[common], help="disable an account and end its sessions"
    )
    dis.add_argument("user_id", metavar="ID")
    dis.set_defaults(handler=_users_disable)

    ena = usub.add_parser("enable", parents=[common], help="re-enable a disabled account")
    ena.add_argument("user_id", metavar="ID")
    ena.set_defaults(handler=_users_enable)

    rt = usub.add_parser(
        "reset-totp",
        parents=[common],
        help="give an account a new TOTP secret (prints the new enrolment)",
    )
    rt.add_argument("user_id", metavar="ID")
    rt.set_defaults(handler=_users_reset_totp)

    roles = usub.add_parser(
        "roles", parents=[common], help="show, add or remove an account's roles"
    )
    roles.add_argument("user_id", metavar="ID")
    roles.add_argument("--add", action="append", default=[], choices=_ROLES, metavar="ROLE")
    roles.add_argument("--remove", action="append", default=[], choices=_ROLES, metavar="ROLE")
    roles.set_defaults(handler=_users_roles)

    retention = sub.add_parser(
        "retention", parents=[common], help="apply the retention policy (crypto-shredding)"
    )
    rsub = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    run = rsub.add_parser(
        "run",
        parents=[common],
        help="erase patients whose retention ended (see --dry-run)",
        description="Apply the retention policy: 20 years after the last contact, minors "
        "at least to their 28th birthday, deceased 10 years after death, legal holds "
        "suspend. Erasure is crypto-shredding (the patient's data key is deleted).",
    )
    run.add_argument("--dry-run", action="store_true", help="report only, erase nothing")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.set_defaults(handler=_retention_run)
    hold = rsub.add_parser(
        "hold",
        parents=[common],
        help="place a legal hold on a patient",
        description=f"Where ids come from: {_PATIENT_IDS}.",
    )
    hold.add_argument(
        "--patient", required=True, metavar="ID", help="the patient's id: see samu rights list"
    )
    hold.add_argument("--reason", required=True)
    hold.set_defaults(handler=_retention_hold)
    release = rsub.add_parser("release", parents=[common], help="lift a legal hold")
    release.add_argument("hold_id", metavar="HOLD")
    release.set_defaults(handler=_retention_release)

    rights = sub.add_parser(
        "rights",
        parents=[common],
        help="patients' rights (access export)",
        description=f"Where ids come from: {_PATIENT_IDS}.",
    )
    gsub = rights.add_subparsers(dest="rights_command", metavar="ACTION", required=True)
    lst = gsub.add_parser(
        "list",
        parents=[common],
        help="the registered patients' ids (no identity shown; audited)",
        description="One line per registered patient: id, site, status, created, last "
        "contact, flags. No identity trait is shown; --name finds a patient by birth name "
        "(spelling-tolerant, through the blind index; the name is not written to the "
        "trail). Erased patients are listed (their export still lists the accesses). "
        "Audited as the local operator (rights.list).",
    )
    lst.add_argument("--site", metavar="ID", help="only the patients of this EHPAD site")
    lst.add_argument("--name", metavar="BIRTH_NAME", help="only patients of this birth name")
    lst.add_argument("--first-name", metavar="NAME", help="with --name: and this first name")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(handler=_rights_list)
    export = gsub.add_parser(
        "export",
        parents=[common],
        help="everything held on a patient, and who accessed it (JSON)",
        description="One JSON document (RGPD art. 15): identity, rectifications, signed "
        "records, legal holds, break-glass grants and every access from the audit trail. "
        f"Audited (rights.export). Where ids come from: {_PATIENT_IDS}.",
    )
    export.add_argument(
        "--patient",
        required=True,
        metavar="ID",
        help="the patient's id (pat_…): see samu rights list [--name BIRTH_NAME]",
    )
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write to FILE (replaced whole, mode 0600)",
    )
    export.set_defaults(handler=_rights_export)


# --------------------------------------------------------------------------- plumbing


def _read_new_password() -> str:
    return prompt_secret("Password (at least 12 characters): ", "SAMU_PASSWORD", confirm=True)


def _print_enrolment(enrolment: Any) -> None:
    import segno

    print(f"TOTP enrolment for {enrolment.user_id}: scan the QR code with an authenticator app")
    print("(or enter this URI); it is shown only now:")
    print(enrolment.otpauth_uri)
    segno.make(enrolment.otpauth_uri, error="m").terminal(out=sys.stdout, compact=True)


def _account_errors() -> tuple[type[Exception], ...]:
    from console.auth import AccountError, PasswordPolicyError

    return (AccountError, PasswordPolicyError)


# --------------------------------------------------------------------------- users


def _users_add(args: argparse.Namespace) -> int:
    from console.auth import PasswordPolicyError, check_password_policy, validate_user_id

    errors = _account_errors()
    try:
        uid = validate_user_id(args.user_id)
    except errors as exc:
        raise UsageError(str(exc)) from exc
    password = _read_new_password()
    try:
        check_password_policy(uid, password)  # before creating any file
    except PasswordPolicyError as exc:
        raise UsageError(str(exc)) from exc
    with services_of(args, create=True) as s:
        try:
            enrolment = s.accounts.create_user(
                s.operator, uid, args.roles, password, site=args.site
            )
        except errors as exc:
            raise UsageError(str(exc)) from exc
    roles = ", ".join(sorted(set(args.roles)))
    site = f", site {args.site}" if args.site else ""
    print(f"created account {uid} (roles: {roles}{site})")
    _print_enrolment(enrolment)
    return EXIT_OK


def _users_list(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        accounts = s.accounts.list_users(s.operator)
    if args.json:
        for a in accounts:
            print(
                json.dumps(
                    {
                        "user_id": a.user_id,
                        "roles": sorted(r.value for r in a.roles),
                        "site": a.site,
                        "disabled": a.disabled,
                        "totp_enrolled": a.totp_enrolled,
                        "created_at": a.created_at,
                        "key_id": a.key_id,
                    },
                    ensure_ascii=False,
                )
            )
        return EXIT_OK
    if not accounts:
        print("no accounts")
        return EXIT_OK
    rows = [("ID", "ROLES", "SITE", "STATUS", "TOTP", "SIGNING KEY")]
    for a in accounts:
        rows.append(
            (
                a.user_id,
                ",".join(sorted(r.value for r in a.roles)),
                a.site or "-",
                "disabled" if a.disabled else "active",
                "enrolled" if a.totp_enrolled else "none",
                (a.key_id or "-")[:16],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return EXIT_OK


def _users_disable(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        try:
            changed = s.accounts.disable_user(s.operator, args.user_id)
        except _account_errors() as exc:
            raise UsageError(str(exc)) from exc
    print(f"account {args.user_id.strip().lower()} {'disabled' if changed else 'already disabled'}")
    return EXIT_OK


def _users_enable(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        try:
            changed = s.accounts.enable_user(s.operator, args.user_id)
        except _account_errors() as exc:
            raise UsageError(str(exc)) from exc
    print(f"account {args.user_id.strip().lower()} {'enabled' if changed else 'already enabled'}")
    return EXIT_OK


def _users_reset_totp(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        try:
            enrolment = s.accounts.reset_totp(s.operator, args.user_id)
        except _account_errors() as exc:
            raise UsageError(str(exc)) from exc
    print(f"new TOTP secret for {enrolment.user_id}; the old one no longer works")
    _print_enrolment(enrolment)
    return EXIT_OK


def _users_roles(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        try:
            if args.add or args.remove:
                roles = s.accounts.set_roles(
                    s.operator, args.user_id, add=args.add, remove=args.remove
                )
            else:
                roles = s.accounts.roles(args.user_id)
        except _account_errors() as exc:
            raise UsageError(str(exc)) from exc
    print(f"{args.user_id.strip().lower()}: {', '.join(sorted(r.value for r in roles))}")
    return EXIT_OK


# --------------------------------------------------------------------------- retention


def _retention_run(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        report = s.retention.run(s.operator, dry_run=args.dry_run)
    if args.json:
        print(
            json.dumps(
                {
                    "date": report.today.isoformat(),
                    "dry_run": report.dry_run,
                    "summary": report.summary(),
                    "decisions": [
                        {
                            "patient": d.patient_id,
                            "action": d.action,
                            "retention_end": d.retention_end.isoformat()
                            if d.retention_end
                            else None,
                            "reason": d.reason,
                        }
                        for d in report.decisions
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        verb = "would erase" if report.dry_run else "erased"
        for d in report.decisions:
            if d.action == "shred":
                print(f"{verb} {d.patient_id}: {d.reason}")
            elif d.action == "held":
                print(f"kept {d.patient_id}: {d.reason}")
            elif d.action == "error":
                print(f"error {d.patient_id}: {d.reason}", file=sys.stderr)
        c = report.summary()
        mode = " (dry run: nothing erased)" if report.dry_run else ""
        print(
            f"retention {report.today.isoformat()}{mode}: {len(report.decisions)} patient(s); "
            f"{c['shred']} {verb}, {c['keep']} within retention, {c['held']} under legal hold, "
            f"{c['shredded']} erased earlier, {c['error']} error(s)"
        )
    return EXIT_CHECK_FAILED if report.errors else EXIT_OK


def _retention_hold(args: argparse.Namespace) -> int:
    from console.identity import UnknownPatientError

    with services_of(args) as s:
        try:
            hold_id = s.retention.place_hold(s.operator, args.patient, args.reason)
        except (UnknownPatientError, KeyError, ValueError) as exc:
            message = str(exc.args[0]) if exc.args else str(exc)
            if isinstance(exc, UnknownPatientError) or message.startswith("no patient"):
                raise UsageError(_unknown_patient(s, args.patient)) from None
            raise UsageError(message) from exc
    print(f"legal hold {hold_id} placed on {args.patient}")
    return EXIT_OK


def _retention_release(args: argparse.Namespace) -> int:
    with services_of(args) as s:
        try:
            s.retention.release_hold(s.operator, args.hold_id)
        except KeyError as exc:
            raise UsageError(
                f"{exc.args[0]} (a hold's id is printed when samu retention hold places it)"
            ) from exc
    print(f"legal hold {args.hold_id} released")
    return EXIT_OK


# --------------------------------------------------------------------------- rights


def _rights_export(args: argparse.Namespace) -> int:
    from console.identity import UnknownPatientError

    if args.output is not None:
        check_output(args.output, "-o")  # before the export is built (and audited)
    with services_of(args) as s:
        try:
            document = s.rights.export(s.operator, args.patient)
        except UnknownPatientError:
            raise UsageError(_unknown_patient(s, args.patient)) from None
    text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    out: Path = args.output
    write_output(out, text, option="-o", private=True)
    print(f"rights export of {args.patient} written to {out}", file=sys.stderr)
    return EXIT_OK


def _unknown_patient(s: Any, patient_id: str) -> str:
    """The one-line error for an id no patient has: where ids come from, how to list them,
    and what the id given may have been instead (a resident's reference from a case)."""
    from protocols import printable  # here, not at the top: `samu --help` stays light

    shown = printable(patient_id[:80])
    count = s.rights.patient_count()
    held = "this database holds none yet" if count == 0 else f"this database holds {count}"
    try:  # the cases' residents: what a stranger most likely typed instead
        resident = s.store.fetchone(
            "SELECT resident_id FROM residents WHERE resident_id = ? OR ref = ? LIMIT 1",
            (patient_id, patient_id),
        )
    except sqlite3.Error:
        resident = None
    if resident is not None:
        return (
            f"no patient with id {shown!r}: that is a resident reference (devices, cases: "
            f"{printable(resident[0])}), not a registered identity; {_PATIENT_IDS} ({held})"
        )
    return f"no patient with id {shown!r}: {_PATIENT_IDS} ({held})"


def _rights_list(args: argparse.Namespace) -> int:
    from protocols import printable

    if args.first_name and not args.name:
        raise UsageError("--first-name goes with --name")
    with services_of(args) as s:
        found = s.rights.patients(
            s.operator, site=args.site, name=args.name, first_name=args.first_name
        )
    if args.json:
        for p in found:
            print(json.dumps(p, ensure_ascii=False))
        return EXIT_OK
    if not found:
        narrowed = " matching" if args.site or args.name else ""
        print(
            f"no{narrowed} registered patient (a patient's id is given when their identity "
            "is registered on a case)",
            file=sys.stderr,
        )
        return EXIT_OK
    rows = [("ID", "SITE", "STATUS", "CREATED", "LAST CONTACT", "FLAGS")]
    for p in found:
        flags = [f for f in ("deceased", "opposition") if p[f]]
        rows.append(
            (
                p["patient_id"],
                p["site"] or "-",
                p["status"],
                p["created_at"],
                p["last_contact"],
                ",".join(flags) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print(printable("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()))
    return EXIT_OK
