"""``samu replay``: scenarios into the real console core, expectations checked.

    samu replay FILE… [--speed N|max] [--transport inproc|serial|mqtt] [--mqtt URL]
                [--db PATH] [--junit OUT.xml] [--json] [--headless]
    samu replay --generate SITESxDEVICES [--rate HZ] [--duration D] [--seed N]
                [--write FILE] [same options]
    samu replay CAPTURE_FILE [--keys KEYS.json] [--db PATH] [--json]

Each scenario runs on a virtual clock into the same ingest, cases, triage and store as
``samu hub``. ``--transport inproc`` (default) keeps everything in process
(``scenarios.InprocReplay``); ``serial`` puts every serial-wired device on a real pty
pair read by the core's serial reader, ``mqtt`` sends every MQTT sender through a real
Mosquitto (a throwaway one on a free 127.0.0.1 port unless ``--mqtt URL`` is given)
(``scenarios.WiredReplay``, whose docstring says how results stay deterministic).
``--speed max`` runs as fast as it can; ``--speed N`` paces the virtual clock to N
simulated seconds per wall second, on every transport (same results).

The report lists every expectation, met or missed, when it was met and the margin to
its deadline; ``--json`` prints one object per expectation then a summary per scenario
(scenarios.md); ``--junit`` writes one testcase per expectation. Exit 0 when everything
is met, 1 when any expectation is missed, 2 for a bad file or usage (or a transport
that failed: one line says why).

``--generate`` is the load generator (``scenarios.generate_load``): a seeded ``[load]``
scenario, replayed at once or written with ``--write FILE``. A capture file
(``samu capture``) is recognised by its header and played back bit-exactly
(``scenarios.replay_capture``): it has no expectations, so the report is what was
ingested and quarantined, exit 0; a capture of another format version, a truncated or
edited one, or one of signed MQTT traffic given without ``--keys`` is refused (exit 2,
see :func:`_capture`).

Without ``--headless``, in a terminal, the tester watches the run live
(``console.tui.ReplayApp``: simulated clock, open cases, verdicts as judged); the run,
the report printed afterwards and the exit code are the headless ones. Without a
terminal it runs headless and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from console.cli._output import check_output, write_output


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="replay scenarios into the console core and check their expectations",
        description="Exit 0 when every expectation is met, 1 when any is missed, 2 for a "
        "bad file or usage. Scenario files: scenarios/library/ or your own (TOML); a "
        "capture file from samu capture is played back as recorded.",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="scenario file, library name, capture")
    p.add_argument("--speed", default="max", metavar="N|max", help="default max")
    p.add_argument(
        "--transport", choices=("inproc", "serial", "mqtt"), default="inproc", help="default inproc"
    )
    p.add_argument("--mqtt", metavar="URL", help="broker for --transport mqtt (default: throwaway)")
    p.add_argument("--junit", type=Path, metavar="OUT.xml", help="write a JUnit report")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--headless", action="store_true", help="no live view (none without a terminal)")
    gen = p.add_argument_group("load generator")
    gen.add_argument("--generate", metavar="SITESxDEVICES", help="a seeded load, e.g. 200x5")
    gen.add_argument("--rate", type=float, default=1.0, metavar="HZ", help="per device (default 1)")
    gen.add_argument("--duration", default="10m", metavar="D", help="e.g. 600, 10m (default 10m)")
    gen.add_argument("--seed", type=int, default=0, metavar="N", help="default 0")
    gen.add_argument(
        "--write", type=Path, metavar="FILE", help="write the scenario (replacing FILE), no replay"
    )
    p.add_argument(
        "--keys",
        type=Path,
        metavar="KEYS.json",
        help="captures of signed MQTT traffic (required for them): the senders' keys, as "
        "written by samu sim --keys-out or samu devices enrol --keys-out",
    )
    p.set_defaults(handler=_replay)


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
        if not value > 0 or value == float("inf"):
            raise ValueError
    except ValueError:
        raise UsageError(f"--speed {text!r}: a positive number or max") from None
    return value


def _generated(args: argparse.Namespace) -> object | None:
    import scenarios

    if args.generate is None:
        for opt in ("write",):
            if getattr(args, opt) is not None:
                raise UsageError(f"--{opt} goes with --generate")
        return None
    try:
        sites, devices = scenarios.parse_fleet(args.generate)
        text = scenarios.generate_load(
            sites, devices, rate_hz=args.rate, duration=args.duration, seed=args.seed
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.write is not None:
        # Seeded, so reproducible: replaced whole, like any derived output (docs/cli.md).
        write_output(args.write, text, option="--write", private=False)
        return text
    return scenarios.loads_scenario(text, f"--generate {args.generate}")


def _replay(args: argparse.Namespace) -> int:
    import scenarios

    speed = _speed(args.speed)
    generated = _generated(args)
    if isinstance(generated, str):
        print(f"wrote {args.write}: replay it with samu replay {args.write}")
        return EXIT_OK
    if not args.files and generated is None:
        raise UsageError("give scenario FILE(s), a capture file, or --generate SITESxDEVICES")
    if args.mqtt and args.transport != "mqtt":
        raise UsageError("--mqtt goes with --transport mqtt")
    if args.junit is not None:  # said now, not after a run of minutes
        check_output(args.junit, "--junit")
    captures = [Path(f) for f in args.files if scenarios.is_capture(Path(f))]
    if captures:
        if len(args.files) != 1 or generated is not None:
            raise UsageError("a capture file is replayed alone")
        return _capture(args, captures[0])
    if args.keys is not None:
        raise UsageError("--keys goes with a capture file")
    loaded = [] if generated is None else [generated]
    for name in args.files:
        try:
            loaded.append(scenarios.load_scenario(name))
        except scenarios.ScenarioError as exc:
            raise UsageError(str(exc)) from None
    live = not args.headless and sys.stdin.isatty() and sys.stdout.isatty()
    if not args.headless and not live:
        print("samu replay: note: no terminal: running headless", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        broker = _broker(args, stack) if args.transport == "mqtt" else None
        if live:
            return _live(args, loaded, speed, broker)
        return _scenarios(args, loaded, speed, broker)


def _live(
    args: argparse.Namespace, loaded: list[object], speed: float | None, broker: object
) -> int:
    """The run on its own thread under the tester's live view; the report is printed
    once the view closes, exactly as headless (console/tui/_replay.py)."""
    from console.tui import ReplayApp, ReplayHooks

    outcome: dict[str, Any] = {"reports": []}

    def runner(hooks: ReplayHooks) -> None:
        try:
            outcome["code"] = _scenarios(
                args, loaded, speed, broker, hooks=hooks, collect=outcome["reports"]
            )
            hooks.ended(None)
        except UsageError as exc:
            outcome["error"] = exc
            hooks.ended(str(exc))
        except Exception as exc:  # shown on screen and raised again after the view closes
            outcome["error"] = exc
            hooks.ended(f"{type(exc).__name__}: {exc}")

    ReplayApp(runner).run()
    for report in outcome.get("reports", []):
        _print(report, as_json=args.json)
    error = outcome.get("error")
    if error is not None:
        raise error
    if "code" not in outcome:
        raise UsageError("the replay was abandoned before it ended (q in the live view)")
    return int(outcome["code"])


def _broker(args: argparse.Namespace, stack: contextlib.ExitStack) -> object:
    """``--mqtt URL`` (loopback only: a replay floods it), else a throwaway Mosquitto."""
    from console.cli._context import broker_of
    from transport import BrokerStartError, ThrowawayBroker

    if args.mqtt:
        broker = broker_of(args, args.mqtt)
        assert broker is not None
        if broker.host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError(f"--mqtt {args.mqtt}: a replay only talks to a loopback broker")
        return broker
    try:
        return stack.enter_context(ThrowawayBroker()).config
    except FileNotFoundError:
        raise UsageError(
            "--transport mqtt needs Mosquitto (Debian's mosquitto package) or --mqtt URL"
        ) from None
    except BrokerStartError as exc:
        raise UsageError(str(exc)) from None


def _scenarios(
    args: argparse.Namespace,
    loaded: list[object],
    speed: float | None,
    broker: object,
    *,
    hooks: Any = None,
    collect: list[Any] | None = None,
) -> int:
    """Each scenario into a fresh store, judged and reported. With ``hooks`` (the live
    view's :class:`console.tui.ReplayHooks`) the view is told of each scenario and its
    verdicts, and the reports are left to print after the view closes."""
    import scenarios
    from console.records import Store
    from console.services import open_services
    from console.settings import Settings

    db_arg = getattr(args, "db", None)
    reports = []
    with tempfile.TemporaryDirectory(prefix="samu-replay-") as tmp:
        for k, scenario in enumerate(loaded):
            assert isinstance(scenario, scenarios.Scenario)
            if db_arg and len(loaded) == 1:
                db = Path(db_arg)
            elif db_arg:
                db = Path(f"{db_arg}.{k}")
            else:
                db = Path(tmp) / f"replay-{k}.db"
            if db_arg and db.exists():
                raise UsageError(f"--db {db}: the file exists (a replay needs a fresh store)")
            with open_services(Settings(db=db), create=True) as services:
                engine = _engine(args, scenario, services, speed, broker)
                if hooks is not None:
                    from console.services import RegulationService
                    from console.tui import ReplayProgress

                    hooks.started(ReplayProgress(
                        scenario=scenario.scenario.name, index=k, total=len(loaded),
                        duration_s=float(scenario.scenario.duration),
                        transport=args.transport, now_s=engine.clock.now,
                        api=RegulationService(services),
                    ))  # fmt: skip
                try:
                    result = engine.run()
                except scenarios.TransportStallError as exc:
                    raise UsageError(str(exc)) from None
            with Store.open(db, readonly=True) as store:
                report = scenarios.evaluate(result, store, db)
            reports.append(report)
            if collect is not None:
                collect.append(report)
            if hooks is None:
                _print(report, as_json=args.json)
            else:
                hooks.judged(_lines(report)[1:], report.missed == 0)
    if args.junit is not None:
        write_output(args.junit, scenarios.junit(reports), option="--junit", private=False)
    return EXIT_OK if all(r.missed == 0 for r in reports) else EXIT_CHECK_FAILED


def _engine(
    args: argparse.Namespace, scenario: Any, services: Any, speed: float | None, broker: object
) -> Any:
    import scenarios

    if args.transport == "inproc":
        return scenarios.InprocReplay(scenario, services, speed=speed)
    return scenarios.WiredReplay(
        scenario,
        services,
        transport=args.transport,
        broker=broker,  # type: ignore[arg-type]
        speed=speed,
    )


#: Where a capture's sender keys come from, for the errors and notes that need them.
_KEYS_HINT = (
    "give --keys FILE, the keys file written by samu sim --keys-out or "
    "samu devices enrol --keys-out"
)


def _capture(args: argparse.Namespace, path: Path) -> int:
    """A capture: verified, played into a fresh core, summarised (no expectations).

    A capture of signed MQTT traffic needs its senders' keys (``--keys``): without them
    every envelope would be quarantined, and a report of "0 accepted" would look like a
    finding about the field when it only says the keys were not given. That run is
    refused before it starts, exit 2: scenarios.md reserves 1 for a missed expectation
    (a capture has none) and 2 for "a bad file or usage", which this is — the command
    line lacks an input the file needs. With ``--keys``, the replay is what a hub with
    those enrolments would have done, exit 0; signed messages from senders the key file
    does not hold, or that fail its MAC check, are pointed out on stderr.
    """
    import scenarios
    from console.ingest import EnrolmentError, read_key_file
    from console.records import Store
    from console.services import open_services
    from console.settings import Settings

    if args.transport != "inproc" or args.generate or args.junit:
        raise UsageError("a capture is played straight into the core: no --transport/--junit")
    try:
        capture = scenarios.read_capture(path)
    except scenarios.CaptureError as exc:
        raise UsageError(str(exc)) from None
    signed = capture.signed_senders()
    if signed and args.keys is None:
        raise UsageError(
            f"{path}: its {sum(signed.values())} MQTT message(s) from {len(signed)} sender(s) "
            f"are signed and cannot be verified without the senders' keys: {_KEYS_HINT}"
        )
    keys: list[Any] = []
    if args.keys is not None:
        try:
            keys = list(read_key_file(args.keys))
        except EnrolmentError as exc:
            raise UsageError(str(exc)) from None
    db_arg = getattr(args, "db", None)
    with tempfile.TemporaryDirectory(prefix="samu-replay-") as tmp:
        db = Path(db_arg) if db_arg else Path(tmp) / "capture.db"
        if db_arg and db.exists():
            raise UsageError(f"--db {db}: the file exists (a replay needs a fresh store)")
        with open_services(Settings(db=db), create=True) as services:
            result = scenarios.replay_capture(capture, services, keys=keys)
        with Store.open(db, readonly=True) as store:
            digest = scenarios.store_digest(store)
            (observations,) = store.fetchone("SELECT count(*) FROM observations")
    summary = {
        "capture": str(path),
        "records": len(capture.records),
        "mqtt_messages": result.mqtt_messages,
        "serial_bytes": result.serial_bytes,
        "frames": result.frames,
        "accepted": result.accepted,
        "quarantined": dict(sorted(result.quarantined.items())),
        "observations": observations,
        "cases_opened": sum(1 for e in result.events if e.event == "case_opened"),
        "store_sha256": digest,
    }
    _key_notes(args.keys, signed, {(s.site, s.device) for s, _ in keys}, result.quarantined)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        q = ", ".join(f"{k} {v}" for k, v in sorted(result.quarantined.items())) or "none"
        print(
            f"{path}: {summary['records']} record(s), {result.mqtt_messages} MQTT message(s), "
            f"{result.serial_bytes} serial byte(s) → {result.frames} frame(s)"
        )
        print(
            f"  {result.accepted} accepted, quarantined: {q}; {observations} observation(s), "
            f"{summary['cases_opened']} case(s) opened; store_sha256 {digest}"
        )
    return EXIT_OK


def _key_notes(
    keys_file: Path | None,
    signed: dict[tuple[str, str], int],
    known: set[tuple[str, str]],
    quarantined: dict[str, int],
) -> None:
    """On stderr: signed messages the key file could not verify (a wrong or stale file
    looks exactly like a field of bad devices, so say which it may be)."""
    if keys_file is None:
        return
    missing = sorted(sender for sender in signed if sender not in known)
    if missing:
        count = sum(signed[s] for s in missing)
        first = "/".join(missing[0])
        print(
            f"samu replay: note: {count} signed message(s) from {len(missing)} sender(s) "
            f"not in {keys_file} (e.g. {first}) were quarantined as unknown_device: is it "
            "the key file of this capture's senders?",
            file=sys.stderr,
        )
    if quarantined.get("mac"):
        print(
            f"samu replay: note: {quarantined['mac']} message(s) failed the MAC check with "
            f"the keys of {keys_file} (a key rotated since, another run's key file, or the "
            "field problem itself)",
            file=sys.stderr,
        )


def _print(report: object, *, as_json: bool) -> None:
    from scenarios import ScenarioReport

    assert isinstance(report, ScenarioReport)
    if as_json:
        for v in report.verdicts:
            print(json.dumps(v.as_dict(report.scenario), ensure_ascii=False))
        print(json.dumps(report.summary(), ensure_ascii=False))
        return
    for line in _lines(report):
        print(line)


def _lines(report: Any) -> list[str]:
    """The text report of one scenario: its name, one line per verdict, the summary."""
    out = [f"{report.scenario} (seed {report.seed})"]
    for v in report.verdicts:
        mark = "met   " if v.met else "MISSED"
        when = f" at {v.at:g} s" if v.at is not None else ""
        margin = f", margin {v.margin_s:g} s" if v.margin_s is not None else ""
        label = v.expect.id or v.expect.description or v.expect.what
        out.append(f"  {mark} [{v.index}] {v.expect.what}: {label}{when}{margin} — {v.detail}")
    out.append(f"  {report.met} met, {report.missed} missed; store_sha256 {report.store_sha256}")
    return out
