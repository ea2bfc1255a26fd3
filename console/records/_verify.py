"""``samu audit verify``: is the trail intact, and if not, where and how was it damaged?

Contract (records-security.md): open the database read-only, run SQLite's integrity
check, verify sequence continuity, every leaf and chain hash, every checkpoint signature
and Merkle root, and that no outside checkpoint is newer than the log. Exit 0 intact;
1 with the first bad sequence number and one damage kind; 2 unusable.

Damage kinds and how each is recognised (rows are read in ``seq`` order):

``edited``
    a row whose columns differ from its canonical bytes, whose leaf hash is not the hash
    of its canonical bytes, or whose chain hash does not follow the previous row; also a
    row whose ``seq`` column was changed (its event then sits at another position while
    its own position is empty), and a validly signed *inside* checkpoint whose root or
    chain head no longer matches rows that otherwise verify (rows rewritten with
    recomputed hashes). Reported at the first position not vouched for.
``deleted``
    a gap in ``seq`` (rows after it remain), or rows renumbered to close such a gap
    (their canonical bytes name the next position while the missing event is nowhere).
``reordered``
    a row holding another position's event (its canonical ``seq`` differs, its leaf
    hash matches its bytes) while that position holds this row's event — two rows'
    contents exchanged, ``seq`` kept.
``truncated``
    a checkpoint stored *in the database* covers more events than remain: tail rows
    were deleted. Also an outside checkpoint covering more events than remain when the
    ``audit_events`` triggers are gone (tail rows and the inside checkpoints deleted in
    place: an older copy of the file would still have its triggers).
``rolled back``
    an *outside* checkpoint (checkpoint directory) covers more events than the log, or
    its root/chain head does not match the log, while the database's own checkpoints
    agree with it and its ``audit_events`` triggers are in place: an older copy of the
    whole file was put back. (With those triggers gone, a disagreeing outside
    checkpoint counts as ``edited``, a too-large one as ``truncated``, as for inside
    checkpoints.)
``bad signature``
    a checkpoint (inside or outside) whose Ed25519 signature does not verify under a
    trusted installation key, or whose stored columns differ from its signed statement;
    reported at its tree size (the lower of the column's and the statement's when they
    differ).

When several are found, the first by sequence number wins; at the same position the
order above decides. A checkpoint disagreement at or after a damaged row is a
consequence of that row and is not reported separately.

Protective triggers: a missing or altered trigger is reported (``missing_triggers``)
and makes the result "damaged" (exit 1) even when every row verifies — the protection
is gone, which a trail is not supposed to survive unnoticed — but it is not one of the
six kinds: the tamper, if any, is the row damage that follows and is what the verdict
names. With intact rows the verdict reads ``damaged: protective triggers missing …``.

Why verify does not append an audit event: it is the local operator's integrity check
of the file, opened read-only so that checking a copy (or evidence) never changes it;
it reads hashes, not health data. ``samu audit export``, which hands the trail's
content out, is audited.

Read-only without side effects: when no ``-wal``/``-journal`` file sits beside the
database (no writer has it open and nothing is pending), it is opened with
``immutable=1`` so that SQLite creates no ``-shm``/``-wal`` files; otherwise with
``mode=ro`` so committed-but-not-checkpointed transactions are seen.

Speed (1 M events in < 5 s): a single SQL pass per block rebuilds each row's canonical
bytes from its columns (``printf``) and compares them in C; Python only hashes (leaf,
chain, Merkle). Blocks of 2^16 events are spread over processes when there are many;
blocks start at multiples of 2^16 so their Merkle subtrees combine into the roots of
every checkpoint without a second pass. A block that finds anything suspicious stops,
and a slower sequential diagnosis (exact JSON comparison) classifies the damage.
Rows above the largest tree size a verified checkpoint signs always get the exact
comparison (canonical form, their own seq): nothing vouches for their bytes but their
own hashes, which a forger can recompute. Rows under a checkpoint are taken as signed:
bytes someone slipped into the file before the writer signed them are not re-parsed.
Rough CPU costs per event on the 2-core benchmark machine (``samu bench store``; they
drift by ±30 % with its neighbours' load): reading the three columns the block scan
returns 1.2 µs, the SQL comparison 2.5 µs (half of it ``printf``), leaf and chain
hashes with the loop around them 1.5 µs, Merkle nodes 0.7 µs, and SQLite's integrity
check, on its own thread meanwhile, 0.6 µs. Python's per-call cost of ``hashlib`` (about
0.6 µs for a 64-byte input with OpenSSL 3) is most of the hashing time; the two
processes reach ~1.95x one. Nothing walks the table before the scan starts: no
``count(*)`` (a clean scan proves the rows are 1..n) and
``min``/``max`` come from the primary key.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from console.records._audit import EVENT_KEYS, ZERO_CHAIN, AuditEvent, canonical_text
from console.records._checkpoint import (
    Checkpoint,
    canonical_bytes,
    checkpoint_dir_for,
    installation_key_path,
    public_key_of_file,
    read_outside,
    trusted_keys,
    verify_signature,
)
from console.records._merkle import EMPTY_ROOT, MerkleLevels, fold
from console.records._migrate import missing_triggers
from console.records._schema import AUDIT_TRIGGERS

KINDS: tuple[str, ...] = (
    "edited",
    "deleted",
    "reordered",
    "truncated",
    "rolled back",
    "bad signature",
)
_PRIORITY = {kind: i for i, kind in enumerate(KINDS)}

BLOCK_BITS = 16
BLOCK = 1 << BLOCK_BITS
#: Below this many events one process is faster than forking workers.
PARALLEL_MIN_EVENTS = 150_000
#: Fewest bytes a row of ``audit_events`` occupies in the file: a 2-byte cell pointer, two
#: 1-byte varints (payload size, rowid) and a record header of 1 + 13 bytes.
_MIN_ROW_BYTES = 18

_sha256 = hashlib.sha256
#: Leaf hashes are copies of this (fed the RFC 6962 leaf prefix): cheaper than hashing
#: ``b"\x00" + canonical``, which first copies the canonical bytes.
_LEAF_PREFIX = _sha256(b"\x00")

# The canonical bytes rebuilt from the columns, compared in SQLite. Sound when it says
# "equal" and the canonical bytes hold no backslash (checked in Python, where ``92 in
# bytes`` is a memchr). Without a backslash no value needed escaping, so every double
# quote in the canonical bytes is JSON structure. String columns are rendered with
# ``%w``, which doubles their double quotes: a column absorbing a neighbour's boundary
# would carry a structural quote, rendered as two where the canonical bytes have one
# (``","`` never holds two quotes in a row), so equal bytes pin every string column from
# the left (action, actor) or from the right (object .. time), and ``detail`` is what is
# left between them. ``printf`` reads text as a C string: a column holding a NUL byte
# would be cut there (``'user:a' || char(0) || 'x'`` rebuilds as ``user:a``), so the
# byte lengths of the columns must also add up to the length of the canonical bytes,
# which rules out any cut. Rows failing it (e.g. a legitimate quote in a break-glass
# reason, escaped in the canonical bytes) get the exact JSON comparison in Python.
# ``%w`` instead of ``%s`` plus a quote search per column costs a fifth less per row.
_TEMPLATE = (
    '{"action":"%s","actor":"%s","detail":%s,"object":"%s","outcome":"%s",'
    '"purpose":"%s","role":"%s","seq":%d,"terminal":"%s","time":"%s"}'
)
_STRING_COLUMNS = ("action", "actor", "object", "outcome", "purpose", "role", "terminal", "time")
_FAST_FLAG = (
    "(canonical = CAST(printf('"
    + _TEMPLATE.replace('"%s"', '"%w"')
    + "', action, actor, detail, object, outcome, purpose, role, seq, terminal, time) AS BLOB)"
    "\n  AND length(canonical) = "
    + str(len(_TEMPLATE.replace("%s", "").replace("%d", "")))
    + " + length(seq) + "
    + " + ".join(f"length(CAST({c} AS BLOB))" for c in ("detail", *_STRING_COLUMNS))
    + ")"
)
#: ``ord("\\")``: ``int in bytes`` is a memchr, ``b"\\" in bytes`` a slower generic search.
_BACKSLASH = 0x5C

# Built from constants only (no input reaches these strings). The block scan reads three
# columns a row: the stored leaf hash comes back only when the SQL comparison vouches for
# the row's columns (NULL otherwise: the row then takes the exact path). Leaving out
# ``seq`` and the flag saves a fifth of the cost of reading a row; continuity is proven
# by the count instead: ``seq`` is the integer primary key, so ``hi - lo`` rows with
# ``lo < seq <= hi`` are exactly ``lo+1 .. hi``, the i-th in ``seq`` order being ``lo+i``.
_ROWS_SQL = (
    f"SELECT canonical, CASE WHEN {_FAST_FLAG} THEN leaf_hash END, chain_hash "  # noqa: S608
    "FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq"
)
_ALL_ROWS_SQL = (
    f"SELECT seq, {_FAST_FLAG}, canonical, leaf_hash, chain_hash FROM audit_events "  # noqa: S608
    "ORDER BY seq"
)
_COLUMNS = ("time", "actor", "role", "terminal", "action", "object", "purpose", "outcome")
_COLUMNS_SQL = (
    "SELECT "  # noqa: S608 - column names are the constants above
    + ", ".join(f"CAST({c} AS BLOB)" for c in (*_COLUMNS, "detail"))
    + " FROM audit_events WHERE seq = ?"
)


def readonly_uri(path: Path) -> str:
    """SQLite URI opening ``path`` read-only, ``immutable`` when nothing is pending."""
    pending = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal"))
    params = "mode=ro" if pending else "mode=ro&immutable=1"
    return f"file:{quote(str(Path(path).resolve()))}?{params}"


@dataclass(frozen=True)
class Damage:
    """One finding: a kind among :data:`KINDS`, the first bad ``seq`` and a human detail."""

    kind: str
    seq: int | None
    detail: str

    def sort_key(self) -> tuple[int, int, int]:
        return (self.seq is None, self.seq or 0, _PRIORITY[self.kind])


@dataclass
class VerifyReport:
    """Outcome of a verification, printable as one verdict line or as JSON."""

    db: str
    status: str = "intact"  # intact | damaged | unusable
    error: str | None = None
    events: int = 0
    chain_head: str | None = None
    checkpoints: int = 0
    outside_checkpoints: int = 0
    #: Events after the last trusted checkpoint (no signature covers them yet).
    uncovered: int = 0
    checkpoint_dir: str | None = None
    integrity: str = "ok"
    missing_triggers: list[str] = field(default_factory=list)
    damages: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def first(self) -> Damage | None:
        return min(self.damages, key=Damage.sort_key) if self.damages else None

    @property
    def exit_code(self) -> int:
        return {"intact": 0, "damaged": 1}.get(self.status, 2)

    def verdict(self) -> str:
        """One stable line: ``intact: …`` / ``damaged: <kind> at seq <n>`` / ``unusable: …``."""
        if self.status == "unusable":
            return f"unusable: {self.error}"
        first = self.first
        if first is not None:
            where = f" at seq {first.seq}" if first.seq is not None else ""
            return f"damaged: {first.kind}{where}"
        if self.missing_triggers:
            return (
                "damaged: protective triggers missing ("
                + ", ".join(self.missing_triggers)
                + "); rows verify"
            )
        return (
            f"intact: {self.events} events, {self.checkpoints} checkpoints and "
            f"{self.outside_checkpoints} outside checkpoints verified"
        )

    def details(self) -> list[str]:
        """Explanatory lines printed after the verdict."""
        lines = []
        first = self.first
        if first is not None:
            lines.append(f"detail: {first.detail}")
        if self.missing_triggers:
            lines.append("protective triggers missing: " + ", ".join(self.missing_triggers))
        if self.integrity != "ok":
            lines.append(f"integrity_check: {self.integrity}")
        others = sorted(self.damages, key=Damage.sort_key)[1:]
        for damage in others[:20]:
            where = f" at seq {damage.seq}" if damage.seq is not None else ""
            lines.append(f"also: {damage.kind}{where}: {damage.detail}")
        if len(others) > 20:
            lines.append(f"also: {len(others) - 20} more findings")
        if self.chain_head:
            lines.append(f"chain head: {self.chain_head}")
        lines.extend(f"note: {note}" for note in self.notes)
        return lines

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "status": self.status,
            "verdict": self.verdict(),
            "kind": first.kind if first else None,
            "seq": first.seq if first else None,
            "detail": first.detail if first else self.error,
            "db": self.db,
            "events": self.events,
            "chain_head": self.chain_head,
            "checkpoints": self.checkpoints,
            "outside_checkpoints": self.outside_checkpoints,
            "uncovered": self.uncovered,
            "checkpoint_dir": self.checkpoint_dir,
            "integrity": self.integrity,
            "missing_triggers": self.missing_triggers,
            "damages": [
                {"kind": d.kind, "seq": d.seq, "detail": d.detail}
                for d in sorted(self.damages, key=Damage.sort_key)
            ],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


# --- per-row checks ------------------------------------------------------------------------


def _event_rules(obj: dict[str, Any]) -> str:
    """Why the canonical fields break :class:`AuditEvent`'s own rules (``""`` when they
    hold): what the writer could never have produced. Validated by the model itself, so
    verify and the writer cannot drift apart; used on the exact path only."""
    try:
        event = AuditEvent.model_validate({k: v for k, v in obj.items() if k != "seq"})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"canonical {where} breaks the event's rules ({error['msg']})"
    if event.time_text != obj["time"]:
        return "canonical time is not a time with its offset, as the writer renders it"
    return ""


def _exact_check(
    conn: sqlite3.Connection, seq: int, canonical: bytes
) -> tuple[int | None, bool, str]:
    """Exact comparison of a row with its canonical bytes: ``(canonical seq, columns ok, why)``.

    ``canonical seq`` is ``None`` when the bytes are not a canonical event at all.
    Columns are compared as raw bytes, so a flipped byte that breaks UTF-8 is an edit,
    not a crash.
    """
    try:
        obj = json.loads(canonical.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, False, "canonical bytes are not UTF-8 JSON"
    if not isinstance(obj, dict) or tuple(sorted(obj)) != EVENT_KEYS:
        return None, False, "canonical bytes do not hold an audit event"
    cseq = obj["seq"]
    if not isinstance(cseq, int) or isinstance(cseq, bool):
        return None, False, "canonical seq is not an integer"
    try:
        if canonical_text(obj).encode("utf-8") != canonical:
            return None, False, "canonical bytes are not in canonical form"
        expected = [str(obj[c]).encode("utf-8") for c in _COLUMNS]
        expected.append(canonical_text(obj["detail"]).encode("utf-8"))
        if not all(isinstance(obj[c], str) for c in _COLUMNS) or not isinstance(
            obj["detail"], dict
        ):
            return cseq, False, "canonical fields have the wrong types"
        why = _event_rules(obj)
        if why:
            return cseq, False, why
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None, False, "canonical bytes do not hold an audit event"
    row = conn.execute(_COLUMNS_SQL, (seq,)).fetchone()
    if row is None:
        return cseq, False, "row vanished during verification"
    for name, got, want in zip((*_COLUMNS, "detail"), row, expected, strict=True):
        if got is None or bytes(got) != want:
            return cseq, False, f"column {name} differs from the canonical bytes"
    return cseq, True, ""


def _blob(value: object) -> bytes | None:
    """``value`` as bytes if SQLite returned a BLOB, else None (NULL, text, a number)."""
    return value if type(value) is bytes else None


@dataclass
class _BlockResult:
    ok: bool
    bad_seq: int | None = None
    root: bytes | None = None
    frontiers: dict[int, list[bytes]] = field(default_factory=dict)


def _scan_block(task: tuple[str, int, int, tuple[int, ...], int]) -> _BlockResult:
    """Fast check of events ``lo+1 .. hi``; frontiers of the requested block prefixes.

    ``covered``: the largest tree size a verified checkpoint signs.
    """
    uri, lo, hi, sizes, covered = task
    conn = sqlite3.connect(uri, uri=True)
    try:
        if lo == 0:
            prev = ZERO_CHAIN
        else:
            row = conn.execute(
                "SELECT chain_hash FROM audit_events WHERE seq = ?", (lo,)
            ).fetchone()
            stored = None if row is None else _blob(row[0])
            if stored is None:
                return _BlockResult(False, lo)
            prev = stored
        leaves: list[bytes] = []
        append = leaves.append
        sha = _sha256
        leaf_of = _LEAF_PREFIX.copy
        backslash = _BACKSLASH
        # Rows above ``covered`` are under no signed checkpoint: whoever can write the
        # file can append rows with correct hashes there, so each gets the exact check
        # (canonical form, its own seq), not only the column comparison.
        for start, end, exact in ((lo, min(hi, covered), False), (max(lo, covered), hi, True)):
            if end <= start:
                continue
            for canonical, vouched_leaf, chain in conn.execute(_ROWS_SQL, (start, end)):
                leaf = vouched_leaf
                if exact or leaf is None or backslash in canonical:
                    # Rare: the row needs the exact comparison. Its position is lo + i + 1
                    # unless a row is missing, and then the count below fails the block.
                    blob = _blob(canonical)
                    position = lo + len(leaves) + 1
                    leaf = None if blob is None else _exactly_vouched_leaf(conn, position, blob)
                    if leaf is None:
                        return _BlockResult(False, lo + len(leaves) + 1)
                computed = leaf_of()
                computed.update(canonical)
                if computed.digest() != leaf or sha(prev + leaf).digest() != chain:
                    return _BlockResult(False, lo + len(leaves) + 1)
                prev = chain
                append(leaf)
        if len(leaves) != hi - lo:
            return _BlockResult(False, lo + 1)
    except (sqlite3.Error, TypeError, ValueError):
        # TypeError: a column of another type than BLOB (a rebuilt table); the diagnosis
        # names it.
        return _BlockResult(False, lo + 1)
    finally:
        conn.close()
    levels = MerkleLevels(leaves)
    root = levels.levels[-1][0] if len(leaves) == BLOCK else None
    return _BlockResult(True, None, root, {s: levels.prefix_frontier(s) for s in sizes})


def _exactly_vouched_leaf(conn: sqlite3.Connection, seq: int, canonical: bytes) -> Any:
    """Stored leaf hash of row ``seq`` if its canonical bytes are the canonical event
    ``seq`` and its columns pass the exact check, else None."""
    cseq, columns_ok, _ = _exact_check(conn, seq, canonical)
    if cseq != seq or not columns_ok:
        return None
    row = conn.execute("SELECT leaf_hash FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else row[0]


def foreign_row_problem(conn: sqlite3.Connection, seq: int) -> str | None:
    """Why row ``seq`` is not an event this installation could have written, else None.

    For the writer, before it signs a checkpoint over rows it did not append itself
    (left by a crashed writer, another live process, or whoever can write the file):
    the row must be the canonical event ``seq``, its columns equal to it, its leaf and
    chain hashes right. A forger with file access can still append such rows (no key is
    needed to hash), which is why ``samu audit verify`` reports rows no signature covers.
    """
    row = conn.execute(
        "SELECT canonical, leaf_hash, chain_hash FROM audit_events WHERE seq = ?", (seq,)
    ).fetchone()
    if row is None:
        return f"row {seq} is missing"
    canonical, leaf, chain = (_blob(v) for v in row)
    if canonical is None or leaf is None or chain is None:
        return f"row {seq} has a column that is not a BLOB"
    if _exactly_vouched_leaf(conn, seq, canonical) != leaf:
        return f"row {seq} is not the canonical event it claims to be"
    computed = _LEAF_PREFIX.copy()
    computed.update(canonical)
    if computed.digest() != leaf:
        return f"row {seq}: leaf hash does not match its canonical bytes"
    prev = ZERO_CHAIN
    if seq > 1:
        before = conn.execute(
            "SELECT chain_hash FROM audit_events WHERE seq = ?", (seq - 1,)
        ).fetchone()
        prev = (None if before is None else _blob(before[0])) or b""
    if _sha256(prev + leaf).digest() != chain:
        return f"row {seq}: chain hash does not follow row {seq - 1}"
    return None


def _fast_scan(
    uri: str, n: int, sizes: Sequence[int], workers: int, on_start: Any = None
) -> dict[int, bytes] | None:
    """Roots for ``sizes`` if every row verifies, else ``None`` (then diagnose).

    A clean scan also proves that the rows are exactly ``1..n``: no count(*) needed.
    ``on_start`` runs once the workers are forked (it may start threads).
    """
    covered = max(sizes, default=0)
    tasks = []
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        wanted = tuple(sorted({s - lo for s in sizes if lo < s <= hi and s - lo != BLOCK}))
        tasks.append((uri, lo, hi, wanted, covered))
    if workers > 1 and len(tasks) > 1:
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(tasks))) as pool:
            pending = pool.map_async(_scan_block, tasks, chunksize=1)
            if on_start is not None:
                on_start()
            results = pending.get()
    else:
        if on_start is not None:
            on_start()
        results = []
        for task in tasks:
            result = _scan_block(task)
            results.append(result)
            if not result.ok:
                break
    if not all(r.ok for r in results):
        return None
    block_roots = [r.root for r in results if r.root is not None]
    top = MerkleLevels(list(block_roots))
    roots: dict[int, bytes] = {}
    for size in sizes:
        full, rest = size >> BLOCK_BITS, size & (BLOCK - 1)
        frontier = top.prefix_frontier(full) if full else []
        if rest:
            frontier = frontier + results[full].frontiers[rest]
        roots[size] = fold(frontier)
    return roots


def _diagnose(conn: sqlite3.Connection, covered: int) -> tuple[list[Damage], list[bytes]]:
    """Classify every row problem; return the damages and the clean prefix's leaves.

    Rows above ``covered`` (no verified checkpoint signs them) always get the exact
    check, as in the fast scan.
    """
    gaps: list[tuple[int, int]] = []
    displaced: list[tuple[int, int]] = []
    edited: list[tuple[int, str]] = []
    at_own_place: set[int] = set()
    moved_events: dict[int, int] = {}  # canonical seq -> row seq holding it elsewhere
    leaves: list[bytes] = []
    prev_seq = 0
    prev_chain = ZERO_CHAIN
    for raw_seq, ok, raw_canonical, raw_leaf, raw_chain in conn.execute(_ALL_ROWS_SQL):
        # A table rebuilt without STRICT may hold any type anywhere: a seq that is not an
        # integer holds no position (its event's own position is then empty), a hash
        # column that is not a BLOB is an edit.
        seq = raw_seq if type(raw_seq) is int else 0
        canonical, leaf, chain = _blob(raw_canonical), _blob(raw_leaf), _blob(raw_chain)
        if seq > prev_seq + 1:
            gaps.append((prev_seq + 1, seq - 1))
        cseq: int | None
        if canonical is None or leaf is None or chain is None:
            cseq, columns_ok, why = None, False, "canonical or a hash column is not a BLOB"
            canonical, leaf, chain = canonical or b"", leaf or b"", chain or b""
        elif ok and _BACKSLASH not in canonical and seq <= covered:
            cseq, columns_ok, why = seq, True, ""
        else:
            cseq, columns_ok, why = _exact_check(conn, seq, canonical)
        if cseq is None:
            edited.append((seq, why))
        elif _sha256(b"\x00" + canonical).digest() != leaf:
            edited.append((seq, "leaf_hash is not the hash of the canonical bytes"))
        elif cseq != seq:
            displaced.append((seq, cseq))
            moved_events[cseq] = seq
        elif not columns_ok:
            edited.append((seq, why))
        else:
            at_own_place.add(seq)
            if _sha256(prev_chain + leaf).digest() != chain:
                edited.append((seq, "chain_hash does not follow the previous row"))
        if seq >= 1:  # a row moved below 1 sorts first but follows nothing
            prev_seq = seq
            prev_chain = chain
            leaves.append(leaf)

    damages: list[Damage] = []
    for first, last in gaps:
        if first in moved_events:
            damages.append(
                Damage(
                    "edited",
                    first,
                    f"event {first} sits at seq {moved_events[first]}: its seq column was changed",
                )
            )
        else:
            span = f"events {first}..{last} are" if last > first else f"event {first} is"
            damages.append(Damage("deleted", first, f"{span} missing"))
    naming = dict(displaced)  # row seq -> the event its bytes name

    def renumbered(seq: int, cseq: int) -> bool:
        # Rows after a deletion moved down to close the gap: each names a later event,
        # and the next row names the next event (or this is the last row).
        return 1 <= seq < cseq and (seq == prev_seq or naming.get(seq + 1) == cseq + 1)

    for seq, cseq in displaced:
        if seq in moved_events:
            damages.append(
                Damage(
                    "reordered",
                    seq,
                    f"row {seq} holds event {cseq} and event {seq} sits at row {moved_events[seq]}",
                )
            )
        elif cseq in at_own_place:
            damages.append(
                Damage(
                    "edited",
                    seq,
                    f"row {seq} holds bytes naming event {cseq}, which sits at its own place",
                )
            )
        elif renumbered(seq, cseq):
            damages.append(
                Damage("deleted", seq, f"event {seq} is missing and later rows were renumbered")
            )
        else:
            where = cseq if seq < 1 else min(seq, cseq)
            damages.append(Damage("edited", where, f"row {seq} holds bytes naming event {cseq}"))
    damages.extend(Damage("edited", seq, why) for seq, why in edited)
    if damages:
        first_bad = min(d.seq for d in damages if d.seq is not None)
        leaves = leaves[: max(0, first_bad - 1)]
    return damages, leaves


# --- the whole verification ---------------------------------------------------------------


def _auto_workers() -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if threading.active_count() > 1:  # forking a threaded process is unsafe
        return 1
    return min(4, os.cpu_count() or 1)


def verify_trail(
    db_path: Path | str,
    checkpoint_dir: Path | None = None,
    *,
    installation_key_file: Path | None = None,
    workers: int | None = None,
    outside_checkpoints: Sequence[Any] = (),
) -> VerifyReport:
    """Verify the audit trail of ``db_path`` (see the module docstring for the rules).

    ``outside_checkpoints``: more outside checkpoints (``_checkpoint.OutsideFile``), judged
    like the directory's files — e.g. the retained MQTT one (``fetch_retained_checkpoint``).
    """
    started = time.perf_counter()
    path = Path(db_path)
    report = VerifyReport(db=str(path))
    try:
        _verify(
            report, path, checkpoint_dir, installation_key_file, workers, extra=outside_checkpoints
        )
    except _UnusableError as exc:
        report.status = "unusable"
        report.error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


class _UnusableError(Exception):
    pass


def _verify(
    report: VerifyReport,
    path: Path,
    checkpoint_dir: Path | None,
    installation_key_file: Path | None,
    workers: int | None,
    *,
    extra: Sequence[Any] = (),
) -> None:
    if not path.exists():
        raise _UnusableError(f"no such file: {path}")
    if not path.is_file():
        raise _UnusableError(f"not a file: {path}")
    outside_dir = checkpoint_dir_for(path, checkpoint_dir)
    report.checkpoint_dir = str(outside_dir)
    # Outside files first: with a writer running, they can then only be older than what
    # we read from the database afterwards.
    outside_files = [*read_outside(outside_dir), *extra]
    uri = readonly_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise _UnusableError(f"not a readable SQLite database: {path} ({exc})") from exc
    try:
        if "audit_events" not in tables:
            raise _UnusableError(f"no audit_events table in {path}: not a samu database")
        _verify_open(
            report,
            conn,
            uri=uri,
            tables=tables,
            path=path,
            outside_dir=outside_dir,
            outside_files=outside_files,
            installation_key_file=installation_key_file,
            workers=workers,
        )
    except sqlite3.DatabaseError as exc:
        raise _UnusableError(f"cannot read {path}: {exc}") from exc
    finally:
        conn.close()


@dataclass
class _Snapshot:
    """What one read transaction saw of the trail's metadata (phase 1)."""

    log_id: str | None
    log_rows: list[Any]
    key_rows: list[Any]
    cp_rows: list[Any]
    n: int  # the highest integer seq: the log's length if nothing was removed
    scan: bool  # the fast scan may prove the rows are exactly 1..n


def _verify_open(
    report: VerifyReport,
    conn: sqlite3.Connection,
    *,
    uri: str,
    tables: set[str],
    path: Path,
    outside_dir: Path,
    outside_files: list[Any],
    installation_key_file: Path | None,
    workers: int | None,
) -> None:
    """The phases of a verification, in order: snapshot the metadata; judge the
    installation key file, the inside and the outside checkpoints by their signatures;
    scan the rows (integrity check beside it); match every trusted checkpoint against the
    rows; conclude."""
    snap = _snapshot(conn, tables)
    n = snap.n
    report.missing_triggers = missing_triggers(conn, AUDIT_TRIGGERS)
    trusted = trusted_keys(snap.key_rows)
    if not trusted:
        report.notes.append("no installation key recorded: checkpoints cannot be trusted")
    _judge_key_file(report, path, installation_key_file, trusted, snap.cp_rows)
    inside = _judge_inside(report, snap, trusted)
    outside = _judge_outside(report, outside_files, trusted, snap.log_id)
    if "audit_log" in tables and len(snap.log_rows) != 1:
        report.damages.append(
            Damage(
                "edited",
                1,
                f"audit_log holds {len(snap.log_rows)} rows where the trail has exactly one id: "
                "the trail's identity was edited",
            )
        )
    if not outside_files:
        report.notes.append(
            f"no outside checkpoints in {outside_dir}: restoring an older copy of the "
            "database could not be detected"
        )
    sizes = sorted({cp.tree_size for cp in inside} | {cp.tree_size for _, cp in outside})
    sizes = [s for s in sizes if 0 < s <= n]
    roots, row_damages = _scan_rows(
        report, conn=conn, uri=uri, snap=snap, sizes=sizes, workers=workers
    )
    report.damages.extend(row_damages)
    first_row = min((d.seq for d in row_damages if d.seq is not None), default=n + 1)
    _match_checkpoints(
        report, conn, inside=inside, outside=outside, roots=roots, n=n, first_row=first_row
    )
    if report.integrity != "ok" and not report.damages:
        report.damages.append(
            Damage("edited", None, f"SQLite integrity check failed: {report.integrity}")
        )
    report.checkpoints = len(inside)
    report.outside_checkpoints = len(outside)
    signed = max((cp.tree_size for cp in inside), default=0)
    signed = max(signed, max((cp.tree_size for _, cp in outside), default=0))
    report.uncovered = max(0, n - signed)
    tail = writerless_tail(conn)
    if tail is not None and not report.damages:  # a finer diagnosis of the rows wins
        covered, last = tail
        report.damages.append(
            Damage(
                "edited",
                covered + 1,
                f"{last - covered} event(s) after seq {covered} were appended after the last "
                "writer closed cleanly: no writer wrote them",
            )
        )
    elif report.uncovered:
        report.notes.append(
            f"{report.uncovered} event(s) after seq {n - report.uncovered} are not yet covered "
            "by a signed checkpoint (a running writer signs them soon; a crashed one at its "
            "next start)"
        )
    if n:
        head = _chain_at(conn, n)
        report.chain_head = head.hex() if head else None
    if report.damages or report.missing_triggers:
        report.status = "damaged"


def _snapshot(conn: sqlite3.Connection, tables: set[str]) -> _Snapshot:
    conn.execute("BEGIN")  # one snapshot for the metadata
    log_id = None
    log_rows: list[Any] = []
    if "audit_log" in tables:
        log_rows = [r[0] for r in conn.execute("SELECT log_id FROM audit_log")]
        # Exactly one row names the trail; with more (or none) it is not known which
        # one checkpoints should name, so none is trusted and the table is an edit.
        log_id = str(log_rows[0]) if len(log_rows) == 1 else None
    key_rows = (
        conn.execute(
            "SELECT key_id, public_key, endorsement FROM audit_keys ORDER BY id"
        ).fetchall()
        if "audit_keys" in tables
        else []
    )
    cp_rows = (
        conn.execute(
            "SELECT id, tree_size, root, chain_head, time, key_id, statement, signature "
            "FROM audit_checkpoints ORDER BY id"
        ).fetchall()
        if "audit_checkpoints" in tables
        else []
    )
    # Two subqueries: SQLite answers a lone min() or max() from the primary key's b-tree,
    # but min() and max() (or count(*)) together in one SELECT scan the whole table.
    low, high = conn.execute(
        "SELECT (SELECT min(seq) FROM audit_events), (SELECT max(seq) FROM audit_events)"
    ).fetchone()
    # No count(*): it walks the whole table (0.2 s for 1 M events). A clean fast scan
    # proves the rows are exactly 1..n; it is tried when the trail starts at 1 and the
    # file can hold n rows at all (a row takes at least _MIN_ROW_BYTES of a page), so
    # that a row moved to a huge seq does not make it plan billions of blocks.
    typed = high is None or (type(low) is int and type(high) is int)
    if not typed:
        # A table rebuilt without ``INTEGER PRIMARY KEY`` may hold text or real seqs:
        # only integer ones are positions; the diagnosis reports the others.
        (high,) = conn.execute(
            "SELECT max(seq) FROM audit_events WHERE typeof(seq) = 'integer'"
        ).fetchone()
    n = int(high or 0)
    page_count, page_size = (
        int(conn.execute(f"PRAGMA {name}").fetchone()[0]) for name in ("page_count", "page_size")
    )
    conn.execute("COMMIT")
    scan = low is None or (typed and low == 1 and n <= page_count * page_size // _MIN_ROW_BYTES)
    return _Snapshot(log_id, log_rows, key_rows, cp_rows, n, bool(scan))


def _judge_key_file(
    report: VerifyReport,
    path: Path,
    installation_key_file: Path | None,
    trusted: dict[str, bytes],
    cp_rows: list[Any],
) -> None:
    """The key file beside the database must be one of the keys the database records."""
    key_file = installation_key_path(path, installation_key_file)
    file_key = public_key_of_file(key_file) if key_file.exists() else None
    if file_key is not None and trusted and file_key not in trusted.values():
        report.damages.append(
            Damage(
                "bad signature",
                min((int(r[1]) for r in cp_rows), default=None),
                f"installation key file {key_file} is not among the database's audit keys",
            )
        )


def _judge_inside(
    report: VerifyReport, snap: _Snapshot, trusted: dict[str, bytes]
) -> list[Checkpoint]:
    """The database's own checkpoints whose statement and signature hold."""
    damages = report.damages
    log_id = snap.log_id
    inside: list[Checkpoint] = []
    for cp_id, size, root, head, when, key_id, raw_statement, signature in snap.cp_rows:
        statement = _blob(raw_statement) or b""
        signed_size: int | None = None
        try:
            if type(raw_statement) is not bytes:
                raise TypeError("statement is not a BLOB")
            parsed = json.loads(statement)
            if isinstance(parsed, dict):
                signed_size = _int_or_none(parsed.get("tree_size"))
            cp = Checkpoint.from_statement(parsed, _blob(signature) or b"")
            if canonical_bytes(parsed) != statement:
                raise ValueError("statement bytes are not canonical")
            if (size, _blob(root), _blob(head), when, key_id) != (
                cp.tree_size,
                cp.root,
                cp.chain_head,
                cp.time,
                cp.key_id,
            ):
                raise ValueError("columns differ from the signed statement")
            if log_id is not None and cp.log_id != log_id:
                raise ValueError(f"statement names another trail ({cp.log_id})")
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
            # Column and statement may disagree on the size: report the lower one, the
            # first position this checkpoint no longer vouches for.
            sizes_claimed = [s for s in (_int_or_none(size), signed_size) if s is not None]
            damages.append(
                Damage(
                    "bad signature",
                    min(sizes_claimed, default=None),
                    f"checkpoint #{cp_id}: {exc}",
                )
            )
            continue
        public = trusted.get(cp.key_id)
        if public is None:
            damages.append(
                Damage(
                    "bad signature",
                    cp.tree_size,
                    f"checkpoint #{cp_id} is signed by unknown key {cp.key_id}",
                )
            )
        elif not verify_signature(public, statement, cp.signature):
            damages.append(
                Damage(
                    "bad signature", cp.tree_size, f"checkpoint #{cp_id}: signature does not verify"
                )
            )
        else:
            inside.append(cp)

    return inside


def _judge_outside(
    report: VerifyReport, outside_files: list[Any], trusted: dict[str, bytes], log_id: str | None
) -> list[tuple[str, Checkpoint]]:
    """The outside checkpoints (files, retained message) whose signature holds."""
    damages = report.damages
    outside: list[tuple[str, Checkpoint]] = []
    for item in outside_files:
        name = item.path.name
        cp = item.checkpoint
        if cp is None:
            damages.append(
                Damage(
                    "bad signature",
                    _size_in_name(name),
                    f"outside checkpoint {name}: {item.error}",
                )
            )
            continue
        public = trusted.get(cp.key_id)
        if log_id is not None and cp.log_id != log_id:
            if public is None or not verify_signature(public, cp.statement_bytes(), cp.signature):
                report.notes.append(f"outside checkpoint {name} belongs to another trail; ignored")
                continue
            # Signed by this installation's key for another trail id: the database's
            # trail id was changed (or the file replaced by another trail). Judged
            # against the log like the others, so what it covers cannot be lost unseen.
            report.notes.append(
                f"outside checkpoint {name} is signed by this installation for trail "
                f"{cp.log_id}, but the database names trail {log_id}"
            )
        if public is None:
            damages.append(
                Damage(
                    "bad signature",
                    cp.tree_size,
                    f"outside checkpoint {name} is signed by unknown key {cp.key_id}",
                )
            )
        elif not verify_signature(public, cp.statement_bytes(), cp.signature):
            damages.append(
                Damage(
                    "bad signature",
                    cp.tree_size,
                    f"outside checkpoint {name}: signature does not verify",
                )
            )
        else:
            outside.append((name, cp))
    return outside


def _scan_rows(
    report: VerifyReport,
    *,
    conn: sqlite3.Connection,
    uri: str,
    snap: _Snapshot,
    sizes: list[int],
    workers: int | None,
) -> tuple[dict[int, bytes], list[Damage]]:
    """Merkle roots at ``sizes`` and the damaged rows: the fast parallel scan when it
    can prove the rows are exactly 1..n, else the row-by-row diagnosis. SQLite's
    integrity check runs on its own connection meanwhile."""
    n = snap.n
    # Integrity check on its own connection, concurrently with the row scan.
    integrity: list[str] = []

    def run_integrity() -> None:
        check = sqlite3.connect(uri, uri=True)
        try:
            integrity.extend(str(r[0]) for r in check.execute("PRAGMA integrity_check"))
        except sqlite3.Error as exc:
            integrity.append(str(exc))
        finally:
            check.close()

    checker = threading.Thread(target=run_integrity, name="integrity-check")
    roots: dict[int, bytes] | None = None
    if snap.scan:
        chosen = workers if workers is not None else _auto_workers()
        if n < PARALLEL_MIN_EVENTS and workers is None:
            chosen = 1
        roots = _fast_scan(uri, n, sizes, chosen, on_start=checker.start)
    else:
        checker.start()
    row_damages: list[Damage] = []
    if roots is not None:
        report.events = n
    else:
        # rows appended since the snapshot (seq > n) are not counted, as in the snapshot
        count = conn.execute("SELECT count(*) FROM audit_events WHERE seq <= ?", (n,)).fetchone()
        report.events = int(count[0])
        row_damages, clean = _diagnose(conn, max(sizes, default=0))
        clean_levels = MerkleLevels(clean)
        roots = {s: fold(clean_levels.prefix_frontier(s)) for s in sizes if s <= len(clean)}
    checker.join()
    report.integrity = "ok" if integrity == ["ok"] else "; ".join(integrity[:5])
    return roots, row_damages


def _chain_at(conn: sqlite3.Connection, size: int) -> bytes:
    if size == 0:
        return ZERO_CHAIN
    row = conn.execute("SELECT chain_hash FROM audit_events WHERE seq = ?", (size,)).fetchone()
    return (None if row is None else _blob(row[0])) or b""


def _match_checkpoints(
    report: VerifyReport,
    conn: sqlite3.Connection,
    *,
    inside: list[Checkpoint],
    outside: list[tuple[str, Checkpoint]],
    roots: dict[int, bytes],
    n: int,
    first_row: int,
) -> None:
    """Every trusted checkpoint against the rows: truncation, roll-back, edits."""
    damages = report.damages
    # An outside checkpoint ahead of or disagreeing with a log whose own checkpoints agree
    # is a restored older copy -- unless the audit_events triggers are gone: an older copy
    # keeps them, so rows were then deleted or rewritten in place (inside checkpoints
    # removed too) and the damage is named as such.
    in_place = any(name.startswith("audit_events_") for name in report.missing_triggers)
    candidates = [(cp, True) for cp in inside] + [(cp, False) for _, cp in outside]
    candidates.sort(key=lambda item: item[0].tree_size)
    matched: list[int] = [0]
    for cp, is_inside in candidates:
        size = cp.tree_size
        if size > n:
            if is_inside or in_place:
                damages.append(
                    Damage(
                        "truncated",
                        n + 1,
                        f"a checkpoint {'in the database' if is_inside else 'outside'} "
                        f"covers {size} events but the log ends at seq {n}",
                    )
                )
            else:
                damages.append(
                    Damage(
                        "rolled back",
                        n + 1,
                        f"an outside checkpoint covers {size} events but the log ends at seq {n}",
                    )
                )
            continue
        if size >= first_row:
            continue
        root = EMPTY_ROOT if size == 0 else roots.get(size)
        if root == cp.root and _chain_at(conn, size) == cp.chain_head:
            matched.append(size)
            continue
        vouched = max(m for m in matched if m < size) if any(m < size for m in matched) else 0
        what = "root/chain head" if root != cp.root else "chain head"
        if is_inside or in_place:
            damages.append(
                Damage(
                    "edited",
                    vouched + 1,
                    f"the {what} of the {'' if is_inside else 'outside '}checkpoint at "
                    f"{size} events no longer matches the rows",
                )
            )
        else:
            damages.append(
                Damage(
                    "rolled back",
                    vouched + 1,
                    f"the {what} of the outside checkpoint at {size} events does not match the log",
                )
            )


def _size_in_name(name: str) -> int | None:
    """Tree size written in an outside file's name (``checkpoint-<size>-…``), if any."""
    match = re.fullmatch(r"checkpoint-(\d{1,18})-.*\.json", name)
    return int(match.group(1)) if match else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def writerless_tail(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """``(covered, last)`` when events after ``covered`` were appended while no writer
    ran: every writer that opened the store has ended, the last one cleanly, leaving
    ``covered`` events under its final checkpoint, and the log goes on to ``last``.

    None when a writer may be running (or crashed: its rows are then the crash's to
    recover), or when nothing follows the clean close.
    """
    try:
        rows = conn.execute(
            "SELECT closed_at, ended, covered FROM audit_writers ORDER BY closed_at, id"
        ).fetchall()
    except sqlite3.Error:
        return None  # a database from before the writers table
    if not rows or any(closed is None for closed, _, _ in rows):
        return None
    _, ended, covered = rows[-1]
    if ended != "clean" or not isinstance(covered, int):
        return None
    (last,) = conn.execute("SELECT max(seq) FROM audit_events").fetchone()
    if isinstance(last, int) and last > covered:
        return covered, last
    return None
