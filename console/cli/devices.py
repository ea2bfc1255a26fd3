"""``samu devices enrol|list``: the device registry (cases.md, "Devices and enrolment").

* ``samu devices enrol --db PATH --scenario NAME|FILE --keys-out KEYS.json`` — a fresh
  key for every sender of the scenario (bedside devices, EHPAD gateways, implant
  transmitters, video gateways, nurse stations, a ``[load]`` fleet), stored sealed, and
  written to KEYS.json (0600) for ``samu sim --keys KEYS.json``: the centre makes the
  key, the device is given it.
* ``samu devices enrol --db PATH --keys KEYS.json`` — import keys made elsewhere (the
  simulator's ``--keys-out``).
* ``samu devices enrol --db PATH --site S --device D --kind K [--patient P] --key-out F``
  — one device.

Re-enrolling a device rotates its key (the old one is refused from then on). Every
enrolment is audited as the local operator. A live hub picks enrolments up on its next
key reload (it reloads when an unknown device's message arrives).

* ``samu devices list --db PATH [--json]`` — one line (or JSON object) per device; reads
  a live hub's database without disturbing it (read-only, no key needed).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from console.cli._context import services_of
from console.cli._main import EXIT_OK, UsageError
from console.cli._output import refuse_existing


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    devices = sub.add_parser(
        "devices", parents=[common], help="enrol devices and list them (keys, state, counters)"
    )
    dsub = devices.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    enrol = dsub.add_parser(
        "enrol",
        parents=[common],
        help="make (or import) the HMAC keys of devices; re-enrolling rotates a key",
        description="Enrol the senders of a scenario (--scenario, with --keys-out), import a "
        "key file (--keys), or enrol one device (--site --device --kind, with --key-out).",
    )
    what = enrol.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", metavar="NAME|FILE", help="every sender of this scenario")
    what.add_argument("--keys", type=Path, metavar="KEYS.json", help="import this key file")
    what.add_argument("--device", metavar="ID", help="one device (with --site and --kind)")
    enrol.add_argument("--site", metavar="ID", help="site of --device")
    enrol.add_argument("--kind", metavar="KIND", help="kind of --device (spo2, icd, gateway…)")
    enrol.add_argument("--patient", metavar="REF", help="resident --device is bound to")
    enrol.add_argument(
        "--keys-out", type=Path, metavar="KEYS.json", help="write the scenario's new keys here"
    )
    enrol.add_argument(
        "--key-out", type=Path, metavar="FILE", help="write the new key of --device here"
    )
    enrol.set_defaults(handler=_enrol)
    lst = dsub.add_parser("list", parents=[common], help="every device with its state")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(handler=_list)


def _scenario_senders(name: str) -> list[object]:
    import scenarios
    from firmware_sim import KeyStore, VirtualClock
    from firmware_sim.transports import InprocBus

    try:
        scenario = scenarios.load_scenario(name)
    except scenarios.ScenarioError as exc:
        raise UsageError(str(exc)) from None
    # Build it as an EHPAD runs it (every bedside device through its gateway onto MQTT),
    # so every sender that will sign exists; the keys derived here are thrown away.
    run = scenarios.build_scenario(
        scenario,
        VirtualClock(),
        link_for=scenarios.inproc_links(InprocBus()),
        transport="mqtt",
        keys=KeyStore(),
    )
    return [sender for sender, _ in scenarios.senders_of(scenario, run)]


def _check_out(path: Path | None, option: str) -> Path:
    if path is None:
        raise UsageError(f"give {option} FILE: the new keys must be handed to the devices")
    return refuse_existing(path, option, "a key file")  # secrets: docs/cli.md


def _enrol(args: argparse.Namespace) -> int:
    from console.ingest import EnrolmentError, Sender, read_key_file, write_key_file
    from console.records import AuditContext

    items: list[object]
    out: Path | None = None
    if args.scenario is not None:
        out = _check_out(args.keys_out, "--keys-out")
        items = _scenario_senders(args.scenario)
    elif args.keys is not None:
        if args.keys_out or args.key_out:
            raise UsageError("--keys imports existing keys: --keys-out/--key-out do not apply")
        try:
            items = list(read_key_file(args.keys))
        except EnrolmentError as exc:
            raise UsageError(str(exc)) from None
    else:
        if not args.site or not args.kind:
            raise UsageError("--device needs --site and --kind")
        out = _check_out(args.key_out, "--key-out")
        items = [Sender(args.site, args.device, args.kind, args.patient)]
    with services_of(args, create=True) as services:
        try:
            enrolled = services.devices.enrol(
                AuditContext.local(),
                items,  # type: ignore[arg-type]
                now=datetime.now(UTC),
            )
        except EnrolmentError as exc:
            raise UsageError(str(exc)) from None
        if out is not None:
            write_key_file(out, [(s, k) for s, k, _ in enrolled])
    rotated = sum(1 for _, _, v in enrolled if v > 1)
    where = f"; keys written to {out}" if out is not None else ""
    print(f"enrolled {len(enrolled)} device(s) ({rotated} key(s) rotated){where}")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from console.ingest import DeviceRegistry

    with services_of(args, readonly=True) as services:
        devices = DeviceRegistry(services.store, None).list()
    for d in devices:
        if args.json:
            print(json.dumps(d.as_dict(), ensure_ascii=False))
        else:
            battery = "-" if d.battery_pct is None else f"{d.battery_pct}%"
            print(
                f"{d.site}/{d.device}  {d.kind}  patient={d.patient or '-'}  {d.state}"
                f"  last_seen={d.last_seen or '-'}  battery={battery}  frames={d.frames}"
                f"  errors={d.errors}  quarantined={d.quarantined}"
            )
    return EXIT_OK
