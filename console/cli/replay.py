"""``samu replay``: scenarios into the real console core, expectations checked.

    samu replay FILE… [--speed N|max] [--transport inproc|serial|mqtt] [--db PATH]
                [--junit OUT.xml] [--json] [--headless]

Each scenario runs on a virtual clock through the EHPAD gateway into the same ingest,
cases, triage and store as ``samu hub`` (``scenarios.InprocReplay``). The report lists
every expectation, met or missed, when it was met and the margin to its deadline;
``--json`` prints one object per expectation then a summary per scenario (scenarios.md);
``--junit`` writes one testcase per expectation. Exit 0 when everything is met, 1 when
any expectation is missed, 2 for a bad file or usage.

What this version does not do yet, said rather than faked: ``--transport serial`` and
``mqtt`` (the in-process transport is used: same ingest, no broker), scaled real time
(``--speed N`` runs on the virtual clock too: results are identical, only the pacing of
a live view would differ), and the live console view (the run is headless).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, UsageError


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="replay scenarios into the console core and check their expectations",
        description="Exit 0 when every expectation is met, 1 when any is missed, 2 for a "
        "bad file or usage. Scenario files: scenarios/library/ or your own (TOML).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario file or library name")
    p.add_argument("--speed", default="max", metavar="N|max", help="default max")
    p.add_argument(
        "--transport", choices=("inproc", "serial", "mqtt"), default="inproc", help="default inproc"
    )
    p.add_argument("--junit", type=Path, metavar="OUT.xml", help="write a JUnit report")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--headless", action="store_true", help="no live view (the default here)")
    p.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    import scenarios
    from console.records import Store
    from console.services import open_services
    from console.settings import Settings

    if args.speed != "max":
        try:
            if float(args.speed) <= 0:
                raise ValueError
        except ValueError:
            raise UsageError(f"--speed {args.speed!r}: a positive number or max") from None
    loaded = []
    for name in args.files:
        try:
            loaded.append(scenarios.load_scenario(name))
        except scenarios.ScenarioError as exc:
            raise UsageError(str(exc)) from None
    notes = []
    if args.transport != "inproc":
        notes.append(f"--transport {args.transport} is not available yet: replaying in process")
    if args.speed != "max":
        notes.append("--speed N runs on the virtual clock too (same results, no pacing)")
    if not args.headless:
        notes.append("no live console view yet: running headless")
    for note in notes:
        print(f"samu replay: note: {note}", file=sys.stderr)
    db_arg = getattr(args, "db", None)
    reports = []
    with tempfile.TemporaryDirectory(prefix="samu-replay-") as tmp:
        for k, scenario in enumerate(loaded):
            if db_arg and len(loaded) == 1:
                db = Path(db_arg)
                if db.exists():
                    raise UsageError(f"--db {db}: the file exists (a replay needs a fresh store)")
            elif db_arg:
                db = Path(f"{db_arg}.{k}")
            else:
                db = Path(tmp) / f"replay-{k}.db"
            with open_services(Settings(db=db), create=True) as services:
                result = scenarios.InprocReplay(scenario, services).run()
            with Store.open(db, readonly=True) as store:
                report = scenarios.evaluate(result, store, db)
            reports.append(report)
            _print(report, as_json=args.json)
    if args.junit is not None:
        try:
            args.junit.write_bytes(scenarios.junit(reports))
        except OSError as exc:
            raise UsageError(f"--junit {args.junit}: {exc.strerror or exc}") from None
    return EXIT_OK if all(r.missed == 0 for r in reports) else EXIT_CHECK_FAILED


def _print(report: object, *, as_json: bool) -> None:
    from scenarios import ScenarioReport

    assert isinstance(report, ScenarioReport)
    if as_json:
        for v in report.verdicts:
            print(json.dumps(v.as_dict(report.scenario), ensure_ascii=False))
        print(json.dumps(report.summary(), ensure_ascii=False))
        return
    print(f"{report.scenario} (seed {report.seed})")
    for v in report.verdicts:
        mark = "met   " if v.met else "MISSED"
        when = f" at {v.at:g} s" if v.at is not None else ""
        margin = f", margin {v.margin_s:g} s" if v.margin_s is not None else ""
        label = v.expect.id or v.expect.description or v.expect.what
        print(f"  {mark} [{v.index}] {v.expect.what}: {label}{when}{margin} — {v.detail}")
    print(f"  {report.met} met, {report.missed} missed; store_sha256 {report.store_sha256}")
