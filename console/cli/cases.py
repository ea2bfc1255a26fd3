"""``samu records cases|show|quarantine``: what the core concluded, from the command line.

Exactly as cases.md: ``--json`` prints one JSON object per line, times are ISO 8601 with
offset, exit 0 ok, 1 not found, 2 usage. Reading clinical data from the command line is
audited as the local operator (``case.list``, ``case.read``, ``quarantine.read``); the
database may be a live hub's.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from console.cli._context import services_of
from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK

_CASE_COLUMNS = (
    "case_id, status, site, suggested_priority, decided_priority, news2, news2_complete,"
    " qsofa, reasons, implant_alerts, sources, opened_at, updated_at"
)


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
        print(json.dumps(case, ensure_ascii=False) if args.json else _line(case))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    import sys

    with services_of(args) as services:
        store = services.store
        sql = f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = ?"  # noqa: S608
        row = store.fetchone(sql, (args.case_id,))
        if row is None:
            _audit(services, "case.read", f"case:{args.case_id[:80]}", {"found": False})
            print(f"samu records: no case {args.case_id!r}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        case = _case(row, _patients(store).get(args.case_id, []))
        case["timeline"] = [
            {"at": at, "kind": kind, "detail": json.loads(detail)}
            for at, kind, detail in store.fetchall(
                "SELECT at, kind, detail FROM case_timeline WHERE case_id = ? ORDER BY event_id",
                (args.case_id,),
            )
        ]
        case["decisions"] = []
        case["video"] = []
        _audit(services, "case.read", f"case:{args.case_id}", {"found": True})
    if args.json:
        print(json.dumps(case, ensure_ascii=False))
        return EXIT_OK
    print(_line(case))
    print("reasons: " + ("; ".join(case["reasons"]) or "-"))
    for event in case["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items() if k != "reasons")
        print(f"  {event['at']}  {event['kind']:<16} {detail}")
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
            print(f"{r['received_at']}  {r['reason']:<14} {who}  {r['source']}  {r['detail']}")
    return EXIT_OK
