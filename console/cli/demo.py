"""``samu demo``: the whole system on the embedded default (console.md, ``make demo``).

    samu demo [--seconds N] [--headless] [--every S]

One process, one asyncio loop: a throwaway Mosquitto on a free 127.0.0.1 port (the
in-process bus when the binary is missing, said on screen), the built-in lively
scenario ``demo-garde`` played on the wall clock by the simulator (EHPAD gateways,
an ICD transmitter, a video gateway, nurses' bilans), the hub (ingest, cases, triage,
store) and the régulation console, on a fresh demo database in a temporary directory
with the demo physician account ``demo-regulateur``: its password and current TOTP code
are shown on the login screen, marked DEMO.

``--headless`` runs the same system without the console and prints the board as one
JSON object per line every ``--every`` seconds (for scripts and CI), for ``--seconds``
(default 60). Exit 0 at the end; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli._context import settings_of
from console.cli._main import EXIT_OK, UsageError

if TYPE_CHECKING:
    from console.services import Services
    from console.tui import DemoAccount
    from transport import BrokerConfig

DEMO_USER = "demo-regulateur"
DEMO_SCENARIO = "demo-garde"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``samu demo``."""
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="the whole system: simulated EHPADs, broker, hub and the régulation console",
        description="Runs a throwaway Mosquitto on 127.0.0.1, the simulator playing a lively "
        "built-in scenario (desaturation escalating to P1, stroke bilan with video consent, "
        "ICD shock), the hub and the régulation console on a fresh demo database. Sign in "
        f"as {DEMO_USER} with the password and TOTP code shown on the login screen.",
    )
    p.add_argument(
        "--seconds",
        type=float,
        metavar="N",
        help="stop after N seconds (default: until ctrl+q; with --headless: 60)",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="no console: print the board as JSON lines (for scripts and CI)",
    )
    p.add_argument(
        "--every",
        type=float,
        default=3.0,
        metavar="S",
        help="with --headless, print the board every S seconds (default: 3)",
    )
    p.set_defaults(handler=_run)


@dataclass
class DemoSetup:
    folder: Path
    account: DemoAccount


def _password() -> str:
    """A fresh demo password, easy to type (never a fixed one: the database is real)."""
    return f"Garde-{secrets.token_hex(3)}-{secrets.token_hex(3)}"


@contextlib.contextmanager
def _demo_services(args: argparse.Namespace) -> Iterator[tuple[Services, DemoSetup]]:
    from console.auth import LocalOperator
    from console.services import ServicesError, open_services
    from console.tui import DemoAccount

    settings = settings_of(args)
    if getattr(args, "db", None):
        db = Path(args.db)
        if db.exists():
            raise UsageError(f"--db {db}: the file exists (the demo makes a fresh database)")
        folder = db.parent
    else:
        folder = Path(tempfile.mkdtemp(prefix="samu-demo-"))
        db = folder / "demo.db"
    # A newcomer reads before acting: the demo locks after 10 min idle, not the
    # installation's default (a lock mid-tour would look like a fault).
    console = settings.console.model_copy(
        update={"lock_idle_s": max(settings.console.lock_idle_s, 600.0)}
    )
    settings = settings.model_copy(update={"db": db, "console": console})
    try:
        with open_services(settings, create=True) as services:
            password = _password()
            enrolment = services.accounts.create_user(
                LocalOperator.current(), DEMO_USER, ["regulateur"], password
            )
            account = DemoAccount(DEMO_USER, password, enrolment.otpauth_uri)
            yield services, DemoSetup(folder, account)
    except ServicesError as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _broker() -> Iterator[tuple[BrokerConfig | None, str]]:
    """The throwaway broker, or ``None`` (in-process bus) with the line that says so."""
    from transport import BrokerStartError, ThrowawayBroker, mosquitto_binary

    if mosquitto_binary() is None:
        yield (
            None,
            "transport: in-process bus (mosquitto is not installed: apt-get install mosquitto)",
        )
        return
    try:
        broker = ThrowawayBroker().start()
    except BrokerStartError as exc:
        yield None, f"transport: in-process bus (mosquitto did not start: {exc})"
        return
    try:
        yield broker.config, f"transport: MQTT through mosquitto on 127.0.0.1:{broker.port}"
    finally:
        broker.stop()


def _run(args: argparse.Namespace) -> int:
    import scenarios

    if args.seconds is not None and args.seconds <= 0:
        raise UsageError(f"--seconds {args.seconds:g}: give a positive number of seconds")
    if args.every <= 0:
        raise UsageError(f"--every {args.every:g}: give a positive number of seconds")
    if not args.headless and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("no terminal here: run `samu demo --headless` (board as JSON lines)")
    scenario = scenarios.load_scenario(DEMO_SCENARIO)
    with _demo_services(args) as (services, setup), _broker() as (broker, transport_note):
        log = (setup.folder / "hub.log").open("a", encoding="utf-8")
        with log:
            live = scenarios.LiveRun(scenario, services, broker=broker, log=log)
            if args.headless:
                seconds = 60.0 if args.seconds is None else args.seconds
                print(transport_note, file=sys.stderr)
                print(f"demo database: {services.db_path}", file=sys.stderr)
                asyncio.run(_headless(live, setup, seconds, args.every))
            else:
                _console(live, services, setup, transport_note, args.seconds)
    print(f"demo database kept in {setup.folder} (hub log: hub.log)", file=sys.stderr)
    return EXIT_OK


def _board_line(snapshot: Any, t: float, transport: str) -> str:
    rows = [
        {
            "case_id": r.case_id,
            "site": r.site,
            "priority": r.decided_priority or r.suggested_priority,
            "suggested_priority": r.suggested_priority,
            "news2": r.news2,
            "qsofa": r.qsofa,
            "status": r.status,
            "reasons": list(r.reasons),
            "implant_alerts": list(r.implant_alerts),
            "video": r.video,
        }
        for r in snapshot.rows
    ]
    return json.dumps(
        {"t": round(t, 1), "transport": transport, "version": snapshot.version, "cases": rows},
        ensure_ascii=False,
    )


async def _headless(live: Any, setup: DemoSetup, seconds: float, every: float) -> None:
    started = time.monotonic()
    runner = asyncio.create_task(live.run(), name="demo")
    try:
        while live.hub.api is None or not live.hub.ready.is_set():
            if runner.done():
                runner.result()
                return
            await asyncio.sleep(0.05)  # polling a condition (the hub is up), not a fixed wait
        api = live.hub.api
        account = setup.account
        session = await api.login(account.user_id, account.password, account.totp(), "demo")
        next_at = started
        while True:
            now = time.monotonic()
            if now - started >= seconds or runner.done():
                break
            if now >= next_at:
                snapshot = await api.board(session)
                print(_board_line(snapshot, now - started, live.transport), flush=True)
                next_at += every
            await asyncio.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
        await api.logout(session)
    finally:
        live.stop()
        await runner


def _console(
    live: Any, services: Services, setup: DemoSetup, note: str, seconds: float | None
) -> None:
    from console.tui import Backend, RegulationApp

    async def start(backend: Backend) -> None:
        def ready() -> None:
            backend.api = live.hub.api

        await live.run(on_ready=ready)

    backend = Backend(
        services=services,
        start=start,
        stop=live.stop,
        live=True,
        terminal="demo",
        notes=[
            note,
            f"demo database: {services.db_path}",
            f"privacy lock after {services.settings.console.lock_idle_s / 60:.0f} min idle",
        ],
        demo=setup.account,
    )
    RegulationApp(backend, quit_after_s=seconds).run()
