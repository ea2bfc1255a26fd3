"""The third copy of the audit checkpoints: a retained MQTT v5 message on the broker.

records-security.md wants every signed checkpoint kept in the database *and* outside it:
the checkpoint directory, and a retained topic when a broker is configured. The broker
is out of reach of whoever can replace the database file *and* its directory on the
hub's disk, so a roll-back that also swapped the directory is still caught there.

* **Topic** — ``samu/v1/centre/{centre}/audit/checkpoint`` (:func:`checkpoint_topic`),
  QoS 1, retained, MQTT v5 content type ``application/json``. The payload is the
  outside-file document (:meth:`Checkpoint.to_file_json`) in compact canonical JSON, so
  one parser reads both copies.
* **Never in the writer's way** — :class:`CheckpointPublisher` is a checkpoint listener
  (:meth:`Store.add_checkpoint_listener`) whose call only queues the checkpoint; the
  publishing runs as a task of its owner's event loop (the hub, the console), so the
  audited write never waits for the broker and never fails because of it. Only the newest
  checkpoint matters on a retained topic, so a backlog collapses to the newest.
* **Outages** — reconnects with the shared capped back-off (:class:`transport.Backoff`)
  and publishes the newest checkpoint when the broker returns; the outage is one
  ``broker-loss`` incident (:mod:`._checkpoint_incidents`).
* **Evidence is never overwritten** — :mod:`._checkpoint_judge` decides, from the
  retained checkpoint, whether to publish over it.
* **Short commands** — :func:`publish_checkpoint` runs a publisher for one checkpoint
  (``samu audit checkpoint --mqtt``, ``backup create|restore --mqtt``).

:func:`fetch_retained_checkpoint` reads the retained checkpoint for ``samu audit verify
--mqtt URL``, which judges it as one more outside checkpoint (newer than the log →
``rolled back``; forged → ``bad signature``).

The broker (:class:`transport.BrokerConfig`), its URL rules and its credentials come
from the caller; nothing here reads the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.records._checkpoint import (
    Checkpoint,
    OutsideFile,
    outside_document_bytes,
    parse_outside_document,
)
from console.records._checkpoint_incidents import (
    RECOVERED_NOTE,
    note_recovery,
    now_text,
    record_outage,
    record_refusal,
)
from console.records._checkpoint_judge import Judgement, by_size, judge_retained
from console.records._errors import StoreError

if TYPE_CHECKING:
    from console.records._store import Store
    from transport import BrokerConfig, Client

log = logging.getLogger(__name__)

#: Same default as ``console.settings.Settings.centre``.
DEFAULT_CENTRE = "samu075"

__all__ = [
    "DEFAULT_CENTRE",
    "RECOVERED_NOTE",
    "CheckpointMqttError",
    "CheckpointPublisher",
    "PublisherStatus",
    "check_topic",
    "checkpoint_topic",
    "fetch_retained_checkpoint",
    "publish_checkpoint",
]


class CheckpointMqttError(StoreError):
    """The broker could not be reached or refused what was asked (reason in the text)."""


def checkpoint_topic(centre: str = DEFAULT_CENTRE) -> str:
    """``samu/v1/centre/{centre}/audit/checkpoint``.

    Raises:
        ValueError: ``centre`` is not an id of ``[A-Za-z0-9._-]{1,64}``.
    """
    from protocols.topics import centre_topic

    return centre_topic(centre, "audit", "checkpoint")


def check_topic(topic: str) -> str:
    """``topic`` if it is a concrete topic one can publish to.

    Raises:
        ValueError: empty, a wildcard (``+``/``#``), a NUL, or longer than MQTT allows.
    """
    if not topic or any(c in topic for c in "+#\0") or len(topic.encode()) > 65535:
        raise ValueError(f"not a concrete MQTT topic (no + or #): {topic!r}")
    return topic


def _outside(broker: BrokerConfig, payload: bytes) -> OutsideFile:
    """An :class:`OutsideFile` for ``samu audit verify`` (the 'path' names the broker)."""
    where = Path(f"mqtt-retained@{broker.host}:{broker.port}")
    try:
        return OutsideFile(where, parse_outside_document(payload))
    except ValueError as exc:
        return OutsideFile(where, None, str(exc))


async def fetch_retained_checkpoint(
    broker: BrokerConfig, topic: str | None = None, *, timeout: float = 10.0, grace: float = 0.3
) -> OutsideFile | None:
    """Read the retained checkpoint (``None`` when the topic holds none).

    The result is unverified — a parsed checkpoint or the reason it is unreadable — for
    :func:`verify_trail`'s ``outside_checkpoints``, which checks its signature and
    compares it with the log like a file of the checkpoint directory.

    Raises:
        ValueError: a bad topic.
        CheckpointMqttError: no answer from the broker within ``timeout`` seconds, a
            refused connection or subscription.
    """
    from transport import RetainedReadError, fetch_retained

    topic = check_topic(topic or checkpoint_topic())
    try:
        payload = await fetch_retained(broker, topic, timeout=timeout, grace=grace)
    except RetainedReadError as exc:
        raise CheckpointMqttError(str(exc)) from exc
    return None if payload is None else _outside(broker, payload)


# --- the publisher ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    ticket: int
    checkpoint: Checkpoint
    payload: bytes


@dataclass(frozen=True)
class PublisherStatus:
    """A snapshot of what the publisher did (see :attr:`CheckpointPublisher.status`)."""

    connected: bool = False
    #: The last checkpoint the broker acknowledged (PUBACK) from this publisher.
    published: Checkpoint | None = None
    published_count: int = 0
    failures: int = 0
    last_error: str = ""
    #: Time (UTC ISO 8601) the current outage began, ``None`` when the broker is up.
    outage_since: str | None = None
    #: The ``broker-loss`` incident of the current or last outage, when recorded.
    incident_id: int | None = None
    #: Why the retained checkpoint was left in place (suspected roll-back), else None.
    refused: str | None = None
    closed: bool = False


class CheckpointPublisher:
    """Publish each checkpoint it is called with as the retained MQTT checkpoint.

    Host it in an event loop: ``store.add_checkpoint_listener(publisher)`` then
    ``task = asyncio.create_task(publisher.run())``; on the way out ``await
    publisher.close(timeout)``. Calling it (the listener side) is thread-safe and never
    blocks: the store's writer may be on another thread.

    Args:
        broker: the broker.
        topic: retained topic (default :func:`checkpoint_topic` of the default centre).
        store: the store whose checkpoints these are: incidents are recorded there and
            the retained checkpoint is compared with its ``audit_checkpoints``. Without
            it, nothing is recorded and only sizes are compared.
        backoff: first and longest delay between connection attempts, seconds.
        timeout: seconds to wait for the broker's answers (CONNACK, PUBACK, SUBACK).
        replace_retained: publish even over a retained checkpoint the database does not
            hold (after a legitimate restore; the caller audits that decision).
        grace: see :func:`transport.read_retained`.
    """

    def __init__(
        self,
        broker: BrokerConfig,
        topic: str | None = None,
        *,
        store: Store | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        timeout: float = 10.0,
        replace_retained: bool = False,
        grace: float = 0.3,
    ) -> None:
        from transport import Backoff

        self.broker = broker
        self.topic = check_topic(topic or checkpoint_topic())
        self._store = store
        self._timeout = timeout
        self._grace = grace
        self._replace_retained = replace_retained
        self._client_id = f"samu-audit-checkpoints-{os.getpid()}-{secrets.token_hex(4)}"
        self._backoff = Backoff(backoff[0], backoff[1], self._client_id)
        self._lock = threading.Lock()
        self._pending: deque[_Item] = deque(maxlen=16)
        self._status = PublisherStatus()
        self._submitted = 0
        self._handled = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # Events need no running loop to exist; they bind to the loop of run().
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._closing = False
        self._deadline = 0.0

    # -- the listener side (any thread) ----------------------------------------------------

    def __call__(self, checkpoint: Checkpoint) -> None:
        """Queue ``checkpoint`` for publication; returns at once."""
        payload = outside_document_bytes(checkpoint)
        with self._lock:
            if self._status.closed:
                log.debug("publisher closed: checkpoint %d not sent", checkpoint.tree_size)
                return
            self._submitted += 1
            self._pending.append(_Item(self._submitted, checkpoint, payload))
            loop = self._loop
        self._poke(loop)

    def _poke(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:
            return  # run() has not started: it looks at the queue first
        with contextlib.suppress(RuntimeError):  # the loop has gone away
            loop.call_soon_threadsafe(self._wake.set)

    @property
    def status(self) -> PublisherStatus:
        with self._lock:
            return self._status

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._status = dataclasses.replace(self._status, **changes)  # type: ignore[arg-type]

    # -- the owner's side (its event loop) --------------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every checkpoint queued so far is published or superseded (or was
        deliberately not published: see :attr:`PublisherStatus.refused`)."""
        with self._lock:
            target = self._submitted
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._handled >= target:
                    return True
            progress = self._progress
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), timeout=left)

    async def close(self, timeout: float = 3.0) -> bool:
        """Publish what is queued (trying for at most ``timeout`` seconds), then stop.

        Returns whether nothing was left unpublished. Call it from the loop running
        :meth:`run`; :meth:`run` then returns.
        """
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + max(0.0, timeout)
        self._poke(self._loop)
        drained = await self.flush(timeout)
        with self._lock:
            left = self._submitted - self._handled
            self._status = dataclasses.replace(self._status, closed=True, connected=False)
        self._poke(self._loop)
        if left > 0:
            log.warning(
                "audit checkpoint not published to %s %s before close (%s); the next start "
                "publishes the latest",
                self.broker.display,
                self.topic,
                self._status.last_error or "timeout",
            )
        return drained and left <= 0

    def _take(self) -> _Item | None:
        """The newest queued checkpoint (older ones are superseded), or None."""
        with self._lock:
            if not self._pending:
                return None
            item = self._pending[-1]
            self._pending.clear()
            return item

    def _handled_upto(self, ticket: int) -> None:
        with self._lock:
            self._handled = max(self._handled, ticket)
        self._progress.set()

    def _stopped(self, holding: bool = False) -> bool:
        """Whether :meth:`run` should return (``holding``: a checkpoint is in hand)."""
        with self._lock:
            return self._status.closed or (
                self._closing
                and ((not self._pending and not holding) or time.monotonic() >= self._deadline)
            )

    async def _next(self) -> _Item | None:
        """The next checkpoint to publish; ``None`` once closing with nothing queued."""
        while True:
            item = self._take()
            if item is not None:
                return item
            if self._stopped():
                return None
            self._wake.clear()
            if self._take_peek():
                continue
            await self._wake.wait()

    def _take_peek(self) -> bool:
        with self._lock:
            return bool(self._pending)

    async def run(self) -> None:
        """Publish until :meth:`close`: connect, judge the retained checkpoint, publish
        the newest, reconnect with back-off. Never raises on broker trouble."""
        from transport import MqttError, client_for, settle

        self._loop = asyncio.get_running_loop()
        attempt = 0
        item: _Item | None = None
        while True:
            if item is None:
                item = await self._next()
                if item is None:
                    return
            connected = False
            client = client_for(self.broker, self._client_id, timeout=self._timeout)
            try:
                async with client:
                    connected = True
                    attempt = 0
                    await self._connected()
                    checked = False
                    while item is not None:
                        newer = self._take()
                        item = newer or item
                        if not checked or self.status.refused:
                            judgement = await self._judge(client, item)
                            checked = True
                        else:
                            judgement = Judgement(by_size(item.checkpoint, self.status.published))
                        if judgement.decision == "publish":
                            await self._publish(client, item)
                        elif judgement.decision == "refuse":
                            await self._refused(judgement)
                        self._handled_upto(item.ticket)
                        item = await self._next()
                    return
            except (MqttError, CheckpointMqttError) as exc:
                await self._failed(exc, connecting=not connected)
            except Exception as exc:  # a bug or a surprise must not end publication for good
                log.exception("audit checkpoint publisher: unexpected error")
                await self._failed(exc, connecting=not connected)
            finally:
                settle(client)
                self._update(connected=False)
            if self._stopped(holding=item is not None):
                return
            delay = self._backoff.delay(attempt)
            attempt += 1
            with self._lock:
                if self._closing:
                    delay = max(0.0, min(delay, self._deadline - time.monotonic()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _judge(self, client: Client, item: _Item) -> Judgement:
        from transport import RetainedReadError, read_retained

        try:
            payload = await read_retained(client, self.topic, self._grace)
        except RetainedReadError as exc:  # ACL: a publish-only account
            log.warning("cannot read the retained checkpoint (%s): publishing without check", exc)
            return Judgement(by_size(item.checkpoint, self.status.published))
        return await asyncio.to_thread(
            judge_retained,
            payload,
            item.checkpoint,
            store=self._store,
            topic=self.topic,
            replace_retained=self._replace_retained,
            last_published=self.status.published,
        )

    async def _refused(self, judgement: Judgement) -> None:
        first = self.status.refused is None
        self._update(refused=judgement.reason)
        if not first:
            return
        log.error(
            "%s; left in place as evidence, no checkpoint published to %s. Check with "
            "`samu audit verify --mqtt URL`; after a legitimate restore run `samu audit "
            "checkpoint --mqtt URL --replace-retained`",
            judgement.reason,
            self.topic,
        )
        if self._store is not None and judgement.retained is not None:
            await asyncio.to_thread(
                record_refusal, self._store, judgement.retained, judgement.reason or "", self.topic
            )

    async def _publish(self, client: Client, item: _Item) -> None:
        from transport import publish_properties

        await client.publish(
            self.topic,
            item.payload,
            qos=1,
            retain=True,
            properties=publish_properties("application/json"),
        )
        with self._lock:
            self._status = dataclasses.replace(
                self._status,
                published=item.checkpoint,
                published_count=self._status.published_count + 1,
                refused=None,
            )

    async def _connected(self) -> None:
        status = self.status
        self._update(connected=True, outage_since=None)
        if status.outage_since is not None:
            log.warning(
                "MQTT broker %s %s (down since %s)",
                self.broker.display,
                RECOVERED_NOTE,
                status.outage_since,
            )
            if status.incident_id is not None and self._store is not None:
                await asyncio.to_thread(
                    note_recovery,
                    self._store,
                    status.incident_id,
                    since=status.outage_since,
                    topic=self.topic,
                )

    async def _failed(self, exc: Exception, *, connecting: bool) -> None:
        error = str(exc) or type(exc).__name__
        with self._lock:
            starts = connecting and self._status.outage_since is None
            since = now_text() if starts else self._status.outage_since
            self._status = dataclasses.replace(
                self._status,
                failures=self._status.failures + 1,
                last_error=error,
                outage_since=since,
            )
        if not starts:
            log.info("MQTT %s: %s; retrying", self.broker.display, error)
            return
        log.warning(
            "MQTT broker %s unreachable (%s): audit checkpoints stay in the database and the "
            "checkpoint directory; the latest is published when it returns",
            self.broker.display,
            error,
        )
        if self._store is not None and since is not None:
            incident = await asyncio.to_thread(
                record_outage,
                self._store,
                broker_object=self.broker.incident_object,
                display=self.broker.display,
                topic=self.topic,
                since=since,
                error=error,
            )
            if incident is not None:
                self._update(incident_id=incident)


async def publish_checkpoint(
    broker: BrokerConfig,
    topic: str,
    checkpoint: Checkpoint,
    *,
    store: Store | None,
    replace_retained: bool = False,
    timeout: float = 10.0,
) -> PublisherStatus:
    """Publish one checkpoint and wait (at most ``timeout``) for the broker to take it.

    For short commands; a long-running process hosts a :class:`CheckpointPublisher`.
    The returned status says whether it was published, refused (suspected roll-back) or
    why it did not reach the broker.
    """
    publisher = CheckpointPublisher(
        broker,
        topic,
        store=store,
        backoff=(0.2, 1.0),
        timeout=timeout,
        replace_retained=replace_retained,
    )
    publisher(checkpoint)
    task = asyncio.create_task(publisher.run(), name="audit-checkpoint-once")
    try:
        await publisher.close(timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return publisher.status
