"""``samu records cases|show|quarantine``: what the core concluded, from the command line.

Exactly as cases.md: ``--json`` prints one JSON object per line, times are ISO 8601 with
offset, exit 0 ok, 1 not found, 2 usage. Reading clinical data from the command line is
audited as the local operator (``case.list``, ``case.read``, ``quarantine.read``); the
database may be a live hub's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from console.cli._context import services_of, settings_of
from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK

_CASE_COLUMNS = (
    "case_id, status, site, suggested_priority, decided_priority, news2, news2_complete,"
    " qsofa, reasons, implant_alerts, sources, opened_at, updated_at"
)


def printable(text: str) -> str:
    """Stored text as a terminal may show it (control characters escaped: a reason or a
    bilan from outside must not drive the terminal; ``--json`` escapes them anyway)."""
    from protocols import printable as escaped

    return escaped(text)


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    records = sub.add_parser(
        "records", parents=[common], help="cases, their timeline and the quarantine"
    )
    rsub = records.add_subparsers(dest="records_command", metavar="ACTION", required=True)
    cases = rsub.add_parser("cases", parents=[common], help="one line per case")
    cases.add_argument("--open", action="store_true", help="open cases only (PROGRAM, ACTIF)")
    cases.add_argument("--json", action="store_true", help="one JSON object per line")
    cases.set_defaults(handler=_cases)
    show = rsub.add_parser("show", parents=[common], help="a case with its timeline")
    show.add_argument("case_id", metavar="CASE_ID")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(handler=_show)
    d = rsub.add_parser(
        "decide",
        parents=[common],
        help="record and sign a régulation decision (password and TOTP asked)",
        description="Codes are Hub Santé's (priorite, niveauSoin, typeDecision, "
        "typeRessource, typeOrientation). A reason is required when the priority differs "
        "from the suggestion. Password and TOTP are asked at a hidden prompt, or read "
        "from SAMU_PASSWORD and SAMU_TOTP for automation.",
    )
    d.add_argument("case_id", metavar="CASE_ID")
    d.add_argument("--as", dest="user", required=True, metavar="USER", help="your user id")
    d.add_argument("--priority", required=True, metavar="P", help="P0, P1, P2 or P3")
    d.add_argument("--care-level", required=True, metavar="R", help="R1, R2, R3 or R4")
    d.add_argument(
        "--decision", required=True, metavar="TYPE", help="CONSEIL, PMT, INTER, ORIENT, …"
    )
    d.add_argument("--resource", metavar="CODE", help="e.g. SMUR.ADULT, LIBERAL.MG, TSU")
    d.add_argument("--orientation", metavar="CODE", help="e.g. URGENCES, DOMICILE, EPHAD")
    d.add_argument("--reason", metavar="TEXT", help="why, when overriding the suggestion")
    d.add_argument("--json", action="store_true", help="print the decision as JSON")
    d.set_defaults(handler=_decide)
    pv = rsub.add_parser(
        "provenance",
        parents=[common],
        help="the chain from a signed decision back to the frames (exit 1 if broken)",
    )
    pv.add_argument("--decision", required=True, metavar="ID")
    pv.add_argument("--json", action="store_true", help="one JSON object")
    pv.set_defaults(handler=_provenance)
    cr = rsub.add_parser(
        "compte-rendu",
        parents=[common],
        help="print a case's compte rendu; --as USER --sign signs it",
    )
    cr.add_argument("case_id", metavar="CASE_ID")
    cr.add_argument("--as", dest="user", metavar="USER", help="your user id (with --sign)")
    cr.add_argument("--sign", action="store_true", help="sign it (password and TOTP asked)")
    cr.add_argument(
        "--format",
        choices=("md", "json", "fhir", "rs-eda"),
        default="md",
        help="md (default), json, fhir (R4 document Bundle) or rs-eda (Hub Santé "
        "createCaseHealth, pseudonymous); see docs/interop.md",
    )
    cr.set_defaults(handler=_compte_rendu)
    call = rsub.add_parser(
        "call",
        parents=[common],
        help="open a case by hand on a call, or add the call to the resident's open case",
        description="For a resident the centre knows (data received, or a bound device). "
        "Codes are Hub Santé's: --motif from the list motif (M03.06 Douleur thoracique …), "
        "--caller from typeAppelant (SANTE.INF Infirmier …). Password and TOTP asked, or "
        "SAMU_PASSWORD and SAMU_TOTP. Roles: regulateur, arm.",
    )
    call.add_argument("--as", dest="user", required=True, metavar="USER", help="your user id")
    call.add_argument("--site", required=True, metavar="SITE", help="the EHPAD's site id")
    call.add_argument("--resident", required=True, metavar="REF", help="the site's resident ref")
    call.add_argument("--motif", required=True, metavar="CODE", help="Hub Santé motif code")
    call.add_argument("--caller", metavar="CODE", help="Hub Santé typeAppelant code")
    call.add_argument("--json", action="store_true", help="print the reply as JSON")
    call.set_defaults(handler=_call)
    for name, to, who in (
        ("validate", "VALIDE", "a régulateur, once its compte rendu is signed (ACHEVE)"),
        ("close", "CLOTURE", "a régulateur or an ARM, once it is validated (VALIDE)"),
    ):
        step = rsub.add_parser(
            name,
            parents=[common],
            help=f"{name} a finished case ({to}): {who}",
            description=f"One step of a finished case: {to}, by {who}. Password and TOTP "
            "asked, or SAMU_PASSWORD and SAMU_TOTP.",
        )
        step.add_argument("case_id", metavar="CASE_ID")
        step.add_argument("--as", dest="user", required=True, metavar="USER", help="your user id")
        step.set_defaults(handler=_step, to=to)
    q = rsub.add_parser("quarantine", parents=[common], help="every quarantined item")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(handler=_quarantine)


def _case(row: Any, patients: list[str]) -> dict[str, Any]:
    (
        case_id,
        status,
        site,
        suggested,
        decided,
        news2,
        complete,
        qsofa,
        reasons,
        alerts,
        sources,
        opened,
        updated,
    ) = row
    return {
        "case_id": case_id,
        "status": status,
        "site": site,
        "patients": patients,
        "suggested_priority": suggested,
        "decided_priority": decided,
        "news2": news2,
        "news2_complete": bool(complete),
        "qsofa": qsofa,
        "reasons": json.loads(reasons),
        "implant_alerts": json.loads(alerts),
        "sources": json.loads(sources),
        "opened_at": opened,
        "updated_at": updated,
    }


def _patients(store: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for case_id, rid in store.fetchall(
        "SELECT case_id, resident_id FROM case_residents ORDER BY rowid"
    ):
        out.setdefault(case_id, []).append(rid)
    return out


def _line(case: dict[str, Any]) -> str:
    news2 = "-" if case["news2"] is None else str(case["news2"])
    decided = case["decided_priority"] or "-"
    return (
        f"{case['case_id']}  {case['status']}  {case['site']}  "
        f"suggested={case['suggested_priority']}  decided={decided}  NEWS2={news2}"
        f"{'' if case['news2_complete'] else '?'}  sources={','.join(case['sources'])}"
        f"  opened={case['opened_at']}"
    )


def _audit(services: Any, action: str, obj: str, detail: dict[str, Any]) -> None:
    from console.records import AuditContext

    services.store.append_audit(AuditContext.local().event(action, obj, detail=detail))


def _cases(args: argparse.Namespace) -> int:
    with services_of(args) as services:
        store = services.store
        where = " WHERE status IN ('PROGRAM', 'ACTIF')" if args.open else ""
        rows = store.fetchall(
            f"SELECT {_CASE_COLUMNS} FROM cases{where} ORDER BY opened_ts, case_id"  # noqa: S608
        )
        patients = _patients(store)
        _audit(services, "case.list", "cases", {"count": len(rows), "open_only": args.open})
    for row in rows:
        case = _case(row, patients.get(row[0], []))
        print(json.dumps(case, ensure_ascii=False) if args.json else printable(_line(case)))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    import sys

    with services_of(args) as services:
        store = services.store
        sql = f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = ?"  # noqa: S608
        row = store.fetchone(sql, (args.case_id,))
        if row is None:
            _audit(services, "case.read", f"case:{args.case_id[:80]}", {"found": False})
            print(
                f"samu records: no case {printable(args.case_id[:100])!r} (case ids are listed by"
                " samu records cases)",
                file=sys.stderr,
            )
            return EXIT_CHECK_FAILED
        case = _case(row, _patients(store).get(args.case_id, []))
        case["timeline"] = [
            {"at": at, "kind": kind, "detail": json.loads(detail)}
            for at, kind, detail in store.fetchall(
                "SELECT at, kind, detail FROM case_timeline WHERE case_id = ? ORDER BY event_id",
                (args.case_id,),
            )
        ]
        case["decisions"] = _decisions_of(services, args.case_id)
        case["video"] = [
            {"session": v[0], "event": v[1], "at": v[2], "by": v[3], "relation": v[4], "how": v[5]}
            for v in store.fetchall(
                "SELECT session, event, at, consent_by, relation, how FROM video_events"
                " WHERE case_ref = ? AND event LIKE 'consent_%' ORDER BY event_id",
                (args.case_id,),
            )
        ]
        _audit(services, "case.read", f"case:{args.case_id}", {"found": True})
    if args.json:
        print(json.dumps(case, ensure_ascii=False))
        return EXIT_OK
    print(printable(_line(case)))
    print(printable("reasons: " + ("; ".join(case["reasons"]) or "-")))
    for event in case["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items() if k != "reasons")
        print(printable(f"  {event['at']}  {event['kind']:<16} {detail}"))
    return EXIT_OK


def _quarantine(args: argparse.Namespace) -> int:
    from console.ingest import quarantine_rows

    with services_of(args) as services:
        rows = quarantine_rows(services.store, services.master_key)
        _audit(services, "quarantine.read", "quarantine", {"count": len(rows)})
    for r in rows:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            who = f"{r['site']}/{r['device']}" if r["device"] else "-"
            line = f"{r['received_at']}  {r['reason']:<14} {who}  {r['source']}  {r['detail']}"
            print(printable(line))
    return EXIT_OK


@contextmanager
def _signed_in(services: Any, user: str) -> Iterator[Any]:
    """A session of ``user`` (password and TOTP prompted, or SAMU_PASSWORD/SAMU_TOTP),
    logged out afterwards; ``None`` when the login is refused (said on stderr, exit 1)."""
    import sys

    from console.auth import AuthError
    from console.cli._context import prompt_secret
    from console.records import local_terminal

    password = prompt_secret("Password: ", "SAMU_PASSWORD")
    totp = prompt_secret("TOTP code: ", "SAMU_TOTP")
    try:
        session = services.accounts.login(user, password, totp, local_terminal())
    except AuthError as exc:
        print(f"samu records: {exc}", file=sys.stderr)
        yield None
        return
    try:
        yield session
    finally:
        services.accounts.logout(session)


def _decisions_of(services: Any, case_id: str) -> list[dict[str, Any]]:
    rows = services.store.fetchall(
        "SELECT decision_id, intention, author, priority, care_level, decision_type,"
        " resource, orientation, suggested_priority, triage_result, signed_at, key_id"
        " FROM decisions WHERE case_id = ? ORDER BY intention",
        (case_id,),
    )
    keys = (
        "decision_id", "intention", "author", "priority", "care_level", "decision_type",
        "resource", "orientation", "suggested_priority", "triage_result", "signed_at", "key_id",
    )  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _decide(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from console.auth import Denied
    from console.cases import CodesError, DecisionError, DecisionRequest, Decisions, code_labels
    from console.cli._main import UsageError

    try:
        request = DecisionRequest(
            case_id=args.case_id,
            priority=args.priority,
            care_level=args.care_level,
            decision_type=args.decision,
            resource=args.resource,
            orientation=args.orientation,
            reason=args.reason,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "decision"
        raise UsageError(f"--{where.replace('_', '-')}: {first['msg']}") from None
    try:
        code_labels(request, settings_of(args).hub_sante_dir)  # before any login
    except CodesError as exc:
        raise UsageError(str(exc)) from None
    with services_of(args) as services, _signed_in(services, args.user) as session:
        if session is None:
            return EXIT_CHECK_FAILED
        decisions = Decisions(
            services.store,
            services.accounts,
            services.master_key,
            codes_dir=services.settings.hub_sante_dir,
        )
        try:
            decision = decisions.decide(session, request, now=datetime.now(UTC))
        except CodesError as exc:
            raise UsageError(str(exc)) from None
        except (Denied, DecisionError) as exc:
            print(f"samu records: decision refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
    if args.json:
        print(json.dumps(decision.as_dict(), ensure_ascii=False))
    else:
        print(
            f"decision {decision.decision_id} on {decision.case_id}: {decision.priority} "
            f"{decision.care_level} {decision.decision_type} (intention {decision.intention}, "
            f"signed by {decision.author} with key {decision.key_id})"
        )
    return EXIT_OK


def _call(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from console.auth import Denied
    from console.cases import CaseError, CodesError, ManualCaseRequest, load_codes, open_by_hand
    from console.cli._main import UsageError

    try:
        request = ManualCaseRequest(
            site=args.site, resident=args.resident, motif=args.motif, caller=args.caller
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "call"
        raise UsageError(f"--{where}: {first['msg']}") from None
    settings = settings_of(args)
    try:  # codes checked before any login: a typo costs no password
        codes = load_codes(settings.hub_sante_dir)
        codes["motif"].label(request.motif)
        if request.caller is not None:
            codes["caller"].label(request.caller)
    except CodesError as exc:
        raise UsageError(str(exc)) from None
    with services_of(args) as services, _signed_in(services, args.user) as session:
        if session is None:
            return EXIT_CHECK_FAILED
        try:
            case_id, opened = open_by_hand(
                services.store,
                services.accounts,
                session,
                request,
                centre=services.settings.centre,
                codes_dir=services.settings.hub_sante_dir,
                now=datetime.now(UTC),
            )
        except (Denied, CaseError) as exc:
            print(f"samu records: call refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
    if args.json:
        print(json.dumps({"case_id": case_id, "opened": opened}))
    else:
        print(f"{'opened' if opened else 'added to the open case'} {case_id}")
    return EXIT_OK


def _step(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from console.auth import Denied
    from console.cases import CaseError, StatusRequest, advance
    from console.cli._main import UsageError

    try:
        request = StatusRequest(case_id=args.case_id, to=args.to)
    except ValidationError as exc:
        raise UsageError(f"CASE_ID: {exc.errors()[0]['msg']}") from None
    with services_of(args) as services, _signed_in(services, args.user) as session:
        if session is None:
            return EXIT_CHECK_FAILED
        try:
            status = advance(
                services.store, services.accounts, session, request, now=datetime.now(UTC)
            )
        except (Denied, CaseError) as exc:
            print(f"samu records: refused: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
    print(f"{request.case_id}: {status}")
    return EXIT_OK


def _provenance(args: argparse.Namespace) -> int:
    import base64
    import sys

    from console.cases import Decisions
    from console.ingest import raw_opener

    broken: list[str] = []
    with services_of(args) as services:
        store = services.store
        decisions = Decisions(store, services.accounts, services.master_key)
        try:
            decision = decisions.get(args.decision)
        except KeyError:
            _audit(
                services, "decision.provenance", f"decision:{args.decision[:80]}", {"found": False}
            )
            print(
                f"samu records: no decision {printable(args.decision[:100])!r} (a case's"
                " decisions are listed by samu records show CASE_ID)",
                file=sys.stderr,
            )
            return EXIT_CHECK_FAILED
        content, signature_ok = decisions.content(decision.decision_id)
        if not signature_ok:
            broken.append("the decision's signature does not verify")
        chain: dict[str, Any] = {
            "decision": {**decision.as_dict(), "signature_valid": signature_ok},
            "triage_result": None,
            "observations": [],
            "messages": [],
        }
        result_id = content.get("payload", {}).get("triage_result")
        if result_id != decision.triage_result:
            broken.append("the signed content names another triage result than the record")
        row = None
        if result_id is not None:
            row = store.fetchone(
                "SELECT result_id, resident_id, at, priority, news2, qsofa, reasons,"
                " policy_version, policy_sha256, observations FROM triage_results"
                " WHERE result_id = ?",
                (result_id,),
            )
        if row is None:
            broken.append(f"triage result {result_id} is missing")
        else:
            used = json.loads(row[9])
            chain["triage_result"] = {
                "result_id": row[0],
                "resident": row[1],
                "at": row[2],
                "priority": row[3],
                "news2": row[4],
                "qsofa": row[5],
                "reasons": json.loads(row[6]),
                "policy_version": row[7],
                "policy_sha256": row[8],
                "observations": used,
            }
            open_raw = raw_opener(services.master_key)
            messages: set[int] = set()
            for obs_id in used:
                o = store.fetchone(
                    "SELECT obs_id, msg_id, code, value, coded, unit, method, measured_at,"
                    " clock_skew FROM observations WHERE obs_id = ?",
                    (obs_id,),
                )
                if o is None:
                    broken.append(f"observation {obs_id} is missing")
                    continue
                chain["observations"].append(
                    {
                        "obs_id": o[0],
                        "message": o[1],
                        "code": o[2],
                        "value": o[4] if o[4] is not None else o[3],
                        "unit": o[5],
                        "method": o[6],
                        "measured_at": o[7],
                        "clock_skew": bool(o[8]),
                    }
                )
                messages.add(int(o[1]))
            for msg_id in sorted(messages):
                m = store.fetchone(
                    "SELECT msg_id, envelope_id, site, device, kind, source, received_at, raw"
                    " FROM ingest_messages WHERE msg_id = ?",
                    (msg_id,),
                )
                if m is None:
                    broken.append(f"message {msg_id} is missing")
                    continue
                chain["messages"].append(
                    {
                        "msg_id": m[0],
                        "envelope_id": m[1],
                        "site": m[2],
                        "device": m[3],
                        "kind": m[4],
                        "source": m[5],
                        "received_at": m[6],
                        "raw": base64.b64encode(open_raw(bytes(m[7]))).decode("ascii"),
                    }
                )
        chain["complete"] = not broken
        chain["problems"] = broken
        _audit(
            services,
            "decision.provenance",
            f"case:{decision.case_id}",
            {"decision": decision.decision_id, "complete": not broken},
        )
    if args.json:
        print(json.dumps(chain, ensure_ascii=False))
    else:
        d = chain["decision"]
        print(
            f"decision {d['decision_id']} by {d['author']}: {d['priority']} {d['care_level']} "
            f"{d['decision_type']} - signature {'valid' if signature_ok else 'INVALID'}"
        )
        t = chain["triage_result"]
        if t is not None:
            print(
                f"  <- triage result {t['result_id']} at {t['at']}: {t['priority']} "
                f"NEWS2 {t['news2']} (policy {t['policy_version']}, "
                f"sha256 {t['policy_sha256'][:12]}…)"
            )
        for o in chain["observations"]:
            print(f"     <- observation {o['obs_id']} {o['code']}={o['value']} ({o['method']})")
        for m in chain["messages"]:
            print(
                f"        <- message {m['msg_id']} {m['kind']} from {m['source']}"
                f" at {m['received_at']}"
            )
        for p in broken:
            print(f"BROKEN: {p}")
    return EXIT_OK if not broken else EXIT_CHECK_FAILED


def _compte_rendu(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    from console.auth import Denied
    from console.cases import (
        Decisions,
        ReportError,
        build_compte_rendu,
        render_markdown,
        sign_compte_rendu,
    )
    from console.cli._main import UsageError
    from console.ingest import raw_opener

    if args.sign and not args.user:
        raise UsageError("--sign needs --as USER")
    with services_of(args) as services:
        decisions = Decisions(services.store, services.accounts, services.master_key)
        try:
            report = build_compte_rendu(
                services.store,
                decisions,
                args.case_id,
                open_raw=raw_opener(services.master_key),
                now=datetime.now(UTC),
            )
        except ReportError as exc:
            _audit(services, "report.read", f"case:{args.case_id[:80]}", {"found": False})
            print(f"samu records: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        _audit(services, "report.read", f"case:{args.case_id}", {"found": True})
        if args.sign:
            with _signed_in(services, args.user) as session:
                if session is None:
                    return EXIT_CHECK_FAILED
                try:
                    report["report_id"] = sign_compte_rendu(
                        services.store, services.accounts, services.master_key, session, report
                    )
                except (Denied, ReportError) as exc:
                    print(f"samu records: signature refused: {exc}", file=sys.stderr)
                    return EXIT_CHECK_FAILED
        if args.format in ("fhir", "rs-eda"):
            text = _interop_format(args, services, args.case_id)
    if args.format in ("fhir", "rs-eda"):
        print(text)
        return EXIT_OK
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        sys.stdout.write(printable(render_markdown(report)))
        if args.sign:
            print(f"\nSigné : {report['report_id']} par {args.user}")
    return EXIT_OK


def _interop_format(args: argparse.Namespace, services: Any, case_id: str) -> str:
    """The compte rendu's case as FHIR (document Bundle) or RS-EDA, never with identity
    traits (``samu fhir export`` / ``samu hub-sante export --identity`` for those)."""
    from console.cases import CodesError, default_dir
    from console.cli._main import UsageError
    from console.interop import (
        FhirError,
        HubSanteError,
        export_rs_eda,
        fhir_bundle,
        load_case,
        load_schemas,
    )

    data = load_case(services.store, services.accounts, services.master_key, case_id)
    if args.format == "fhir":
        try:
            return fhir_bundle(data, identity=False)
        except FhirError as exc:
            raise UsageError(str(exc)) from None
    directory = settings_of(args).hub_sante_dir or default_dir()
    try:
        message = {"createCaseHealth": export_rs_eda(data, directory, identity=False).wire()}
        result = load_schemas(directory.resolve()).validate(message)
    except (CodesError, HubSanteError) as exc:
        raise UsageError(str(exc)) from None
    if not result.ok:
        raise UsageError("; ".join(str(i) for i in result.issues[:5]))
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
