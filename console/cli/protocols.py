"""``samu protocols``: decode and encode serial captures, export the message schemas.

``decode`` is the contract of protocols.md 1.3: one JSON object per line on stdout
(decoded messages and error lines alike), ``decoded N, errors M`` on stderr, exit 0
whatever the data held (errors are data), 2 on a usage error. Input is streamed in
64 KiB chunks through the format's bounded decoder, so a 1 GB capture decodes in
constant memory.

``encode`` reads JSON lines of the same shape and writes the wire bytes, so the
simulator, the tests and a person at a shell share one codec; error lines (with their
``raw`` hex) are replayed byte for byte. A line that cannot be encoded stops the run
with its line number and exit 2: a capture with a silently missing frame would be a
lie, and the bytes written so far are still flushed so the failure point is visible.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

from console.cli._main import EXIT_OK, UsageError

CHUNK_SIZE: Final[int] = 64 * 1024
#: Listed here (not imported) so that ``samu --help`` does not import the codecs.
FORMATS: Final[tuple[str, ...]] = ("sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d")
_FORMAT_METAVAR: Final[str] = "{" + ",".join(FORMATS) + "}"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``protocols decode|encode|schema``."""
    p = sub.add_parser(
        "protocols",
        parents=[common],
        help="decode/encode serial device captures, export message schemas",
        description="Serial frame formats of protocols.md: decode, encode, JSON Schemas.",
    )
    psub = p.add_subparsers(dest="protocols_command", metavar="SUBCOMMAND", required=True)

    dec = psub.add_parser(
        "decode",
        parents=[common],
        help="bytes → JSON lines (stdout), 'decoded N, errors M' (stderr)",
        description="Decode a byte stream into one JSON object per line. Exit 0 whatever "
        "the data held: bad frames are error lines with a reason and a byte offset.",
    )
    dec.add_argument("--format", required=True, metavar=_FORMAT_METAVAR, help="frame format")
    dec.add_argument(
        "file", nargs="?", default="-", metavar="FILE|-", help="input (default: stdin)"
    )
    dec.set_defaults(handler=_decode)

    enc = psub.add_parser(
        "encode",
        parents=[common],
        help="JSON lines → bytes (stdout)",
        description="Encode JSON lines (the shape decode prints) into wire bytes. A line "
        "that cannot be encoded stops with its line number (exit 2).",
    )
    enc.add_argument("--format", required=True, metavar=_FORMAT_METAVAR, help="frame format")
    enc.add_argument(
        "file", nargs="?", default="-", metavar="FILE|-", help="input (default: stdin)"
    )
    enc.set_defaults(handler=_encode)

    sch = psub.add_parser(
        "schema",
        parents=[common],
        help="write the JSON Schemas of the message models",
        description="Print the JSON Schemas of every message model (one JSON object, "
        "name → schema), or write one NAME.json per model into --out.",
    )
    sch.add_argument(
        "--out", type=Path, metavar="DIR", help="directory to write NAME.json files into"
    )
    sch.set_defaults(handler=_schema)


def _check_format(name: str) -> str:
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return name


@contextmanager
def _open_input(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, errors reported as usage errors
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"is a directory, not a file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        yield fh


def _decode(args: argparse.Namespace) -> int:
    name = _check_format(args.format)
    from protocols.codecs import DecodeError, get_codec

    decoder = get_codec(name).decoder()
    out = sys.stdout
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    decoded = errors = 0
    with _open_input(args.file) as fh:
        # read1 returns what is available (up to a chunk): a live pipe is decoded as it
        # arrives instead of waiting for 64 KiB.
        read = getattr(fh, "read1", fh.read)
        while True:
            chunk = read(CHUNK_SIZE)
            items = decoder.feed(chunk) if chunk else decoder.flush()
            if items:
                lines = []
                for item in items:
                    if isinstance(item, DecodeError):
                        errors += 1
                    else:
                        decoded += 1
                    lines.append(dumps(item.to_json()))
                lines.append("")
                out.write("\n".join(lines))
                out.flush()
            if not chunk:
                break
    out.flush()
    print(f"decoded {decoded}, errors {errors}", file=sys.stderr)
    return EXIT_OK


def _encode(args: argparse.Namespace) -> int:
    name = _check_format(args.format)
    from protocols.codecs import EncodeError, get_codec

    codec = get_codec(name)
    out = sys.stdout.buffer
    written = 0
    with _open_input(args.file) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                out.flush()
                raise UsageError(f"line {number}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                out.flush()
                raise UsageError(f"line {number}: expected a JSON object")
            try:
                data = codec.encode(record)
            except EncodeError as exc:
                out.flush()
                raise UsageError(f"line {number}: {exc}") from None
            out.write(data)
            written += 1
    out.flush()
    print(f"encoded {written}", file=sys.stderr)
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    try:
        from protocols.models import json_schemas
    except ImportError as exc:
        raise UsageError(f"message models are not available: {exc}") from None
    schemas = json_schemas()
    if args.out is None:
        json.dump(schemas, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
        return EXIT_OK
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for schema_name, schema in sorted(schemas.items()):
            path = out / f"{schema_name}.json"
            path.write_text(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write schemas into {out}: {exc.strerror}") from None
    print(f"wrote {len(schemas)} schemas into {out}", file=sys.stderr)
    return EXIT_OK
