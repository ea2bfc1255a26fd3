"""``samu sim``: start simulated devices and run until interrupted.

::

    samu sim --site ehpad-lilas --devices spo2:masimo-ascii1:2 bp:sbf1 icd:mqtt \\
             --mqtt mqtt://127.0.0.1:1883 [--speed N] [--seed N]
    samu sim --scenario night-fall-hypoxaemia --mqtt mqtt://127.0.0.1:1883

At start, one line per device on stdout, flushed at once:
``serial <device-id> <format> <path>`` for serial devices (the path a consumer opens with
pyserial: a pty, or ``socket://127.0.0.1:PORT`` with ``--serial socket``) and
``mqtt <device-id> <topic>`` for devices that publish over MQTT. Then it runs until
SIGINT/SIGTERM (exit 0, ptys closed) or for ``--duration`` simulated seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from console.cli._context import broker_of
from console.cli._main import EXIT_OK, UsageError
from console.cli._output import check_output, refuse_existing, write_output


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``samu sim``."""
    p = sub.add_parser(
        "sim",
        parents=[common],
        help="run simulated devices (serial ptys, MQTT implants/video) until interrupted",
        description=(
            "Start simulated EHPAD devices, cardiac implants and video sessions. Prints "
            "'serial <device-id> <format> <path>' per serial device and "
            "'mqtt <device-id> <topic>' per MQTT device, then runs until SIGINT/SIGTERM."
        ),
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--devices",
        nargs="+",
        metavar="SPEC",
        help="KIND:FORMAT[:N], e.g. spo2:masimo-ascii1:2 bp:sbf1 icd:mqtt "
        "(kinds: spo2 bp temperature ecg glucose weight pacemaker icd crt-d crt-p video)",
    )
    what.add_argument("--scenario", metavar="FILE", help="scenario file (or library name)")
    p.add_argument("--site", metavar="ID", help="EHPAD site id (required with --devices)")
    p.add_argument("--mqtt", metavar="URL", help="broker URL, mqtt://host:port (MQTT devices)")
    p.add_argument("--speed", type=float, default=1.0, metavar="N", help="time factor (default 1)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="random seed: same seed, same residents, readings and keys (default: random)",
    )
    p.add_argument(
        "--start",
        metavar="TIME",
        help="wall time of t=0, ISO 8601 with offset (default: now); devices stamp from it",
    )
    p.add_argument(
        "--serial",
        choices=("pty", "socket"),
        default="pty",
        help="serial devices on pseudo-terminals (default) or socket://127.0.0.1:PORT",
    )
    p.add_argument(
        "--gateway",
        action="store_true",
        help="also run the EHPAD gateway: read the serial devices and publish them over MQTT",
    )
    p.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S simulated seconds"
    )
    p.add_argument(
        "--keys", type=Path, metavar="FILE", help="sender keys to sign with (JSON key file)"
    )
    p.add_argument(
        "--keys-out",
        type=Path,
        metavar="FILE",
        help="write the sender keys used (for enrolment; mode 0600, never overwritten)",
    )
    p.add_argument(
        "--idco-out",
        type=Path,
        metavar="FILE",
        help="write the implant transmissions to FILE as HL7 v2 ORU^R01 (IHE PCD-09 IDCO), "
        "as a vendor server would, instead of publishing them: runs on the virtual clock "
        "for --duration simulated seconds (default one day), as fast as it can",
    )
    p.add_argument(
        "--mllp", action="store_true", help="with --idco-out: frame each message with MLLP"
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from firmware_sim import RunOptions, SimError, run_sim

    if args.keys_out is not None:  # secrets, maybe enrolled at a hub already (docs/cli.md)
        refuse_existing(args.keys_out, "--keys-out", "a key file")
    if args.idco_out is not None:
        return _idco(args)
    if args.mllp:
        raise UsageError("--mllp goes with --idco-out FILE")

    if args.speed <= 0:
        raise UsageError("--speed must be positive")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.devices and not args.site:
        raise UsageError("--site ID is required with --devices")
    if args.seed is not None and args.seed < 0:
        raise UsageError("--seed must not be negative")
    epoch = None
    if args.start is not None:
        from datetime import datetime

        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise UsageError(f"--start {args.start!r} is not an ISO 8601 time") from None
        if start.tzinfo is None:
            raise UsageError("--start needs an explicit UTC offset, e.g. 2026-11-23T17:00:00+01:00")
        epoch = start.timestamp()
    plan = None
    if args.scenario is not None:
        import scenarios

        try:
            scenario = scenarios.load_scenario(args.scenario)
        except scenarios.ScenarioError as exc:
            raise UsageError(str(exc)) from None
        if args.seed is not None:
            header = scenario.scenario.model_copy(update={"seed": args.seed})
            scenario = scenario.model_copy(update={"scenario": header})
        if args.gateway and not args.mqtt:
            raise UsageError("--gateway publishes over MQTT: give --mqtt URL")
        plan = scenarios.SimPlan(scenario, transport="mqtt" if args.gateway else None)
    options = RunOptions(
        site=args.site,
        devices=args.devices,
        scenario=plan,
        mqtt=broker_of(args, args.mqtt) if args.mqtt else None,
        speed=args.speed,
        seed=args.seed,
        serial=args.serial,
        gateway=args.gateway,
        duration=args.duration,
        keys=args.keys,
        keys_out=args.keys_out,
        epoch=epoch,
    )
    try:
        asyncio.run(run_sim(options))
    except SimError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def _idco(args: argparse.Namespace) -> int:
    """``--idco-out``: implant transmitters on the virtual clock, HL7 into a file.

    Deterministic (the virtual clock, the seed): the same command writes the same file,
    so tests import exactly what a vendor server would have sent.
    """
    import functools
    import sys
    from datetime import datetime

    from firmware_sim import (
        DEFAULT_EPOCH,
        IMPLANT_KINDS,
        EnvelopeSender,
        KeyStore,
        SpecError,
        VirtualClock,
        death_will,
        rng_for,
        specs_from_cli,
    )
    from firmware_sim.idco import IdcoWriter
    from firmware_sim.implants import Implant, Transmitter
    from firmware_sim.physiology import NoiseSource
    from firmware_sim.transports import InprocPort

    out: Path = args.idco_out
    check_output(out, "--idco-out")
    if args.mqtt or args.gateway:
        raise UsageError("--idco-out writes a file: no --mqtt or --gateway with it")
    duration = args.duration if args.duration is not None else 86400.0
    if duration <= 0:
        raise UsageError("--duration must be positive")
    if args.devices and not args.site:
        raise UsageError("--site ID is required with --devices")
    seed = args.seed if args.seed is not None else 0
    if seed < 0:
        raise UsageError("--seed must not be negative")
    epoch = DEFAULT_EPOCH
    if args.start is not None:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise UsageError(f"--start {args.start!r} is not an ISO 8601 time") from None
        if start.tzinfo is None:
            raise UsageError("--start needs an explicit UTC offset")
        epoch = start.timestamp()
    keys = KeyStore.from_seed(seed)
    if args.keys is not None:
        try:
            keys.load(args.keys)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    clock = VirtualClock(epoch)
    writer = IdcoWriter(mllp=args.mllp)
    names: list[str] = []
    if args.scenario is not None:
        import scenarios

        try:
            scenario = scenarios.load_scenario(args.scenario)
        except scenarios.ScenarioError as exc:
            raise UsageError(str(exc)) from None
        if args.seed is not None:
            header = scenario.scenario.model_copy(update={"seed": args.seed})
            scenario = scenario.model_copy(update={"scenario": header})
        try:
            run = scenarios.SimPlan(scenario).build(
                clock,
                sink_for=lambda spec: InprocPort(),
                link_for=lambda site, sender, will: writer,
                keys=keys,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        names = [d.id for d in scenario.devices if d.kind in IMPLANT_KINDS]
        run.start()
    else:
        try:
            specs = specs_from_cli(args.devices, args.site)
        except SpecError as exc:
            raise UsageError(str(exc)) from None
        others = [s.device_id for s in specs if s.kind not in IMPLANT_KINDS]
        if others:
            raise UsageError(
                f"--idco-out carries implant transmissions only; not: {', '.join(others)}"
            )
        from firmware_sim import Simulation

        sim = Simulation(clock, seed=seed)
        for spec in specs:
            holder: list[EnvelopeSender] = []
            sender = EnvelopeSender(
                args.site,
                spec.device_id,
                keys.key(args.site, spec.device_id),
                clock,
                writer,
                rng=rng_for(seed, "envelopes", args.site, spec.device_id),
            )
            holder.append(sender)
            _ = functools.partial(death_will, holder)  # no broker: no Last Will
            implant = Implant(
                spec.device_id,
                IMPLANT_KINDS[spec.kind],
                sim.patient(spec.patient),
                NoiseSource(rng_for(seed, "implant", args.site, spec.device_id)),
            )
            tx = Transmitter(implant, sender, clock, every_s=3600.0, first_at=30.0)
            sim.others.append(tx)
            names.append(spec.device_id)
        sim.start()
    clock.run_until(duration)
    # Reproducible (seeded, virtual clock): replaced whole; patient data, even simulated: 0600.
    write_output(out, writer.data(), option="--idco-out", private=True)
    if args.keys_out is not None:
        keys.dump(args.keys_out)
    for name in names:
        sys.stdout.write(f"idco {name} {out}\n")
    sys.stdout.write(f"{len(writer.messages)} IDCO message(s) written to {out}\n")
    return EXIT_OK
