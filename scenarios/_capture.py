"""Capturing live traffic to a file, and replaying it bit-exactly into the console core.

A field problem becomes a test: ``samu capture`` records what a hub would have read
(serial bytes per port, MQTT messages) and ``samu replay FILE`` feeds exactly those
bytes, at their recorded arrival times, to the same ingest, cases and triage as
``samu hub``. The file format is ours, versioned and digested (docs/capture.md):

* JSON lines, UTF-8. Line 1 is the header: ``{"format": "samu-capture", "version": 1,
  "started": <epoch s>, "sources": [...]}``; each source has an ``id`` (``s0``, ``s1``…
  for serial ports with ``port``, ``format``, ``site``, ``device``, ``patient``;
  ``mqtt`` for the broker with ``broker`` and ``filters``).
* Then one record per line, in arrival order: serial ``{"t", "src", "data"}`` (the
  bytes as read, base64), MQTT ``{"t", "src", "topic", "payload", "qos", "retain",
  "properties"}`` (payload base64, MQTT v5 properties as paho gives them). ``t`` is
  seconds since ``started`` (microseconds).
* Readers accept the versions in :data:`CAPTURE_VERSIONS` and refuse any other by its
  header alone (whatever else the file holds): a capture written by a newer samu gets
  "unsupported capture: format version 2 (this samu reads capture version 1 …)",
  never a TOML or digest error.
* The last line is the trailer ``{"end": true, "records": N, "sha256": H}``: ``H`` is the
  SHA-256 of every byte of the file before the trailer line. A file without it
  (truncated: the capture was killed, the copy cut short) or whose digest or record
  count does not match (edited) is refused with :class:`CaptureError`.

Why a trailer digest rather than a per-line one: the file is written as traffic
arrives (nothing is held in memory), and one running hash proves both that nothing was
changed and that nothing is missing at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from console.cases import CaseEvent
from console.ingest import DEFAULT_BAUD, Quarantined, Sender, SerialSource
from console.ingest import Incoming as _Incoming
from console.records import AuditContext
from console.services import RegulationCore, Services
from protocols.codecs import get_codec
from protocols.topics import hub_filters
from transport import BrokerConfig, MqttError, client_for, settle

CAPTURE_FORMAT = "samu-capture"
CAPTURE_VERSION = 1
#: The format versions :func:`read_capture` reads (it writes :data:`CAPTURE_VERSION`).
CAPTURE_VERSIONS: tuple[int, ...] = (1,)
#: Site of serial ports captured without one (``--serial PORT[:FORMAT]``).
CAPTURE_SITE = "capture"


class CaptureError(ValueError):
    """A capture file that cannot be used; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class SerialPort:
    """A serial port to capture, and who it is in the replay (site, device, patient)."""

    port: str
    format: str
    site: str = CAPTURE_SITE
    device: str = ""
    patient: str | None = None
    baud: int | None = None

    @staticmethod
    def parse(text: str) -> SerialPort:
        """``PORT[:FORMAT]`` (device named after the port) or the hub's
        ``port=URL,format=F,site=S,device=D[,patient=P][,baud=N]``.

        Raises:
            ValueError: an unknown format, a bad id (the message says which).
        """
        from protocols.vocab import SERIAL_FORMATS, is_valid_id

        if "=" in text:
            from console.ingest import parse_serial_spec

            source, baud = parse_serial_spec(text)
            return SerialPort(
                source.url, source.format, source.site, source.device, source.patient, baud
            )
        port, sep, fmt = text.rpartition(":")
        if not sep or "/" in fmt or fmt.isdigit():
            port, fmt = text, "sbf1"
        if fmt not in SERIAL_FORMATS:
            raise ValueError(
                f"{text!r}: unknown format {fmt!r} (one of {', '.join(SERIAL_FORMATS)})"
            )
        device = re.sub(r"[^A-Za-z0-9._-]", "-", Path(port).name or port).strip("-")[:64]
        if not is_valid_id(device):
            raise ValueError(f"{text!r}: cannot name a device after this port: use the long form")
        return SerialPort(port, fmt, CAPTURE_SITE, device)

    def as_header(self, src: str) -> dict[str, Any]:
        return {
            "id": src,
            "kind": "serial",
            "port": self.port,
            "format": self.format,
            "site": self.site,
            "device": self.device,
            "patient": self.patient,
        }


class CaptureWriter:
    """Writes a capture as it arrives: header, records, trailer (module docstring)."""

    def __init__(self, fh: IO[bytes], sources: list[dict[str, Any]], started: float) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()
        self.started = started
        self.records = 0
        self._line(
            {
                "format": CAPTURE_FORMAT,
                "version": CAPTURE_VERSION,
                "started": round(started, 6),
                "sources": sources,
            }
        )

    def _line(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self._hash.update(data)
        self._fh.write(data)

    def _t(self, at: float) -> float:
        return round(max(0.0, at - self.started), 6)

    def serial(self, src: str, data: bytes, at: float) -> None:
        self.records += 1
        self._line({"t": self._t(at), "src": src, "data": base64.b64encode(data).decode()})
        self._fh.flush()

    def mqtt(
        self,
        topic: str,
        payload: bytes,
        at: float,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: dict[str, Any] | None = None,
    ) -> None:
        self.records += 1
        self._line(
            {
                "t": self._t(at),
                "src": "mqtt",
                "topic": topic,
                "payload": base64.b64encode(payload).decode(),
                "qos": qos,
                "retain": retain,
                "properties": properties or {},
            }
        )
        self._fh.flush()

    def close(self) -> None:
        """The trailer: without it the file is refused as truncated."""
        trailer = {"end": True, "records": self.records, "sha256": self._hash.hexdigest()}
        self._fh.write((json.dumps(trailer, separators=(",", ":")) + "\n").encode())
        self._fh.flush()


@dataclass
class Record:
    t: float
    src: str
    data: bytes = b""
    topic: str = ""
    retain: bool = False
    qos: int = 1
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Capture:
    """A verified capture file."""

    path: Path
    started: float
    sources: list[dict[str, Any]]
    records: list[Record]

    def signed_senders(self) -> dict[tuple[str, str], int]:
        """MQTT messages that are signed envelopes (a ``mac``), counted per (site, device).

        Their verification needs the senders' keys (``samu replay --keys``): without
        them every one is quarantined, and the replay says nothing of the field problem.
        """
        out: dict[tuple[str, str], int] = {}
        for r in self.records:
            if r.src != "mqtt" or not r.data.lstrip().startswith(b"{"):
                continue
            try:
                envelope = json.loads(r.data)
            except ValueError:
                continue
            if not isinstance(envelope, dict) or not isinstance(envelope.get("mac"), str):
                continue
            sender = (str(envelope.get("site", "?")), str(envelope.get("device", "?")))
            out[sender] = out.get(sender, 0) + 1
        return out

    @property
    def serial_sources(self) -> dict[str, SerialSource]:
        return {
            s["id"]: SerialSource(s["port"], s["format"], s["site"], s["device"], s.get("patient"))
            for s in self.sources
            if s.get("kind") == "serial"
        }


def is_capture(path: Path) -> bool:
    """Whether ``path`` is meant as a capture file (so ``samu replay`` reads it as one).

    Judged on the header line's ``format`` alone, whatever its key order, spacing or
    version: a capture written by another version of samu must reach :func:`read_capture`
    and be refused for its version, not be misread as a TOML scenario.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return False
    return _capture_header(head) is not None


#: How much of a file :func:`is_capture` reads (a header is well under 1 kB per source).
_SNIFF_BYTES = 64 * 1024
#: A header line cut by the sniff (thousands of sources) or damaged, still ours.
_HEADER_HINT = re.compile(rb'\A\s*\{[^\n]*"format"\s*:\s*"' + CAPTURE_FORMAT.encode() + rb'"')


def _capture_header(head: bytes) -> dict[str, Any] | None:
    """The header of a capture starting with ``head`` (``{}`` when it is ours but does not
    parse), or ``None`` for any other file."""
    line = head.split(b"\n", 1)[0]
    try:
        header = json.loads(line)
    except ValueError:
        return {} if _HEADER_HINT.match(head) else None
    if isinstance(header, dict) and header.get("format") == CAPTURE_FORMAT:
        return header
    return None


def read_capture(path: Path) -> Capture:
    """Read and verify a capture file.

    The header is judged first: a file of another format version is refused for that
    (naming the version found and those supported) before its trailer or digest are
    looked at, since another version may lay them out differently.

    Raises:
        CaptureError: unreadable, not a capture, another version, truncated (no trailer)
            or edited (digest or record count differs) — one line saying which.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read: {exc.strerror or exc}") from None
    header = _capture_header(data)
    if header is None:
        raise CaptureError(f"{path}: not a samu capture file")
    if b"\n" not in data:
        raise CaptureError(f"{path}: truncated capture (the header line is cut)")
    if not header:
        raise CaptureError(f"{path}: malformed capture: the header line is not JSON")
    version = header.get("version")
    if type(version) is not int or version not in CAPTURE_VERSIONS:
        supported = ", ".join(str(v) for v in CAPTURE_VERSIONS)
        found = "no format version" if version is None else f"format version {json.dumps(version)}"
        newer = type(version) is int and version > max(CAPTURE_VERSIONS)
        raise CaptureError(
            f"{path}: unsupported capture: {found} (this samu reads capture version "
            f"{supported}{'; a newer samu wrote it' if newer else ''})"
        )
    if not data.endswith(b"\n"):
        raise CaptureError(f"{path}: truncated capture (the last line is cut)")
    body_end = data.rfind(b"\n", 0, len(data) - 1) + 1
    body, last = data[:body_end], data[body_end:]
    try:
        trailer = json.loads(last)
    except ValueError:
        trailer = None
    if not isinstance(trailer, dict) or trailer.get("end") is not True:
        raise CaptureError(f"{path}: truncated capture (no trailer: the capture did not finish)")
    if hashlib.sha256(body).hexdigest() != trailer.get("sha256"):
        raise CaptureError(f"{path}: capture digest mismatch: the file was edited or corrupted")
    lines = body.splitlines()
    try:
        records = [_record(json.loads(line)) for line in lines[1:]]
        started = float(header["started"])
        sources = list(header["sources"])
        known = {s["id"] for s in sources}
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptureError(f"{path}: malformed capture: {exc}") from None
    if trailer.get("records") != len(records):
        raise CaptureError(f"{path}: capture record count mismatch: the file was edited")
    unknown = sorted({r.src for r in records} - known)
    if unknown:
        raise CaptureError(f"{path}: malformed capture: records of unknown source {unknown[0]}")
    return Capture(path, started, sources, records)


def _record(obj: Any) -> Record:
    if not isinstance(obj, dict):
        raise ValueError("a record is not an object")
    if obj["src"] == "mqtt":
        return Record(
            float(obj["t"]),
            "mqtt",
            base64.b64decode(obj["payload"], validate=True),
            str(obj["topic"]),
            bool(obj.get("retain", False)),
            int(obj.get("qos", 1)),
            dict(obj.get("properties") or {}),
        )
    return Record(float(obj["t"]), str(obj["src"]), base64.b64decode(obj["data"], validate=True))


# -- recording ---------------------------------------------------------------------------
async def record(
    writer: CaptureWriter,
    *,
    broker: BrokerConfig | None,
    serial: Sequence[SerialPort],
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Record until ``stop`` is set: every MQTT message on the hub's filters (a clean,
    non-persistent session: a capture is a bystander and must never take the hub's
    messages), and every byte read from each serial port."""
    import serial as pyserial
    import serial_asyncio_fast

    tasks: list[asyncio.Task[None]] = []
    opened: list[asyncio.Event] = []

    async def mqtt() -> None:
        assert broker is not None
        client = client_for(broker, f"samu-capture-{id(writer) & 0xFFFFFF:06x}")
        try:
            async with client:
                for f in hub_filters():
                    await client.subscribe(f, qos=1)
                opened[0].set()
                async for m in client.messages:
                    props = getattr(m, "properties", None)
                    writer.mqtt(
                        str(m.topic),
                        bytes(m.payload or b""),
                        time.time(),
                        qos=int(m.qos),
                        retain=bool(m.retain),
                        properties=_jsonable(props.json()) if props is not None else {},
                    )
        finally:
            settle(client)

    async def port(src: str, p: SerialPort, is_open: asyncio.Event) -> None:
        baud = p.baud or DEFAULT_BAUD.get(p.format, 9600)
        reader, w = await serial_asyncio_fast.open_serial_connection(url=p.port, baudrate=baud)
        is_open.set()
        try:
            while True:
                try:
                    chunk = await reader.read(65536)
                except (OSError, pyserial.SerialException):
                    chunk = b""
                if not chunk:
                    return  # unplugged (or the simulator closed its pty): this port is done
                writer.serial(src, chunk, time.time())
        finally:
            w.close()

    try:
        if broker is not None:
            opened.append(asyncio.Event())
            tasks.append(asyncio.create_task(mqtt(), name="capture-mqtt"))
        for i, p in enumerate(serial):
            opened.append(asyncio.Event())
            tasks.append(asyncio.create_task(port(f"s{i}", p, opened[-1]), name=f"capture-s{i}"))
        all_open = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in opened)))
        await _first(all_open, tasks)
        if ready is not None:
            ready.set()
        stopper = asyncio.ensure_future(stop.wait())
        # Until stopped, or until every source ended (each serial port unplugged; the
        # broker connection never ends by itself): what was read is all kept.
        while not stopper.done() and not all(t.done() for t in tasks):
            await asyncio.wait(
                {stopper, *[t for t in tasks if not t.done()]},
                return_when=asyncio.FIRST_COMPLETED,
            )
        stopper.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    except (OSError, pyserial.SerialException, MqttError) as exc:
        raise CaptureError(f"capture: {exc}") from exc
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _first(waiter: asyncio.Future[Any], tasks: list[asyncio.Task[None]]) -> None:
    """Until ``waiter`` is done; a recording task that failed first raises its error."""
    done, _ = await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter  # retrieved: no "exception was never retrieved" after a failure
    for task in tasks:
        if task in done and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        if task in done:
            raise CaptureError(f"capture: {task.get_name()}: the source closed at once")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# -- replaying ---------------------------------------------------------------------------
@dataclass
class CaptureResult:
    """What the core made of a capture: counts by outcome and the events."""

    capture: Capture
    mqtt_messages: int = 0
    serial_bytes: int = 0
    frames: int = 0
    accepted: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    events: list[CaseEvent] = field(default_factory=list)

    def count(self, outcomes: Sequence[object]) -> None:
        for o in outcomes:
            if isinstance(o, Quarantined):
                self.quarantined[o.reason] = self.quarantined.get(o.reason, 0) + 1
            else:
                self.accepted += 1


def replay_capture(
    capture: Capture, services: Services, *, keys: Sequence[tuple[Sender, bytes]] = ()
) -> CaptureResult:
    """Feed ``capture`` to a fresh core, as ``samu hub`` would have read it.

    The bytes are the recorded ones, at the recorded arrival times: MQTT messages in
    batches of one captured second (the hub batches what arrives together), each serial
    chunk through its port's decoder as the serial reader does, the triage tick once per
    captured second. ``keys`` (a key file's senders) are enrolled first: envelopes are
    MAC-checked, so without the field's keys they are quarantined as unknown devices.
    """
    sources = capture.serial_sources
    start = capture.started
    senders: list[Any] = [
        Sender(s.site, s.device, f"serial:{s.format}", s.patient) for s in sources.values()
    ]
    if senders or keys:
        services.devices.enrol(
            AuditContext(actor="system:replay", role="system", terminal="replay"),
            [*keys, *senders],
            now=datetime.fromtimestamp(start, UTC),
        )
    core = RegulationCore(services, now=start)
    decoders = {src: get_codec(s.format).decoder() for src, s in sources.items()}
    result = CaptureResult(capture)
    batch: list[_Incoming] = []
    second = 0

    def flush() -> None:
        if batch:
            got = core.receive(batch)
            result.count(got.outcomes)
            result.events += got.events
            batch.clear()

    for r in capture.records:
        while r.t >= second + 1:  # a captured second ended: commit, tick
            flush()
            second += 1
            result.events += core.tick(start + second)
        now = start + r.t
        if r.src == "mqtt":
            result.mqtt_messages += 1
            if r.data:
                batch.append(_Incoming(r.topic, r.data, now))
            continue
        flush()
        result.serial_bytes += len(r.data)
        items = decoders[r.src].feed(r.data)
        if items:
            result.frames += len(items)
            got = core.receive_frames(sources[r.src], items, now)
            result.count(got.outcomes)
            result.events += got.events
    flush()
    end = start + (capture.records[-1].t if capture.records else 0.0)
    for src, decoder in decoders.items():
        tail = decoder.flush()
        if tail:
            result.frames += len(tail)
            got = core.receive_frames(sources[src], tail, end)
            result.count(got.outcomes)
            result.events += got.events
    result.events += core.tick(end)
    return result
