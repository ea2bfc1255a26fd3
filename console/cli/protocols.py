"""``samu protocols``: decode and encode serial captures, export the message schemas.

``decode`` is the contract of protocols.md 1.3: one JSON object per line on stdout
(decoded messages and error lines alike), ``decoded N, errors M`` on stderr, exit 0
whatever the data held (errors are data), 2 on a usage error. Input is streamed in
64 KiB chunks through the format's bounded decoder, so a 1 GB capture decodes in
constant memory.

The input of ``decode`` is a file, ``-`` (stdin), a device path (a tty or pty, opened
as a file: set its speed first with ``stty -F PORT 9600 raw``, as the README says), or a
pyserial URL — ``socket://host:port``, ``rfc2217://host:port``, ``loop://`` and the other
handlers of ``serial.serial_for_url`` — since ports are pyserial URLs (README,
protocols.md 1). A port is read until its peer closes it (the end of the stream) or
Ctrl-C; either way the decoder is flushed, so a frame cut short is reported as
``truncated``, and the summary line is printed. A port that cannot be opened is a
one-line usage error (exit 2), as a missing file is.

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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, Final

from console.cli._main import EXIT_OK, UsageError
from console.cli._output import write_output

CHUNK_SIZE: Final[int] = 64 * 1024
#: Exit code of a file or pipe decode cut short by Ctrl-C (as ``samu`` gives elsewhere).
EXIT_INTERRUPTED: Final[int] = 130
#: How long a port read waits before looking again (so Ctrl-C is noticed promptly).
PORT_TIMEOUT_S: Final[float] = 0.5
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
        description="Serial frame formats (sbf1, masimo-ascii1, nonin-df8, contec-cms50d): "
        "decode, encode, JSON Schemas. See the README, section Devices and wire formats.",
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
        "file",
        nargs="?",
        default="-",
        metavar="FILE|PORT|-",
        help="input: a file, a device path, a pyserial URL such as socket://host:port or "
        "rfc2217://host:port (read until the peer closes it or Ctrl-C), or - for stdin "
        "(default)",
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


def _is_url(path: str) -> bool:
    """``scheme://…``: what pyserial's ``serial_for_url`` opens (a path never has it)."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.replace("-", "").replace("+", "").isalnum()


@contextmanager
def _open_input(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, errors reported as usage errors
    except FileNotFoundError:
        if path.startswith("/dev/"):
            raise UsageError(f"no such file: {path} (is the device plugged in?)") from None
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"is a directory, not a file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        yield fh


def _waiting(port: Any) -> int:
    """Bytes to ask a port for: what is waiting, at least 1, at most a chunk.

    pyserial's socket handler reports 1 for "some" (it only polls); the descriptor
    itself knows how many (``FIONREAD``), and asking for exactly those keeps a TCP
    stream from being read one byte per call. Handlers without a descriptor (loop://,
    rfc2217://) report real counts already.
    """
    n: int = port.in_waiting
    if n == 1:
        import fcntl
        import termios

        try:
            buf = fcntl.ioctl(port.fileno(), termios.FIONREAD, b"\0\0\0\0")
            n = max(1, int.from_bytes(buf, sys.byteorder))
        except (OSError, ValueError):  # io.UnsupportedOperation is both
            n = 1
    return max(1, min(n, CHUNK_SIZE))


def _no_reset() -> None:
    """Stands in for ``reset_input_buffer`` while a port opens (see :func:`_open_port`)."""


@contextmanager
def _open_port(url: str) -> Iterator[Callable[[], bytes]]:
    """Open a pyserial URL; yield a read function returning b"" at the end of the stream.

    The end is the peer closing the connection (pyserial raises ``SerialException``);
    a read that merely timed out returns nothing and is retried. Reads ask for what is
    waiting (at least one byte), as the gateway's readers do: pyserial's socket handler
    drops the bytes of a read that meets the end of the connection, so never asking for
    more than is there is what keeps the last frames of a stream.
    """
    import serial

    try:
        port = serial.serial_for_url(url, timeout=PORT_TIMEOUT_S, do_not_open=True)
        # pyserial empties the input on open (reset_input_buffer): bytes a server sent
        # as soon as it accepted — a capture replayed over TCP — would be thrown away
        # unread. Nothing has been read yet, so there is nothing stale to discard.
        port.reset_input_buffer = _no_reset
        port.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(f"cannot open {url}: {reason}") from None

    def read() -> bytes:
        while True:
            try:
                data: bytes = port.read(_waiting(port))
            except (serial.SerialException, OSError) as exc:
                print(f"port {url}: {' '.join(str(exc).split())}", file=sys.stderr)
                return b""
            if data:
                return data

    with port:
        yield read


def _decode(args: argparse.Namespace) -> int:
    name = _check_format(args.format)
    from protocols.codecs import DecodeError, get_codec

    decoder = get_codec(name).decoder()
    out = sys.stdout
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    decoded = errors = 0

    def write(items: list[Any]) -> None:
        nonlocal decoded, errors
        if not items:
            return
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

    with ExitStack() as stack:
        if _is_url(args.file):
            read = stack.enter_context(_open_port(args.file))
        else:
            fh = stack.enter_context(_open_input(args.file))
            # read1 returns what is available (up to a chunk): a live pipe is decoded as
            # it arrives instead of waiting for 64 KiB.
            read1 = getattr(fh, "read1", fh.read)

            def read() -> bytes:
                chunk: bytes = read1(CHUNK_SIZE)
                return chunk

        interrupted = False
        try:
            while chunk := read():
                write(decoder.feed(chunk))
        except KeyboardInterrupt:  # how a live port is ended: still flush and count
            interrupted = True
            print("interrupted", file=sys.stderr)
        write(decoder.flush())
    out.flush()
    print(f"decoded {decoded}, errors {errors}", file=sys.stderr)
    # Ctrl-C is the normal end of reading a port; a file or pipe was cut short.
    return EXIT_INTERRUPTED if interrupted and not _is_url(args.file) else EXIT_OK


def _encode(args: argparse.Namespace) -> int:
    name = _check_format(args.format)
    from protocols.codecs import EncodeError, get_codec

    codec = get_codec(name)
    if _is_url(args.file):
        raise UsageError(
            f"{args.file}: encode reads JSON lines from a file or stdin, not from a port"
        )
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
            except (ValueError, TypeError, OverflowError) as exc:  # a codec's gap: still one line
                out.flush()
                raise UsageError(f"line {number}: cannot encode this record: {exc}") from None
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
    except OSError as exc:
        raise UsageError(f"cannot write schemas into {out}: {exc.strerror}") from None
    for schema_name, schema in sorted(schemas.items()):
        text = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        write_output(out / f"{schema_name}.json", text, option="--out", private=False)
    print(f"wrote {len(schemas)} schemas into {out}", file=sys.stderr)
    return EXIT_OK
