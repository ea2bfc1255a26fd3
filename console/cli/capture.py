"""``samu capture``: record live serial and MQTT traffic to a capture file.

    samu capture --out FILE [--mqtt URL] [--serial PORT[:FORMAT]]… [--seconds N]

Records what a hub would read — every MQTT message on the hub's topics (topic, payload,
QoS, retain, MQTT v5 properties) and every byte read from each serial port, with its
arrival time — into FILE, a versioned, digested format of its own (docs/capture.md).
``samu replay FILE`` plays it back bit-exactly into the console core. ``--serial`` takes
``PORT[:FORMAT]`` (format default sbf1; the device is named after the port, site
``capture``) or the hub's ``port=URL,format=F,site=S,device=D[,patient=P][,baud=N]``.
Runs for ``--seconds`` or until SIGINT/SIGTERM, then writes the trailer (digest): a
capture cut short has none and is refused on replay. Prints ``capturing`` on stdout once
every source listens, and a summary line at the end. FILE is a recording that cannot be
made again: an existing one is never overwritten; it is created mode 0600 (the traffic
holds vitals and bilans) and fsynced when the capture ends (docs/cli.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from console.cli._main import EXIT_OK, UsageError
from console.cli._output import new_output, refuse_existing


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``samu capture``."""
    p = sub.add_parser(
        "capture",
        parents=[common],
        help="record live serial and MQTT traffic to a file samu replay plays back",
        description="Record MQTT messages (hub topics) and serial bytes with their arrival "
        "times to FILE until --seconds pass or SIGINT/SIGTERM; samu replay FILE plays it back.",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="capture file (a new one: never overwritten; mode 0600)",
    )
    p.add_argument("--mqtt", metavar="URL", help="broker to listen to (the hub's topics)")
    p.add_argument(
        "--serial",
        action="append",
        default=[],
        metavar="PORT[:FORMAT]",
        help="a serial port to record (repeat for several)",
    )
    p.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds")
    p.set_defaults(handler=_capture)


def _capture(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import time

    import scenarios
    from console.cli._context import broker_of

    if not args.mqtt and not args.serial:
        raise UsageError("nothing to capture: give --mqtt URL and/or --serial PORT[:FORMAT]")
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError("--seconds must be positive")
    try:
        ports = [scenarios.SerialPort.parse(text) for text in args.serial]
    except ValueError as exc:
        raise UsageError(f"--serial {exc}") from None
    broker = broker_of(args, args.mqtt) if args.mqtt else None
    out: Path = args.out
    refuse_existing(out, "--out", "a capture")  # a recording cannot be made again
    sources = [p.as_header(f"s{i}") for i, p in enumerate(ports)]
    if broker is not None:
        sources.append({"id": "mqtt", "kind": "mqtt", "broker": broker.display})

    async def main(writer: scenarios.CaptureWriter) -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.seconds is not None:
            loop.call_later(args.seconds, stop.set)

        async def announce() -> None:
            await ready.wait()
            print("capturing", flush=True)

        told = asyncio.create_task(announce())
        try:
            await scenarios.record(writer, broker=broker, serial=ports, stop=stop, ready=ready)
        finally:
            told.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    # Traffic holds vitals and bilans (identities): 0600; fsynced however it ends.
    failed: scenarios.CaptureError | None = None
    with new_output(out, option="--out", what="a capture", private=True) as fh:
        writer = scenarios.CaptureWriter(fh, sources, time.time())
        try:
            asyncio.run(main(writer))
        except scenarios.CaptureError as exc:
            failed = exc
        writer.close()  # the trailer: what was recorded stays usable, nothing lost
    if failed is not None:
        if writer.records == 0:
            # Nothing was recorded: no file left behind to refuse the retry with.
            out.unlink(missing_ok=True)
            raise UsageError(f"{failed} (nothing recorded, no file written)") from None
        raise UsageError(f"{failed} ({writer.records} record(s) kept in {out})") from None
    print(f"captured {writer.records} record(s) to {out}", flush=True)
    return EXIT_OK
