"""``samu console``: the régulation console (console.md, command line contract).

    samu console [--db PATH] [--hub URL] [--config FILE]

Embedded: the console works on the local database. When the settings name a broker
(``SAMU_MQTT__URL`` / ``[mqtt] url``) the console also runs the hub in its own process
(ingest, triage, the single writer) — the embedded deployment shape — and the board is
pushed as deltas; otherwise it reads a database another process (``samu hub``) writes,
re-reading the board every two seconds. ``--hub URL`` (centre mode: the service over
MQTT to a remote hub) is refused with a clear message until that transport exists.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

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
        "console",
        parents=[common],
        help="the régulation console (Textual) on the local database",
        description="The régulation physician's console: board, cases, decisions, compte "
        "rendu, devices, audit. Sign in with your user id, password and TOTP code.",
    )
    p.add_argument(
        "--hub",
        metavar="URL",
        help="centre mode: a remote hub over MQTT (not available yet; use --db on the "
        "hub's database)",
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.hub:
        raise UsageError(
            f"--hub {args.hub}: centre mode (the service over MQTT) is not available yet; "
            "run `samu console --db PATH` on the hub's database"
        )
    settings_of(args)
    broker = broker_of(args)
    with services_of(args) as services:
        from console.tui import RegulationApp

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError("the console needs a terminal (for scripts: samu records …)")
        RegulationApp(_backend(services, broker)).run()
    return EXIT_OK


def _backend(services: Services, broker: BrokerConfig | None) -> Backend:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from console.services import Hub, RegulationService
    from console.tui import Backend

    if broker is not None:
        log = (services.db_path.parent / "console-hub.log").open("a", encoding="utf-8")
        hub = Hub(services, broker=broker, centre=services.settings.centre, out=log)

        async def start(backend: Backend) -> None:
            task = asyncio.create_task(hub.run(), name="hub")
            await hub.ready.wait()
            backend.api = hub.api
            try:
                await task
            finally:
                log.close()

        return Backend(
            services=services,
            start=start,
            stop=hub.stop,
            live=True,
            notes=[f"hub in this console: {broker.display}", f"database: {services.db_path}"],
        )
    writer = ThreadPoolExecutor(1, thread_name_prefix="samu-console")

    async def run(fn: Any, *a: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(writer, fn, *a)

    return Backend(
        services=services,
        api=RegulationService(services, run=run),
        live=False,
        stop=lambda: writer.shutdown(wait=False),
        notes=[f"database: {services.db_path} (board re-read every 2 s)"],
    )
