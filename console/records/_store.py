"""The SQLite store: one file, WAL, ``synchronous=FULL``, migrations, the audit trail.

Why these settings: WAL lets readers (terminals, ``samu audit verify``) work while the
single writer commits; ``synchronous=FULL`` makes every acknowledged commit durable
across power loss, which an audit trail and clinical records need (a SIGKILL alone
would be survived by NORMAL, a power cut not); foreign keys are off by default in
SQLite and must be switched on per connection.

**Concurrency model** (one rule for every caller, documented for the next ones):

* **One writer.** A :class:`Store` owns one writer connection; every write goes through
  :meth:`Store.transaction` (``BEGIN IMMEDIATE`` takes the write lock up front, so a
  transaction never fails half-way on a lock upgrade), serialised by a re-entrant lock.
  In the hub the writer is one task (ingest's batch committer) and everything else hands
  it work; high-rate producers use :class:`console.records.AuditWriter`, which batches
  events into few commits. Other processes may open the same file: SQLite serialises
  writers and the audit append reads the chain head inside its own write transaction, so
  the chain never forks.
* **Readers on their own connections.** :meth:`Store.read` gives the calling thread its
  own read-only connection inside a read transaction: a consistent snapshot of committed
  data, never another thread's half-done transaction, and never waiting for the writer
  (WAL). Code already inside a write transaction reads through that transaction's
  connection, so it sees its own changes.
* **No threads of its own.** Periodic checkpoints are the owner's job: the hub's loop
  calls :meth:`Store.tick`; short commands simply close (close checkpoints).

sqlite-utils: reads use it (:meth:`Store.query` returns rows as dicts through
``sqlite_utils.Database.query``), writes do not — its write helpers commit through
``with conn:``, which would commit in the middle of the single writer's transaction,
and its ``transform()`` drops triggers (forbidden on audit tables). Writes are plain
parameterised SQL inside :meth:`transaction`.

Checkpoints are taken every ``checkpoint_every`` events, when a minute has passed with
new events (on the next append, or on the owner's :meth:`tick`), at start-up when events
are not yet covered (after a crash), on close, and on demand. Each is committed, then
written to the checkpoint directory, then handed to the listeners
(:meth:`add_checkpoint_listener`) — the composition root attaches the MQTT publisher
there, which publishes it as a retained message without ever slowing or failing a write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

from console.records._audit import AuditEvent, append_rows, last_position, local_event
from console.records._checkpoint import (
    Checkpoint,
    InstallationKey,
    checkpoint_dir_for,
    installation_key_path,
    trusted_keys,
    write_outside,
)
from console.records._errors import KeyFileError, SchemaError, StoreError
from console.records._merkle import Frontier
from console.records._migrate import (
    MIGRATION_SETS,
    apply_migrations,
    check_protective_triggers,
    check_schema_version,
    load_migrations,
    load_protective_triggers,
)

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_EVERY = 10_000
DEFAULT_CHECKPOINT_INTERVAL_S = 60.0
BUSY_TIMEOUT_MS = 10_000
#: Page size of a new database file (an existing file keeps its own). Most of the file
#: is the audit trail: ~500-byte rows appended in order and read back in full scans, for
#: which 16 KiB pages mean a quarter of the page reads and b-tree cells of 4 KiB pages;
#: ``samu audit verify`` of 1 M events takes ~8 % less CPU. The cost is on single-event
#: commits, which write a 16 KiB page to the WAL: ~1 100 commits/s instead of ~1 500/s
#: here, far above a centre's rate of audited accesses (batches are unaffected).
PAGE_SIZE = 16_384


def _now_text() -> str:
    return datetime.now(UTC).isoformat()


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's pragmas (autocommit mode: we issue BEGIN ourselves)."""
    if readonly:
        # Plain mode=ro, never immutable: a read-only store lives alongside a writer.
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            # Only takes effect on a new, empty file, and must come before WAL mode.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: could not switch to WAL journal mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a usable SQLite database ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    """The records store. Open with :meth:`Store.open`; close (or use ``with``)."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        readonly: bool,
        checkpoint_dir: Path,
        checkpoint_every: int,
        checkpoint_interval_s: float,
        key: InstallationKey | None,
        log_id: str,
    ) -> None:
        self.path = path
        self.readonly = readonly
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self.log_id = log_id
        self._conn = conn
        self._key = key
        self._lock = threading.RLock()
        self._depth = 0
        self._post_commit: list[Checkpoint] = []
        self._closed = False
        self._last_checkpoint_mono = time.monotonic()
        self._readers = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._listeners: list[Callable[[Checkpoint], None]] = []
        #: Seq ranges this process appended (committed), above the last checkpoint: a
        #: checkpoint signs other rows only after they pass the exact check.
        self._writer_row = 0
        self._own: list[tuple[int, int]] = []
        self._own_pending: list[tuple[int, int]] = []
        self.db = sqlite_utils.Database(conn)

    # --- opening and closing -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        checkpoint_dir: Path | None = None,
        readonly: bool = False,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
        installation_key_file: Path | None = None,
        migration_sets: Sequence[str] = MIGRATION_SETS,
    ) -> Store:
        """Open (creating if needed) the store at ``path``.

        Writer mode applies pending migrations, then refuses to start when the schema is
        newer than this code or a protective trigger is missing, loads (or on first use
        creates) the installation key and checkpoints anything not yet covered.
        Read-only mode applies nothing and refuses a database that needs migrations.

        Publishing checkpoints elsewhere (the retained MQTT topic) is attached by the
        caller with :meth:`add_checkpoint_listener`; the store knows only listeners.

        Raises:
            StoreError: the file is not a usable database (a directory, not SQLite), one
                of the checks failed (:class:`SchemaError`, :class:`KeyFileError`
                subclasses say which).
        """
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a database file")
        if readonly and not path.is_file():
            raise StoreError(f"database not found: {path}")
        if not path.parent.is_dir():
            raise StoreError(f"directory does not exist: {path.parent}")
        if not readonly and not path.exists():
            # Health data: owner-only from the first byte. SQLite gives its -wal and -shm
            # files the database file's permissions, so they follow.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        migrations = load_migrations(migration_sets)
        triggers = load_protective_triggers(migration_sets)
        conn = connect(path, readonly=readonly)
        try:
            if readonly:
                check_schema_version(conn, migrations)
                pending = _pending(conn, migrations)
                if pending:
                    raise SchemaError(
                        f"{path} needs migrations ({', '.join(pending)}); open it once "
                        "read-write (any samu command with --db) before reading it"
                    )
                key = None
            else:
                apply_migrations(conn, migrations)
                key = InstallationKey.load_or_create(
                    installation_key_path(path, installation_key_file)
                )
            check_protective_triggers(conn, triggers)
            log_id = str(conn.execute("SELECT log_id FROM audit_log").fetchone()[0])
        except BaseException:
            conn.close()
            raise
        store = cls(
            path,
            conn,
            readonly=readonly,
            checkpoint_dir=checkpoint_dir_for(path, checkpoint_dir),
            checkpoint_every=max(1, checkpoint_every),
            checkpoint_interval_s=checkpoint_interval_s,
            key=key,
            log_id=log_id,
        )
        if not readonly:
            try:
                store._register_key()
                store._register_writer()
                store._recover_checkpoints()
            except BaseException:
                conn.close()
                raise
        return store

    def close(self) -> None:
        """Checkpoint events not yet covered, close the reader connections and the
        writer's. (Listeners publishing elsewhere are their owner's to drain first.)"""
        if self._closed:
            return
        try:
            if not self.readonly:
                with contextlib.suppress(StoreError, sqlite3.Error):
                    self.checkpoint(force=False)
                with contextlib.suppress(StoreError, sqlite3.Error):
                    self._close_writer()
        finally:
            with self._lock:
                self._closed = True
                self._conn.close()
            with self._readers_lock:
                readers, self._reader_conns = self._reader_conns, []
            for reader in readers:
                with contextlib.suppress(sqlite3.Error):
                    reader.close()

    def _close_writer(self) -> None:
        if not self._writer_row:
            return
        with self.transaction() as conn:
            (covered,) = conn.execute("SELECT max(tree_size) FROM audit_checkpoints").fetchone()
            conn.execute(
                "UPDATE audit_writers SET closed_at = ?, ended = 'clean', covered = ? WHERE id = ?",
                (_now_text(), int(covered or 0), self._writer_row),
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The writer connection (use :meth:`transaction` to write, :meth:`read` to read)."""
        return self._conn

    # --- reads ------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("store is closed")
            conn = connect(self.path, readonly=True)
            self._readers.conn = conn
            self._readers.depth = 0
            with self._readers_lock:
                self._reader_conns.append(conn)
        return conn

    @contextlib.contextmanager
    def read(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A consistent read of committed data on this thread's own connection.

        With ``conn`` (the connection of an open :meth:`transaction`), that connection is
        used instead, so a writer reads its own uncommitted changes. Nested calls share
        the outer snapshot.
        """
        if conn is not None:
            yield conn
            return
        if self._closed:
            raise StoreError("store is closed")
        reader = self._reader()
        depth = int(getattr(self._readers, "depth", 0))
        if depth == 0:
            reader.execute("BEGIN")
        self._readers.depth = depth + 1
        try:
            yield reader
        finally:
            self._readers.depth = depth
            if depth == 0 and reader.in_transaction:
                reader.execute("COMMIT")

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, conn: Any = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts (sqlite-utils' ``Database.query``) from a :meth:`read` snapshot."""
        with self.read(conn) as c:
            return list(sqlite_utils.Database(c).query(sql, params))

    def fetchone(
        self, sql: str, params: Sequence[Any] = (), *, conn: sqlite3.Connection | None = None
    ) -> Any:
        """The first row (a tuple) of ``sql`` or ``None``, read as :meth:`read` does."""
        with self.read(conn) as c:
            return c.execute(sql, params).fetchone()

    def fetchall(
        self, sql: str, params: Sequence[Any] = (), *, conn: sqlite3.Connection | None = None
    ) -> list[Any]:
        """Every row (tuples) of ``sql``, read as :meth:`read` does."""
        with self.read(conn) as c:
            return c.execute(sql, params).fetchall()

    @property
    def public_key(self) -> bytes | None:
        """Raw Ed25519 public key of the installation key (``None`` read-only)."""
        return None if self._key is None else self._key.public_raw

    # --- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write transaction; nested calls become savepoints.

        Outside checkpoint files registered during the transaction are written only
        after the outermost COMMIT succeeded.
        """
        if self.readonly:
            raise StoreError("store is open read-only")
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            conn = self._conn
            if self._depth:
                name = f"sp{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                published = len(self._post_commit)
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    del self._post_commit[published:]
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self._post_commit = []
            self._own_pending = []
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._post_commit = []
                self._own_pending = []
                raise
            finally:
                self._depth = 0
            for first, last in self._own_pending:
                _add_range(self._own, first, last)
            self._own_pending = []
            pending, self._post_commit = self._post_commit, []
            for checkpoint in pending:
                self._publish(checkpoint)

    # --- the audit trail -----------------------------------------------------------------

    def append_audit(self, event: AuditEvent, conn: sqlite3.Connection | None = None) -> int:
        """Append one event; returns its ``seq``.

        Without ``conn`` the event is committed (durably) before this returns. With the
        ``conn`` of an open :meth:`transaction`, it is part of that transaction: the
        change and its audit record land together or not at all.
        """
        return self.append_audit_many([event], conn)[0]

    def append_audit_many(
        self, events: Sequence[AuditEvent], conn: sqlite3.Connection | None = None
    ) -> list[int]:
        """Append a batch with one ``executemany`` (and one commit when ``conn`` is None)."""
        if not events:
            return []
        if self.readonly:
            raise StoreError("store is open read-only")
        if conn is None:
            with self.transaction() as tx:
                return self._append(tx, events)
        if conn is self._conn:
            with self._lock:
                if not self._depth:
                    raise StoreError("conn has no open transaction: use store.transaction()")
                return self._append(conn, events)
        if not conn.in_transaction:
            raise StoreError("conn has no open transaction")
        return append_rows(conn, events)  # a foreign connection: no checkpoint from here

    def _append(self, conn: sqlite3.Connection, events: Sequence[AuditEvent]) -> list[int]:
        seqs = append_rows(conn, events)
        first, last = seqs[0], seqs[-1]
        _add_range(self._own_pending, first, last)
        every = self.checkpoint_every
        due_count = (first - 1) // every != last // every
        due_time = time.monotonic() - self._last_checkpoint_mono >= self.checkpoint_interval_s
        if due_count or due_time:
            self._checkpoint_in(conn, strict=False)
        return seqs

    def checkpoint(self, *, force: bool = True) -> Checkpoint | None:
        """Take a checkpoint now (``force=False``: only if events are not yet covered).

        Raises:
            StoreError: the trail is damaged (gaps), so no honest statement can be signed.
        """
        with self.transaction() as conn:
            if not force:
                covered = conn.execute("SELECT max(tree_size) FROM audit_checkpoints").fetchone()[0]
                if (covered or 0) >= last_position(conn)[0]:
                    return None
            return self._checkpoint_in(conn, strict=True)

    def _checkpoint_in(self, conn: sqlite3.Connection, *, strict: bool) -> Checkpoint | None:
        """Sign a checkpoint inside the open transaction; publish it after commit."""
        assert self._key is not None
        size, head = last_position(conn)
        frontier = _latest_frontier(conn, size)
        cursor = conn.execute(
            "SELECT seq, leaf_hash FROM audit_events WHERE seq > ? ORDER BY seq", (frontier.size,)
        )
        expected = frontier.size
        leaves: list[bytes] = []
        for seq, leaf in cursor:
            expected += 1
            if seq != expected:
                break
            leaves.append(leaf)
        from console.records._verify import foreign_row_problem

        covered_before = frontier.size
        for seq in range(covered_before + 1, covered_before + len(leaves) + 1):
            if self._is_own(seq):
                continue
            problem = foreign_row_problem(conn, seq)
            if problem is not None:
                message = (
                    f"refusing to sign a checkpoint over a row this writer did not append: "
                    f"{problem}; run `samu audit verify`"
                )
                if strict:
                    raise StoreError(message)
                log.error(message)
                return None
        frontier.extend(leaves)
        if frontier.size != size:
            message = (
                f"audit trail has a gap after seq {frontier.size}: refusing to sign a "
                "checkpoint; run `samu audit verify`"
            )
            if strict:
                raise StoreError(message)
            log.error(message)
            return None
        checkpoint = Checkpoint.sign(
            self._key,
            tree_size=size,
            root=frontier.root(),
            chain_head=head,
            time=_now_text(),
            log_id=self.log_id,
        )
        conn.execute(
            "INSERT INTO audit_checkpoints (tree_size, root, chain_head, time, key_id, "
            "statement, signature, frontier) VALUES (?,?,?,?,?,?,?,?)",
            (
                checkpoint.tree_size,
                checkpoint.root,
                checkpoint.chain_head,
                checkpoint.time,
                checkpoint.key_id,
                checkpoint.statement_bytes(),
                checkpoint.signature,
                frontier.to_bytes(),
            ),
        )
        self._post_commit.append(checkpoint)
        self._own = [(a, b) for a, b in self._own if b > size]
        return checkpoint

    def _is_own(self, seq: int) -> bool:
        return any(a <= seq <= b for a, b in (*self._own, *self._own_pending))

    def add_checkpoint_listener(self, listener: Callable[[Checkpoint], None]) -> None:
        """Call ``listener`` with every checkpoint once committed and written outside.

        The hub uses it to publish checkpoints on a retained MQTT topic — a third copy
        out of reach of whoever can replace the database file. Listener errors are
        logged, never raised into the writer.
        """
        self._listeners.append(listener)

    def holds_checkpoint(self, tree_size: int, root: bytes) -> bool:
        """Whether ``audit_checkpoints`` has a checkpoint of that size and Merkle root."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            row = self._conn.execute(
                "SELECT 1 FROM audit_checkpoints WHERE tree_size = ? AND root = ? LIMIT 1",
                (tree_size, root),
            ).fetchone()
        return row is not None

    def trusted_audit_keys(self) -> dict[str, bytes]:
        """key_id -> raw public key of every trusted installation key (:func:`trusted_keys`)."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            rows = self._conn.execute(
                "SELECT key_id, public_key, endorsement FROM audit_keys ORDER BY id"
            ).fetchall()
        return trusted_keys(rows)

    def _publish(self, checkpoint: Checkpoint) -> None:
        self._last_checkpoint_mono = time.monotonic()
        try:
            write_outside(self.checkpoint_dir, checkpoint)
        except OSError as exc:  # the database copy stands; the next one will retry
            log.error("cannot write outside checkpoint to %s: %s", self.checkpoint_dir, exc)
        for listener in list(self._listeners):
            try:
                listener(checkpoint)
            except Exception:
                log.exception("checkpoint listener %r failed", listener)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The most recent checkpoint stored in the database."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            row = self._conn.execute(
                "SELECT statement, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        import json

        return Checkpoint.from_statement(json.loads(row[0]), bytes(row[1]), self.public_key or b"")

    def backup_to(self, dest: Path) -> None:
        """Consistent copy of the database to ``dest`` with SQLite's online backup API.

        One backup step copies every page under a single read snapshot, so writers in
        other processes carry on and the copy is a state the database really was in.
        """
        with self._lock, contextlib.closing(sqlite3.connect(dest)) as target:
            self._conn.backup(target)

    # --- start-up helpers ----------------------------------------------------------------

    def _register_key(self) -> None:
        """Record the installation public key (first use) or check it belongs here."""
        assert self._key is not None
        key = self._key
        rows = self._conn.execute(
            "SELECT key_id, public_key, endorsement FROM audit_keys ORDER BY id"
        ).fetchall()
        if not rows:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO audit_keys (key_id, algorithm, public_key, added_at, "
                    "endorsement) VALUES (?, 'Ed25519', ?, ?, NULL)",
                    (key.key_id, key.public_raw, _now_text()),
                )
                self._append(
                    conn,
                    [
                        local_event(
                            "audit.key.add",
                            f"audit-key:{key.key_id}",
                            detail={"key_id": key.key_id, "public_key": key.public_raw.hex()},
                        )
                    ],
                )
            return
        if key.public_raw not in trusted_keys(rows).values():
            raise KeyFileError(
                f"installation key {key.path} (id {key.key_id}) does not belong to this "
                f"database (its audit keys: {', '.join(r[0] for r in rows)}); restore the "
                "right key file or point SAMU_INSTALLATION_KEY_FILE at it"
            )

    def _register_writer(self) -> None:
        """Record this writer; writers of this host whose process is gone crashed.

        Refuses to start when events were appended after the last writer closed
        cleanly, with no writer running: no writer wrote them, and signing a checkpoint
        over them would vouch for a forgery (``samu audit verify`` names them).
        """
        from console.records._verify import writerless_tail

        host, now = socket.gethostname(), _now_text()
        with self.transaction() as conn:
            for row_id, pid in conn.execute(
                "SELECT id, pid FROM audit_writers WHERE closed_at IS NULL AND host = ?", (host,)
            ).fetchall():
                if not _alive(int(pid)):
                    conn.execute(
                        "UPDATE audit_writers SET closed_at = ?, ended = 'crashed' WHERE id = ?",
                        (now, row_id),
                    )
            tail = writerless_tail(conn)
            if tail is not None:
                covered, last = tail
                raise StoreError(
                    f"{last - covered} audit event(s) after seq {covered} were appended after "
                    "the last writer closed cleanly: no writer wrote them; refusing to sign "
                    "them - run `samu audit verify` and restore from a verified backup"
                )
            cur = conn.execute(
                "INSERT INTO audit_writers (host, pid, opened_at) VALUES (?, ?, ?)",
                (host, os.getpid(), now),
            )
            self._writer_row = int(cur.lastrowid or 0)

    def _recover_checkpoints(self) -> None:
        """Cover events appended before a crash; rewrite a missing outside copy."""
        self.checkpoint(force=False)
        latest = self.latest_checkpoint()
        if latest is not None:
            latest = Checkpoint(
                latest.tree_size,
                latest.root,
                latest.chain_head,
                latest.time,
                latest.key_id,
                latest.log_id,
                latest.signature,
                self.public_key or b"",
            )
            if not (self.checkpoint_dir / latest.file_name()).exists():
                self._publish(latest)

    def secure_delete(self) -> None:
        """Overwrite deleted content with zeros from now on (crypto-shredding, retention)."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            self._conn.execute("PRAGMA secure_delete = ON")

    def truncate_wal(self) -> bool:
        """Fold the WAL into the database and truncate it, so no page erased since lingers
        there. ``False`` when busy readers prevented it (the next checkpoint does it)."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            try:
                busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error:
                return False
        return not busy

    def tick(self) -> Checkpoint | None:
        """Take the time-due checkpoint, if any (the owner's loop calls this).

        Due when ``checkpoint_interval_s`` passed since the last one and events are not
        yet covered. Errors are logged, never raised: a periodic chore must not stop the
        loop that runs it.
        """
        if self.readonly or self._closed or self.checkpoint_interval_s <= 0:
            return None
        if time.monotonic() - self._last_checkpoint_mono < self.checkpoint_interval_s:
            return None
        try:
            taken = self.checkpoint(force=False)
        except (StoreError, sqlite3.Error) as exc:
            log.error("periodic audit checkpoint failed: %s", exc)
            return None
        if taken is None:  # nothing new: look again after another interval
            self._last_checkpoint_mono = time.monotonic()
        return taken


def _add_range(ranges: list[tuple[int, int]], first: int, last: int) -> None:
    """Record ``first..last`` as own rows, merged into the last range when they touch.

    A single writer appends consecutive seqs batch after batch, so the list stays a
    handful of ranges however many appends there were; the checkpoint's per-row
    ownership check is then O(rows) instead of O(rows x appends), which made a
    checkpoint after 10 000 single-event commits take seconds.
    """
    if ranges:
        a, b = ranges[-1]
        if a <= first <= b + 1:
            ranges[-1] = (a, max(b, last))
            return
    ranges.append((first, last))


def _alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` exists (signal 0 checks, sends nothing)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _pending(conn: sqlite3.Connection, migrations: Sequence[tuple[str, str]]) -> list[str]:
    from console.records._migrate import applied_migrations

    done = set(applied_migrations(conn))
    return [name for name, _ in migrations if name not in done]


def _latest_frontier(conn: sqlite3.Connection, size: int) -> Frontier:
    """The frontier stored with the latest checkpoint, if it is sound; else empty."""
    row = conn.execute(
        "SELECT tree_size, root, frontier FROM audit_checkpoints "
        "WHERE tree_size <= ? ORDER BY tree_size DESC, id DESC LIMIT 1",
        (size,),
    ).fetchone()
    if row is None:
        return Frontier()
    try:
        frontier = Frontier.from_bytes(int(row[0]), bytes(row[2]))
    except ValueError:
        return Frontier()
    if frontier.root() != bytes(row[1]) and frontier.size:
        return Frontier()  # tampered or corrupt: recompute from the leaves
    return frontier
