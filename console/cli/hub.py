"""``samu hub``: ingest, triage and the store, headless (cases.md, command line contract).

    samu hub --db PATH [--config FILE] [--mqtt URL] [--centre ID] [--serial SPEC]…

Runs until SIGINT/SIGTERM, then commits what it holds, writes a checkpoint and exits 0.
``--mqtt`` defaults to the configuration's broker (``SAMU_MQTT__URL``), ``--centre`` to
``samu075`` (``SAMU_CENTRE``). Logs one JSON object per line on stdout. The database is
created when missing (said on stderr).
"""

from __future__ import annotations

import argparse
import re

from console.cli._context import broker_of, services_of, settings_of
from console.cli._main import EXIT_OK, UsageError


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "hub",
        parents=[common],
        help="run ingest, triage and the store headless until SIGINT/SIGTERM",
        description="The régulation core without screens: subscribes to every site's "
        "devices and bilans (QoS 1, persistent session, acknowledged after commit), "
        "triages every monitored resident each second, logs JSON lines on stdout.",
    )
    p.add_argument(
        "--mqtt",
        metavar="URL",
        help="broker: mqtt://[user@]host:port or mqtts://… (password from "
        "$SAMU_MQTT_PASSWORD; default $SAMU_MQTT__URL)",
    )
    p.add_argument("--centre", metavar="ID", help="SAMU centre id for case ids (default samu075)")
    p.add_argument(
        "--serial",
        metavar="SPEC",
        action="append",
        default=[],
        help="a device wired to the hub: port=URL,format=F,site=S,device=D[,patient=P]"
        "[,baud=N] (repeat for several; URL as pyserial: /dev/ttyUSB0, socket://…)",
    )
    p.set_defaults(handler=_hub)


def _hub(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from console.services import Hub

    settings = settings_of(args)
    centre = args.centre or settings.centre
    if not re.fullmatch(r"samu[0-9]{3}", centre):
        raise UsageError(f"--centre {centre!r}: expected samu followed by 3 digits (samu075)")
    from console.ingest import SerialSpecError, parse_serial_spec

    try:
        serial = [parse_serial_spec(text) for text in args.serial]
    except SerialSpecError as exc:
        raise UsageError(str(exc)) from None
    broker = broker_of(args, args.mqtt)
    if broker is None and not serial:
        raise UsageError("nothing to ingest: give --mqtt URL (or SAMU_MQTT__URL) or --serial SPEC")
    with services_of(args, create=True) as services:
        hub = Hub(services, broker=broker, centre=centre, serial=serial)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, hub.stop)
            try:
                await hub.run()
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

        asyncio.run(main())
    return EXIT_OK
