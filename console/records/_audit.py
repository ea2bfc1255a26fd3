"""Audit events: the model, their canonical bytes, leaf/chain hashes, appends, batching.

Canonical bytes (what is hashed, stored verbatim in ``audit_events.canonical``): the JSON
object of the event fields *plus* ``seq``, keys sorted, separators ``,`` and ``:``, no
ASCII escaping, UTF-8 — exactly ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode()``. Embedding ``seq`` pins every event to its position, which
is what lets the verifier tell a swapped row (its bytes name another position) from an
edited one. ``detail`` is stored in its own column in the same canonical form, so the
verifier can rebuild the canonical bytes from the columns and catch an edit to any
column, not only to ``canonical``.

Hashes: ``leaf = SHA-256(0x00 || canonical)`` (RFC 6962 leaf), ``chain_n =
SHA-256(chain_{n-1} || leaf_n)`` with ``chain_0`` = 32 zero bytes.

Appends compute the hashes in Python and insert with one ``executemany`` per batch
inside one transaction; the formatting below avoids ``json.dumps`` on the whole event
(only ``detail`` goes through it) because it dominates the cost at 50 k events/s.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import queue
import socket
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

if TYPE_CHECKING:
    from console.records._store import Store

ZERO_CHAIN = bytes(32)

#: Keys of the canonical object, sorted (documented for outside auditors).
EVENT_KEYS: tuple[str, ...] = (
    "action",
    "actor",
    "detail",
    "object",
    "outcome",
    "purpose",
    "role",
    "seq",
    "terminal",
    "time",
)

#: The insert statement; column order matches :func:`event_row`.
INSERT_SQL = (
    "INSERT INTO audit_events (seq, time, actor, role, terminal, action, object, purpose, "
    "outcome, detail, canonical, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)

_sha256 = hashlib.sha256

Outcome = Literal["success", "failure", "denied"]


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# ``JSONEncoder.encode`` builds a new C encoder on every call; building it once halves
# the cost of serialising ``detail`` (same output: checked by the tests).
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    _C_MAKE_ENCODER({}, _no_default, encode_basestring, None, ":", ",", True, False, False)
    if _C_MAKE_ENCODER is not None
    else None
)


def canonical_text(value: Any) -> str:
    """:func:`protocols.canonical_json` as text, on the audit hot path.

    The same rule and the same bytes once encoded (a test holds the two together); this
    one reuses a prebuilt C encoder because the trail serialises 50 k events a second.
    """
    if _C_ENCODE is not None and isinstance(value, dict):
        return "".join(_C_ENCODE(value, 0))
    return _ENCODER.encode(value)


def _now() -> datetime:
    # UTC with an explicit +00:00 offset: unambiguous across DST changes and ~5x cheaper
    # than asking the OS for the local offset on every event (this runs 50 k times/s).
    return datetime.now(UTC)


#: Deepest nesting of objects and arrays accepted in an event's ``detail``.
MAX_DETAIL_DEPTH = 32


class AuditEvent(BaseModel):
    """One access or change, as the trail records it.

    ``time`` defaults to now (UTC, explicit offset); any timezone-aware time is accepted
    and hashed as given (``isoformat``). ``detail`` carries record ids and counts only:
    identities never appear in clear in the trail (it is kept longer and read by
    auditors who must not see them). ``purpose`` is ``"normal"`` or
    ``"break-glass: <reason>"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: AwareDatetime = Field(default_factory=_now)
    actor: str = Field(min_length=1)
    role: str
    terminal: str
    action: str = Field(min_length=1)
    object: str = ""
    purpose: str = "normal"
    outcome: Outcome = "success"
    detail: dict[str, Any] = Field(default_factory=dict)

    #: (detail JSON, time text, canonical bytes before seq, canonical bytes after seq);
    #: read through ``__pydantic_private__`` because pydantic's private-attribute
    #: ``__getattr__`` costs microseconds on the append path.
    _rendered: tuple[str, str, bytes, bytes] = PrivateAttr()

    @field_validator("detail")
    @classmethod
    def _detail_depth(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Details carry record ids and counts. A bound on nesting keeps every reader of
        # the trail (verify, exports, auditors' tools) far from recursion limits: Python's
        # json module gives up near 1 000 levels, which a detail must never approach.
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DETAIL_DEPTH:
                raise ValueError(f"detail is nested deeper than {MAX_DETAIL_DEPTH} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
        return value

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str) -> str:
        if value == "normal":
            return value
        if value.startswith("break-glass: ") and value[len("break-glass: ") :].strip():
            return value
        raise ValueError('purpose must be "normal" or "break-glass: <reason>"')

    def model_post_init(self, __context: Any) -> None:
        """Pre-render the canonical bytes around ``seq`` once (validates plain UTF-8 JSON).

        The writer then only splices the sequence number in, which keeps the append path
        cheap; a detail that is not plain JSON fails here, at the caller, not in the
        writer thread.
        """
        q = encode_basestring
        try:
            detail = canonical_text(self.detail) if self.detail else "{}"
            time_text = self.time.isoformat()
            head = (
                f'{{"action":{q(self.action)},"actor":{q(self.actor)},"detail":{detail},'
                f'"object":{q(self.object)},"outcome":{q(self.outcome)},'
                f'"purpose":{q(self.purpose)},"role":{q(self.role)},"seq":'
            ).encode()
            tail = f',"terminal":{q(self.terminal)},"time":{q(time_text)}}}'.encode()
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            raise ValueError(f"audit event is not plain UTF-8 JSON: {exc}") from exc
        private = self.__pydantic_private__
        assert private is not None
        private["_rendered"] = (detail, time_text, head, tail)

    def rendered(self) -> tuple[str, str, bytes, bytes]:
        """``(detail JSON, time text, canonical head, canonical tail)`` as stored/hashed."""
        private = self.__pydantic_private__
        assert private is not None
        rendered: tuple[str, str, bytes, bytes] = private["_rendered"]
        return rendered

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copies go through validation again so the pre-rendered bytes stay in step."""
        return type(self).model_validate({**self.model_dump(), **(update or {})})

    @property
    def time_text(self) -> str:
        """``time`` exactly as hashed and stored."""
        return self.rendered()[1]

    @property
    def detail_json(self) -> str:
        """``detail`` in canonical JSON, exactly as stored in the ``detail`` column."""
        return self.rendered()[0]

    def canonical(self, seq: int) -> bytes:
        """The exact bytes hashed for this event at position ``seq``."""
        _, _, head, tail = self.rendered()
        return head + str(seq).encode("ascii") + tail


def event_row(
    event: AuditEvent, seq: int, prev_chain: bytes
) -> tuple[int, str, str, str, str, str, str, str, str, str, bytes, bytes, bytes]:
    """The ``audit_events`` row for ``event`` at ``seq`` after ``prev_chain``."""
    detail, time_text, head, tail = event.__pydantic_private__["_rendered"]  # type: ignore[index]
    canonical = head + str(seq).encode("ascii") + tail
    leaf = _sha256(b"\x00" + canonical).digest()
    chain = _sha256(prev_chain + leaf).digest()
    return (
        seq,
        time_text,
        event.actor,
        event.role,
        event.terminal,
        event.action,
        event.object,
        event.purpose,
        event.outcome,
        detail,
        canonical,
        leaf,
        chain,
    )


def last_position(conn: sqlite3.Connection) -> tuple[int, bytes]:
    """``(seq, chain_hash)`` of the last event, ``(0, zero chain)`` for an empty trail."""
    row = conn.execute(
        "SELECT seq, chain_hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return 0, ZERO_CHAIN
    return int(row[0]), bytes(row[1])


def append_rows(conn: sqlite3.Connection, events: Sequence[AuditEvent]) -> list[int]:
    """Insert ``events`` after the current last one, inside the caller's transaction.

    The last position is read inside the same write transaction, so concurrent writers
    (another process on the same file) serialise on SQLite's lock and never fork the
    chain.
    """
    start, chain = last_position(conn)
    seq = start
    sha = _sha256
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for event in events:  # event_row() inlined: this loop runs 50 k times a second
        seq += 1
        detail, time_text, head, tail = event.__pydantic_private__["_rendered"]  # type: ignore[index]
        canonical = head + str(seq).encode("ascii") + tail
        leaf = sha(b"\x00" + canonical).digest()
        chain = sha(chain + leaf).digest()
        append(
            (
                seq,
                time_text,
                event.actor,
                event.role,
                event.terminal,
                event.action,
                event.object,
                event.purpose,
                event.outcome,
                detail,
                canonical,
                leaf,
                chain,
            )
        )
    conn.executemany(INSERT_SQL, rows)
    return list(range(start + 1, seq + 1))


# --- who is acting on the command line -------------------------------------------------

#: Role recorded for command-line administration (the local operator, outside the matrix).
LOCAL_ROLE = "local-operator"


def local_actor() -> str:
    """``local:<os-user>``: command-line administration acts as the local operator."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"local:{user}"


def local_terminal() -> str:
    """Host and controlling terminal, e.g. ``regul-01/pts/3`` (``cli`` without a tty)."""
    tty = "cli"
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                tty = os.ttyname(fd).removeprefix("/dev/")
                break
        except OSError:
            continue
    return f"{socket.gethostname()}/{tty}"


def local_event(action: str, object: str = "", **kwargs: Any) -> AuditEvent:
    """An event by the local operator (CLI administration)."""
    return AuditEvent(
        actor=local_actor(),
        role=LOCAL_ROLE,
        terminal=local_terminal(),
        action=action,
        object=object,
        **kwargs,
    )


# --- the batching single writer --------------------------------------------------------


class AuditWriter:
    """A single writer thread that turns many producers' events into batched commits.

    Producers (ingest tasks, request handlers) call :meth:`submit` and get a future that
    resolves to the event's ``seq`` once its batch is *committed* (with
    ``synchronous=FULL``: on disk). Under load the queue fills while a commit runs, so
    the next batch is larger: throughput rises with load and latency stays one commit.
    asyncio callers wrap the future with ``asyncio.wrap_future``.
    """

    _STOP = object()

    def __init__(self, store: Store, *, max_batch: int = 5000) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, event: AuditEvent) -> Future[int]:
        if self._closed:
            raise RuntimeError("audit writer is closed")
        future: Future[int] = Future()
        self._queue.put((event, future))
        return future

    def close(self) -> None:
        """Commit what was submitted, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(self._STOP)
            self._thread.join()

    def __enter__(self) -> AuditWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[tuple[AuditEvent, Future[int]]] = []
            if item is self._STOP:
                break
            batch.append(item)
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is self._STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[AuditEvent, Future[int]]]) -> None:
        try:
            seqs = self._store.append_audit_many([event for event, _ in batch])
        except BaseException as exc:  # every waiter must learn the batch failed
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), seq in zip(batch, seqs, strict=True):
            future.set_result(seq)


PostCommit = Callable[[], None]


class AuditContext(BaseModel):
    """Who acts, from where and why: the fixed part of the events a caller appends.

    Services build one per authenticated session (or :meth:`local` for the command
    line) and pass it to data functions such as the incident ones, which then audit
    every read and change with it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = Field(min_length=1)
    role: str
    terminal: str
    purpose: str = "normal"

    @classmethod
    def local(cls) -> AuditContext:
        """The local operator running a command-line administration action."""
        return cls(actor=local_actor(), role=LOCAL_ROLE, terminal=local_terminal())

    def event(
        self,
        action: str,
        object: str = "",
        *,
        outcome: Outcome = "success",
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            actor=self.actor,
            role=self.role,
            terminal=self.terminal,
            action=action,
            object=object,
            purpose=self.purpose,
            outcome=outcome,
            detail=detail or {},
        )
