"""``samu hub-sante export|import|validate``, ``samu fhir export``, ``samu idco import``.

Exactly as interop.md. Exit codes: 0 ok; 1 a check failed (``validate``: a message is
invalid; ``idco import``: a message was quarantined; an identity export refused); 2 usage
or unusable input (missing file, not JSON, schema errors on import, no such case), with
nothing written. ``-o FILE`` replaces FILE atomically (whole or not at all: a failed
export keeps the previous file), mode 0600: they carry clinical data (docs/cli.md).

Every read of a case is audited as the local operator (``case.export``, like ``samu
records``); identity traits go into an export only with ``--identity --as USER``: the
user signs in (password and TOTP, or ``SAMU_PASSWORD``/``SAMU_TOTP``), must hold
``clinical.read`` on the case and be a physician (``regulateur``); the grant or the
refusal is audited (``identity.export``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli._context import services_of, settings_of
from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from console.cli._output import check_output, write_output

if TYPE_CHECKING:
    from console.interop import CaseData, HubSanteSchemas
    from console.services import Services

#: Largest input file read (a Hub Santé message is a few kB; IDCO files hold many).
MAX_INPUT = 32 * 1024 * 1024


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``hub-sante``, ``fhir`` and ``idco``."""
    hub = sub.add_parser(
        "hub-sante", parents=[common], help="Hub Santé RS-EDA / RS-BPV: export, import, validate"
    )
    hsub = hub.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    p = hsub.add_parser(
        "export",
        parents=[common],
        help="write a case as RS-EDA createCaseHealth (or its bilans as RS-BPV)",
        description='Writes the case as an RS-EDA message {"createCaseHealth": …}, '
        "validated against the official schemas; with --bilan, each bilan of the case as "
        "RS-BPV interventionReport, one message per line. --envelope wraps each in the "
        "EDXL-DE distribution envelope.",
    )
    p.add_argument("--case", required=True, metavar="ID", help="case id (fr.health.samu…)")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        metavar="FILE",
        help="write to FILE (replaced whole, mode 0600), not stdout",
    )
    p.add_argument("--envelope", action="store_true", help="inside the EDXL-DE envelope")
    p.add_argument("--bilan", action="store_true", help="the bilans, as RS-BPV")
    p.add_argument(
        "--to",
        metavar="ID",
        default=None,
        help="recipient in the envelope, e.g. fr.health.samu076 (default fr.health.hub)",
    )
    _identity_options(p)
    p.set_defaults(handler=_hub_export)
    p = hsub.add_parser(
        "import",
        parents=[common],
        help="read an RS-EDA (opens or updates the case) or RS-BPV message",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(handler=_hub_import)
    p = hsub.add_parser(
        "validate",
        parents=[common],
        help="validate Hub Santé messages: exit 0 valid, 1 invalid, 2 unreadable",
    )
    p.add_argument("files", type=Path, nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(handler=_hub_validate)

    fhir = sub.add_parser("fhir", parents=[common], help="FHIR R4 export")
    fsub = fhir.add_subparsers(dest="fhir_command", metavar="ACTION", required=True)
    p = fsub.add_parser(
        "export",
        parents=[common],
        help="write a case as one FHIR R4 document Bundle (JSON)",
    )
    p.add_argument("--case", required=True, metavar="ID", help="case id")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        metavar="FILE",
        help="write to FILE (replaced whole, mode 0600), not stdout",
    )
    p.add_argument("--audit", action="store_true", help="add the case's AuditEvent entries")
    _identity_options(p)
    p.set_defaults(handler=_fhir_export)

    idco = sub.add_parser("idco", parents=[common], help="HL7 v2 implant transmissions (IDCO)")
    isub = idco.add_subparsers(dest="idco_command", metavar="ACTION", required=True)
    p = isub.add_parser(
        "import",
        parents=[common],
        help="import HL7 v2 ORU^R01 (IHE PCD-09) messages; exit 1 if any was quarantined",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(handler=_idco_import)


def _identity_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--identity",
        action="store_true",
        help="include identity traits (names, birth date, sex, INS): needs --as USER, a "
        "physician, signed in (audited)",
    )
    p.add_argument("--as", dest="user", metavar="USER", help="your user id (with --identity)")


# --- helpers -------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    # Read at most one byte past the limit rather than trusting the size: a device
    # (/dev/zero) or a pipe (<(cat file)) says 0 and never ends.
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_INPUT + 1)
        if len(data) > MAX_INPUT:
            raise UsageError(f"{path}: more than {MAX_INPUT} bytes (not a message file)")
        return data
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None


def _check_out(path: Path | None) -> None:
    if path is not None:
        check_output(path, "-o")


def _write(path: Path | None, text: str) -> None:
    """``text`` to stdout, or into ``path`` whole or not at all, mode 0600 (clinical data;
    docs/cli.md, "Output files")."""
    if path is None:
        sys.stdout.write(text)
        return
    write_output(path, text, option="-o", private=True)


def _codes_dir(args: argparse.Namespace) -> Path:
    from console.cases import default_dir

    return settings_of(args).hub_sante_dir or default_dir()


def _schemas(args: argparse.Namespace) -> HubSanteSchemas:
    from console.interop import HubSanteError, load_schemas

    try:
        return load_schemas(_codes_dir(args).resolve())
    except HubSanteError as exc:
        raise UsageError(str(exc)) from None


def _audit(services: Services, action: str, obj: str, detail: dict[str, Any]) -> None:
    from console.records import AuditContext

    services.store.append_audit(AuditContext.local().event(action, obj, detail=detail))


def _case(services: Services, case_id: str, what: str) -> CaseData:
    from console.interop import CaseNotFoundError, load_case

    try:
        data = load_case(services.store, services.accounts, services.master_key, case_id)
    except CaseNotFoundError:
        _audit(services, "case.export", f"case:{case_id[:80]}", {"found": False, "format": what})
        raise UsageError(
            f"no case {case_id!r} (see `samu records cases --db PATH` for the ids)"
        ) from None
    return data


@contextmanager
def _identity(services: Services, args: argparse.Namespace, data: CaseData) -> Iterator[bool]:
    """Whether identity traits may go out (see the module docstring)."""
    if not args.identity:
        yield False
        return
    from console.auth import Action, Denied, Target
    from console.cli.cases import _signed_in

    with _signed_in(services, args.user) as session:
        if session is None:
            raise _RefusedError("login refused")
        obj = f"case:{data.case_id}"
        try:
            auth = services.accounts.authorize(
                session, Action.CLINICAL_READ, Target(obj, site=data.site)
            )
        except Denied as exc:
            raise _RefusedError(str(exc)) from None
        ok = auth.role == "regulateur"
        services.accounts.audit(
            session,
            "identity.export",
            obj,
            outcome="success" if ok else "denied",
            role=auth.role,
            detail={"residents": len(data.residents)}
            if ok
            else {"reason": "identity export is a physician's (regulateur)"},
        )
        if not ok:
            raise _RefusedError("identity export is a physician's (role regulateur)")
        yield True


class _RefusedError(Exception):
    """An identity export refused (exit 1, audited)."""


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# --- hub-sante -------------------------------------------------------------------------------


def _hub_export(args: argparse.Namespace) -> int:
    from console.interop import DEFAULT_RECIPIENT, envelope, export_rs_bpv, export_rs_eda

    if args.identity and not args.user:
        raise UsageError("--identity needs --as USER")
    _check_out(args.out)
    if args.to is not None and not args.to.startswith("fr."):
        raise UsageError(f"--to {args.to!r}: a Hub Santé id, e.g. fr.health.samu076")
    schemas = _schemas(args)
    codes = _codes_dir(args)
    now = datetime.now(UTC)
    with services_of(args) as services:
        data = _case(services, args.case, "rs-bpv" if args.bilan else "rs-eda")
        try:
            with _identity(services, args, data) as identity:
                if args.bilan:
                    key = "interventionReport"
                    contents = export_rs_bpv(data, identity=identity)
                else:
                    from console.cases import CodesError

                    key = "createCaseHealth"
                    try:
                        contents = [export_rs_eda(data, codes, identity=identity).wire()]
                    except CodesError as exc:
                        raise UsageError(str(exc)) from None
        except _RefusedError as exc:
            print(f"samu hub-sante: identity export refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        messages = [
            envelope(key, c, centre=data.centre, now=now, recipient=args.to or DEFAULT_RECIPIENT)
            if args.envelope
            else {key: c}
            for c in contents
        ]
        for m in messages:
            result = schemas.validate(m)
            if not result.ok:  # a bug of ours: say so, write nothing
                for issue in result.issues:
                    print(f"  {issue}", file=sys.stderr)
                print(
                    "samu hub-sante: the export does not validate against the official "
                    "schemas (nothing written)",
                    file=sys.stderr,
                )
                return EXIT_CHECK_FAILED
        _audit(
            services,
            "case.export",
            f"case:{data.case_id}",
            {
                "found": True,
                "format": "rs-bpv" if args.bilan else "rs-eda",
                "envelope": args.envelope,
                "identity": bool(args.identity),
                "messages": len(messages),
                "to": str(args.out) if args.out else "stdout",
            },
        )
    _write(args.out, "".join(_dumps(m) + "\n" for m in messages))
    if args.bilan and not messages:
        print(f"samu hub-sante: case {data.case_id} has no bilan", file=sys.stderr)
    return EXIT_OK


def _hub_import(args: argparse.Namespace) -> int:
    from console.interop import HubSanteImporter, HubSanteImportError
    from console.records import AuditContext

    raw = _read(args.file)
    schemas = _schemas(args)
    # Before the database is opened (or created): bad input touches nothing.
    try:
        HubSanteImporter.check_only(schemas, raw)
    except HubSanteImportError as exc:
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        raise UsageError(f"{args.file}: {exc} (nothing written)") from None
    with services_of(args, create=True) as services:
        importer = HubSanteImporter(services.store, services.master_key, schemas)
        try:
            summary = importer.import_message(
                raw, source=f"hub-sante:{args.file.name}", who=AuditContext.local()
            )
        except HubSanteImportError as exc:
            for issue in exc.issues:
                print(f"  {issue}", file=sys.stderr)
            raise UsageError(f"{args.file}: {exc} (nothing written)") from None
    print(_dumps(summary.as_dict()))
    return EXIT_OK


def _hub_validate(args: argparse.Namespace) -> int:
    from console.interop import HubSanteImportError, parse_json

    schemas = _schemas(args)
    worst = EXIT_OK
    for path in args.files:
        try:
            data = parse_json(_read(path))
        except (UsageError, HubSanteImportError) as exc:
            text = str(exc) if isinstance(exc, UsageError) else f"{path}: {exc}"
            if args.json:
                print(_dumps({"file": str(path), "status": "unreadable", "error": text}))
            else:
                print(f"samu hub-sante validate: {text}", file=sys.stderr)
            worst = EXIT_USAGE
            continue
        result = schemas.validate(data)
        kind = result.kind or "unknown model"
        how = "enveloped" if result.enveloped else "bare"
        if args.json:
            print(
                _dumps(
                    {
                        "file": str(path),
                        "status": "valid" if result.ok else "invalid",
                        "model": result.kind,
                        "enveloped": result.enveloped,
                        "errors": [{"path": i.path, "message": i.message} for i in result.issues],
                    }
                )
            )
        elif result.ok:
            print(f"{path}: valid ({kind}, {how})")
        else:
            print(f"{path}: invalid ({kind}, {how}): {len(result.issues)} error(s)")
            for issue in result.issues:
                print(f"  {issue}")
        if not result.ok and worst == EXIT_OK:
            worst = EXIT_CHECK_FAILED
    return worst


# --- fhir -------------------------------------------------------------------------------------


def _fhir_export(args: argparse.Namespace) -> int:
    from console.interop import FhirError, fhir_bundle

    if args.identity and not args.user:
        raise UsageError("--identity needs --as USER")
    _check_out(args.out)
    with services_of(args) as services:
        data = _case(services, args.case, "fhir")
        try:
            with _identity(services, args, data) as identity:
                audit = _audit_rows(services, data.case_id) if args.audit else None
                try:
                    text = fhir_bundle(data, identity=identity, audit=audit)
                except FhirError as exc:
                    print(f"samu fhir: {exc} (nothing written)", file=sys.stderr)
                    return EXIT_CHECK_FAILED
        except _RefusedError as exc:
            print(f"samu fhir: identity export refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        _audit(
            services,
            "case.export",
            f"case:{data.case_id}",
            {"found": True, "format": "fhir-r4-bundle", "audit": bool(args.audit),
             "identity": bool(args.identity), "to": str(args.out) if args.out else "stdout"},
        )  # fmt: skip
    _write(args.out, text + "\n")
    return EXIT_OK


def _audit_rows(services: Services, case_id: str) -> list[dict[str, Any]]:
    rows = services.store.fetchall(
        "SELECT seq, time, actor, role, terminal, action, object, purpose, outcome"
        " FROM audit_events WHERE object = ? ORDER BY seq",
        (f"case:{case_id}",),
    )
    keys = ("seq", "time", "actor", "role", "terminal", "action", "object", "purpose", "outcome")
    return [dict(zip(keys, r, strict=True)) for r in rows]


# --- idco -------------------------------------------------------------------------------------


def _idco_import(args: argparse.Namespace) -> int:
    import time

    from console.interop import IdcoImport
    from console.services import RegulationCore

    raw = _read(args.file)
    with services_of(args) as services:
        now = time.time()
        core = RegulationCore(services, now=now)
        job = IdcoImport(services.store, services.master_key, services.devices.keyring())
        bad = False
        for line in job.run(raw, source=f"idco:{args.file.name}", receive=core.receive, now=now):
            print(_dumps(line))
            bad = bad or line["status"] == "quarantined"
        core.tick(time.time())
    return EXIT_CHECK_FAILED if bad else EXIT_OK
