"""``samu station``: the EHPAD nurse station (console.md, command line contract).

    samu station --site ID [--db PATH] [--hub URL] [--serial PORT:FORMAT]… [--roster FILE]
    samu station --serve [--port N] --site ID …

The nurse signs in (same login as the console: an ``ide_ehpad`` account of this site),
picks the resident, sees the live readings of the devices plugged into the station,
fills in the bilan and sends it; the SAMU's acknowledgement and decision come back on
screen. The bilan is sealed with the station's enrolled key (``{site}/nurse-station``)
and goes over MQTT to the hub with ``--hub URL``, or, without it, straight into the
régulation core on the local database (the embedded shape: no ``samu hub`` must run on
that database at the same time). ``--serve`` serves the same app to a browser on
127.0.0.1 through textual-serve (EHPAD nurses work on a PC or tablet browser).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli._context import broker_of, services_of, settings_of
from console.cli._main import EXIT_OK, UsageError

if TYPE_CHECKING:
    from console.services import Services
    from console.tui import Backend
    from transport import BrokerConfig


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "station",
        parents=[common],
        help="the EHPAD nurse station (Textual; --serve for a browser)",
        description="Pick the resident, see the live readings of the station's serial "
        "devices, add flags and observations, send the bilan, see the SAMU's reply.",
    )
    p.add_argument("--site", required=True, metavar="ID", help="this EHPAD's site id")
    p.add_argument("--hub", metavar="URL", help="broker of the hub: mqtt://host:port")
    p.add_argument(
        "--serial",
        action="append",
        default=[],
        metavar="PORT:FORMAT",
        help="a device plugged into the station, e.g. /dev/ttyUSB0:sbf1 (repeat)",
    )
    p.add_argument("--roster", type=Path, metavar="FILE", help="the EHPAD's residents (TOML)")
    p.add_argument("--serve", action="store_true", help="serve the station to a browser")
    p.add_argument("--port", type=int, default=8080, metavar="N", help="--serve port (8080)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from protocols.vocab import is_valid_id

    if not is_valid_id(args.site):
        raise UsageError(f"--site {args.site!r}: ids are 1-64 characters of A-Z a-z 0-9 . _ -")
    from console.tui import SerialPort, load_roster

    try:
        ports = [SerialPort.parse(text) for text in args.serial]
        roster = load_roster(args.roster) if args.roster else {}
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: a TCP port is 1-65535")
    settings_of(args)
    broker = broker_of(args, args.hub) if args.hub else None
    if args.serve:
        return _serve(args)
    with services_of(args) as services:
        # Under textual-serve the app talks to the browser through its web driver.
        served = "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")
        if not served and not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError("the station needs a terminal, or --serve for a browser")
        from console.tui import StationApp

        backend, outbox = _backend(services, broker)
        StationApp(backend, site=args.site, outbox=outbox, ports=ports, roster=roster).run()
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    """Check what each browser session will need before serving: the database and
    the port (a session started later would fail inside the browser, unexplained)."""
    import socket

    from textual_serve.server import Server

    from console.services import ServicesError, check_database_path

    db = Path(args.db) if args.db else settings_of(args).db
    try:
        check_database_path(db, create=False)
    except ServicesError as exc:
        raise UsageError(f"--db: {exc}") from None
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as exc:
            raise UsageError(
                f"--port {args.port}: {exc.strerror or exc} on 127.0.0.1 (choose another --port)"
            ) from None

    argv = [sys.executable, "-m", "console.cli", "station", "--site", args.site]
    for flag, value in (("--db", args.db), ("--config", args.config), ("--hub", args.hub),
                        ("--roster", args.roster)):  # fmt: skip
        if value:
            argv += [flag, str(value)]
    for spec in args.serial:
        argv += ["--serial", spec]
    print(f"samu station: serving on http://127.0.0.1:{args.port} (ctrl+c stops)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="samu-serve-") as templates:
        _local_page(Path(templates))
        Server(shlex.join(argv), host="127.0.0.1", port=args.port, title="SAMU — station",
               templates_path=templates).serve()  # fmt: skip
    return EXIT_OK


def _local_page(folder: Path) -> None:
    """textual-serve's page without its one outside request (a Google Fonts stylesheet):
    an EHPAD station's browser must not tell a third party when a nurse works. The page
    is the installed package's own, so it follows textual-serve's upgrades."""
    import re

    import textual_serve

    page = Path(textual_serve.__file__).parent / "templates" / "app_index.html"
    html = re.sub(r"<link(?:(?!>).)*fonts\.googleapis\.com(?:(?!>).)*>\s*", "",
                  page.read_text(encoding="utf-8"), flags=re.S)  # fmt: skip
    (folder / "app_index.html").write_text(html, encoding="utf-8")


def _backend(services: Services, broker: BrokerConfig | None) -> tuple[Backend, Any]:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from console.ingest import Quarantined
    from console.services import BilanOutbox, RegulationCore, RegulationService, incoming
    from console.tui import Backend
    from transport import MqttLink

    writer = ThreadPoolExecutor(1, thread_name_prefix="samu-station")

    async def run(fn: Any, *a: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(writer, fn, *a)

    api = RegulationService(services, run=run)
    if broker is not None:
        link = MqttLink(broker, f"station-{services.settings.centre}-{id(writer):x}"[:64])

        async def deliver(topic: str, payload: bytes) -> None:
            link.publish(topic, payload)

        async def start(backend: Backend) -> None:
            await link.run()

        backend = Backend(
            services=services,
            api=api,
            start=start,
            stop=link.stop,
            terminal="station",
            notes=[f"bilans go to the hub through {broker.display}"],
        )
        return backend, BilanOutbox(services, deliver)
    cores: list[RegulationCore] = []

    def receive(topic: str, payload: bytes) -> None:
        if not cores:
            import time

            cores.append(RegulationCore(services, now=time.time()))
        got = cores[0].receive([incoming(topic, payload)])
        refused = [o for o in got.outcomes if isinstance(o, Quarantined)]
        if refused:
            raise RuntimeError(f"refused by ingest: {refused[0].reason} ({refused[0].detail})")

    async def deliver_local(topic: str, payload: bytes) -> None:
        await run(receive, topic, payload)

    backend = Backend(
        services=services,
        api=api,
        stop=lambda: writer.shutdown(wait=False),
        terminal="station",
        notes=[f"bilans go into the régulation core on {services.db_path}"],
    )
    return backend, BilanOutbox(services, deliver_local)
