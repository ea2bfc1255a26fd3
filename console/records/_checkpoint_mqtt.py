"""The third copy of the audit checkpoints: a retained MQTT v5 message on the broker.

records-security.md wants every signed checkpoint kept in the database *and* outside it:
the checkpoint directory, and a retained topic when a broker is configured. The broker
is out of reach of whoever can replace the database file *and* its directory on the
hub's disk, so a roll-back that also swapped the directory is still caught there.

* **Topic** — ``samu/v1/centre/{centre}/audit/checkpoint``
  (:func:`checkpoint_topic`, built with :func:`protocols.topics.centre_topic`), QoS 1,
  retained, MQTT v5 content type ``application/json``. The payload is the outside-file
  document (:meth:`Checkpoint.to_file_json`: ``format``, ``statement``, ``signature``,
  ``public_key``) in compact canonical JSON, so one parser reads both copies.
* **Never in the writer's way** — :class:`CheckpointPublisher` is a
  :meth:`Store.add_checkpoint_listener` listener that only hands the checkpoint to its
  own thread (its own asyncio loop, a bounded queue): the audited write never waits for
  the broker and never fails because of it. Only the newest checkpoint matters on a
  retained topic, so a backlog collapses to the newest (a full queue drops the oldest).
* **Outages** — the thread reconnects with exponential back-off (jitter) and publishes
  the newest checkpoint when the broker returns. The first failed connection of an
  outage opens one technical incident ``broker-loss`` (object ``mqtt:<host>:<port>``)
  through :func:`open_incident`; a later process finding that incident still open and
  not yet marked recovered does not open another. The return is noted on the incident
  (``reachable again …``); closing it is left to a person.
* **Evidence is never overwritten** — before its first publication on each connection
  the publisher reads the retained checkpoint. One of this trail, validly signed, that
  the database does not hold means the database went back in time (a restored older
  copy): the retained message is the proof, so it is left in place, nothing is
  published, and a security incident ``verify-failure`` is opened. After a legitimate
  restore, ``samu audit checkpoint --mqtt URL --replace-retained`` (audited) or
  ``samu backup restore … --mqtt URL`` supersedes it. Without this check the first
  checkpoint of a hub restarted on the old copy would erase the only trace.
* **Close** — :meth:`CheckpointPublisher.close` drains with a short timeout (the store
  calls it from :meth:`Store.close`); what is left unpublished is logged, and the next
  start publishes the latest checkpoint again.

:func:`fetch_retained_checkpoint` reads the retained checkpoint for ``samu audit verify
--mqtt URL``, which judges it as one more outside checkpoint (newer than the log →
``rolled back``; forged → ``bad signature``).

Broker URLs: ``mqtt://[user@]host[:1883]`` or ``mqtts://[user@]host[:8883]``. The
password comes from ``$SAMU_MQTT_PASSWORD`` and is refused inside the URL (it would show
in the process list and shell history); ``mqtts://`` verifies the broker's certificate
and host name against the system trust store, or against ``$SAMU_MQTT_CA_FILE`` only.

aiomqtt and :mod:`protocols.topics` are imported lazily so that ``import
console.records`` (every ``samu`` command) stays light.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import random
import secrets
import sqlite3
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from console.records._checkpoint import (
    Checkpoint,
    OutsideFile,
    outside_document_bytes,
    parse_outside_document,
    verify_signature,
)
from console.records._errors import StoreError

if TYPE_CHECKING:
    import aiomqtt

    from console.records._audit import AuditContext
    from console.records._store import Store

log = logging.getLogger(__name__)

PASSWORD_ENV = "SAMU_MQTT_PASSWORD"  # noqa: S105 - the variable's name, not a secret
CA_FILE_ENV = "SAMU_MQTT_CA_FILE"
#: Same default as ``console.settings.Settings.centre``.
DEFAULT_CENTRE = "samu075"
#: The note that marks a ``broker-loss`` incident's outage as over.
RECOVERED_NOTE = "reachable again"

_T = TypeVar("_T")


class CheckpointMqttError(StoreError):
    """The broker could not be reached or refused what was asked (reason in the text)."""


def checkpoint_topic(centre: str = DEFAULT_CENTRE) -> str:
    """``samu/v1/centre/{centre}/audit/checkpoint``.

    Raises:
        ValueError: ``centre`` is not an id of ``[A-Za-z0-9._-]{1,64}``.
    """
    from protocols.topics import centre_topic

    return centre_topic(centre, "audit", "checkpoint")


def _check_topic(topic: str) -> str:
    if not topic or any(c in topic for c in "+#\0") or len(topic.encode()) > 65535:
        raise ValueError(f"not a concrete MQTT topic: {topic!r}")
    return topic


# --- broker URLs -------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerURL:
    """A broker URL taken apart, with the password from the environment."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    @property
    def display(self) -> str:
        """The URL without any secret, for messages and logs."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"

    @property
    def incident_object(self) -> str:
        """``mqtt:<host>:<port>``: the ``object`` of this broker's incidents."""
        return f"mqtt:{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """System trust store, or only ``$SAMU_MQTT_CA_FILE``; host names checked."""
        if not self.tls:
            return None
        cafile = str(self.ca_file) if self.ca_file is not None else None
        return ssl.create_default_context(cafile=cafile)


def parse_broker_url(url: str, environ: Mapping[str, str] | None = None) -> BrokerURL:
    """Parse ``mqtt://[user@]host[:port]`` / ``mqtts://…``; secrets from the environment.

    Raises:
        ValueError: another scheme, no host, a bad port, a path or query, a password in
            the URL, or a ``$SAMU_MQTT_CA_FILE`` that is not a file.
    """
    env = os.environ if environ is None else environ
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if parts.password is not None:
        raise ValueError(
            "do not put the MQTT password in the URL (process lists and shell history "
            f"show it): use mqtt://user@host:port and set {PASSWORD_ENV}"
        )
    if not parts.hostname:
        raise ValueError(f"broker URL has no host: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"broker URL takes no path or query: {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"bad port in broker URL {url!r}") from exc
    username = unquote(parts.username) if parts.username else None
    password = env.get(PASSWORD_ENV) or None
    if username is None and password is not None:
        log.warning("%s is set but the broker URL names no user: not sent", PASSWORD_ENV)
        password = None
    ca_file: Path | None = None
    if tls and env.get(CA_FILE_ENV):
        ca_file = Path(env[CA_FILE_ENV])
        if not ca_file.is_file():
            raise ValueError(f"{CA_FILE_ENV} names no file: {ca_file}")
    return BrokerURL(parts.hostname, port, tls, username, password, ca_file)


def _client(address: BrokerURL, client_id: str, timeout: float) -> aiomqtt.Client:
    """A clean-session MQTT v5 client: neither side needs a session (the publisher keeps
    its own queue, the reader wants only the retained message)."""
    import aiomqtt

    return aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=True,
        keepalive=30,
        timeout=timeout,
        tls_context=address.tls_context(),
        logger=logging.getLogger(f"{__name__}.client"),
    )


def _client_id(role: str) -> str:
    return f"samu-audit-{role}-{os.getpid()}-{secrets.token_hex(4)}"


def _release(client: aiomqtt.Client) -> None:
    """Tidy up after a client's context, whatever happened in it.

    Reads aiomqtt's "unexpected disconnection" future, which its context exit leaves
    unread (asyncio would log "Future exception was never retrieved"; the error was
    handled), and closes paho's sockets now rather than at garbage collection: after a
    refused CONNACK (bad password) aiomqtt leaves the TLS socket open.
    """
    future = getattr(client, "_disconnected", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()
    reset = getattr(getattr(client, "_client", None), "_reset_sockets", None)
    if callable(reset):
        with contextlib.suppress(Exception):
            reset()


async def _read_retained(client: aiomqtt.Client, topic: str, grace: float) -> bytes | None:
    """The retained payload of ``topic`` (``None`` when there is none).

    Subscribing twice makes a barrier: the second SUBACK (retained messages not resent)
    comes after the retained message of the first subscription, so with Mosquitto the
    answer is known without waiting. ``grace`` covers brokers that deliver retained
    messages later (clusters). The subscription is dropped afterwards.

    Raises:
        aiomqtt.MqttError: the connection failed.
        CheckpointMqttError: the broker refused the subscription (ACL).
    """
    import aiomqtt
    from paho.mqtt.subscribeoptions import SubscribeOptions

    first = SubscribeOptions(qos=1, noLocal=True)
    again = SubscribeOptions(
        qos=1, noLocal=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
    )
    for options in (first, again):
        granted = await client.subscribe(topic, options=options)
        for code in granted:
            value = code if isinstance(code, int) else code.value
            if value >= 0x80:
                raise CheckpointMqttError(f"broker refused to subscribe to {topic}: {code}")
    messages = client.messages
    payload: bytes | None = None
    while payload is None:
        if len(messages):
            message = await anext(messages)
        elif grace <= 0:
            break
        else:
            try:
                message = await asyncio.wait_for(anext(messages), timeout=grace)
            except TimeoutError:
                break
        if message.topic.matches(topic) and isinstance(message.payload, bytes | bytearray):
            if not message.payload:
                break  # an empty retained message clears the topic
            payload = bytes(message.payload)
    with contextlib.suppress(aiomqtt.MqttError):
        await client.unsubscribe(topic)
    while len(messages):  # anything that slipped in meanwhile
        await anext(messages)
    return payload


def _outside(address: BrokerURL, payload: bytes) -> OutsideFile:
    """An :class:`OutsideFile` for ``samu audit verify`` (the 'path' names the broker)."""
    where = Path(f"mqtt-retained@{address.host}:{address.port}")
    try:
        return OutsideFile(where, parse_outside_document(payload))
    except ValueError as exc:
        return OutsideFile(where, None, str(exc))


def _run_coroutine(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from synchronous code, even under a running loop."""

    async def main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def fetch_retained_checkpoint(
    url: str,
    topic: str | None = None,
    *,
    timeout: float = 10.0,
    grace: float = 0.3,
    environ: Mapping[str, str] | None = None,
) -> OutsideFile | None:
    """Read the retained checkpoint (``None`` when the topic holds none).

    The result is unverified — a parsed checkpoint or the reason it is unreadable — for
    :func:`verify_trail`'s ``outside_checkpoints``, which checks its signature and
    compares it with the log like a file of the checkpoint directory.

    Raises:
        ValueError: a bad URL or topic.
        CheckpointMqttError: no answer from the broker within ``timeout`` seconds, a
            refused connection or subscription.
    """
    import aiomqtt

    address = parse_broker_url(url, environ)
    topic = _check_topic(topic or checkpoint_topic())

    async def fetch() -> bytes | None:
        client = _client(address, _client_id("verify"), timeout)
        try:
            async with client:
                return await _read_retained(client, topic, grace)
        finally:
            _release(client)

    async def bounded() -> bytes | None:
        try:
            return await asyncio.wait_for(fetch(), timeout=timeout)
        except TimeoutError as exc:
            raise CheckpointMqttError(f"{address.display}: no answer within {timeout:g}s") from exc
        except aiomqtt.MqttError as exc:
            raise CheckpointMqttError(f"{address.display}: {exc}") from exc

    payload = _run_coroutine(bounded)
    return None if payload is None else _outside(address, payload)


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


_Decision = Literal["publish", "skip", "refuse"]


class CheckpointPublisher:
    """Publish each checkpoint it is called with as the retained MQTT checkpoint.

    Use it as a checkpoint listener (``store.attach_checkpoint_publisher(pub)``, or
    ``Store.open(..., mqtt_url=...)`` which does it). Calling it never blocks.

    Args:
        url: broker URL (see :func:`parse_broker_url`).
        topic: retained topic (default :func:`checkpoint_topic` of the default centre).
        store: the store whose checkpoints these are: incidents are recorded there and
            the retained checkpoint is compared with its ``audit_checkpoints``. Without
            it, nothing is recorded and only sizes are compared.
        max_pending: bounded queue; when full the oldest waiting checkpoint is dropped
            (a newer one supersedes it on a retained topic).
        backoff: first and longest delay between connection attempts, seconds.
        timeout: seconds to wait for the broker's answers (CONNACK, PUBACK, SUBACK).
        replace_retained: publish even over a retained checkpoint the database does not
            hold (after a legitimate restore; the caller audits that decision).
        grace: see :func:`_read_retained`.
    """

    def __init__(
        self,
        url: str,
        topic: str | None = None,
        *,
        store: Store | None = None,
        max_pending: int = 16,
        backoff: tuple[float, float] = (0.5, 30.0),
        timeout: float = 10.0,
        replace_retained: bool = False,
        grace: float = 0.3,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.address = parse_broker_url(url, environ)
        self.topic = _check_topic(topic or checkpoint_topic())
        self._store = store
        self._backoff = backoff
        self._timeout = timeout
        self._grace = grace
        self._replace_retained = replace_retained
        self._client_id = _client_id("checkpoints")
        self._jitter = random.Random(self._client_id)
        self._cond = threading.Condition()
        self._status = PublisherStatus()
        self._submitted = 0
        self._handled = 0
        self._accepting = True
        self._closing = False
        self._deadline = 0.0
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max(1, max_pending))
        self._wake = asyncio.Event()
        self._close_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._who: AuditContext | None = None
        self._thread = threading.Thread(
            target=self._thread_main, name="audit-checkpoint-mqtt", daemon=True
        )
        self._thread.start()

    # -- the listener side (any thread) ----------------------------------------------------

    def __call__(self, checkpoint: Checkpoint) -> None:
        """Queue ``checkpoint`` for publication; returns at once."""
        payload = outside_document_bytes(checkpoint)
        with self._cond:
            if not self._accepting:
                log.debug(
                    "checkpoint publisher closed: checkpoint %d not sent", checkpoint.tree_size
                )
                return
            self._submitted += 1
            item = _Item(self._submitted, checkpoint, payload)
            try:
                self._loop.call_soon_threadsafe(self._enqueue, item)
            except RuntimeError:  # the loop has gone away
                self._submitted -= 1

    @property
    def status(self) -> PublisherStatus:
        with self._cond:
            return self._status

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every checkpoint queued so far is published or superseded (or was
        deliberately not published: see :attr:`PublisherStatus.refused`)."""
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(
                lambda: self._handled >= target or not self._thread.is_alive(), timeout
            ) and (self._handled >= target)

    def close(self, timeout: float = 3.0) -> bool:
        """Publish what is queued (trying for at most ``timeout`` seconds), disconnect and
        stop the thread. Returns whether nothing was left unpublished."""
        with self._cond:
            already = self._closing
            self._deadline = time.monotonic() + max(0.0, timeout)
            self._closing = True
        if not already and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._close_requested.set)
        self._thread.join(max(0.0, timeout) + 1.0)
        if self._thread.is_alive():  # stuck in a connect: give up on it
            task = self._task
            if task is not None:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(task.cancel)
            self._thread.join(2.0)
        with self._cond:
            self._accepting = False
            left = self._submitted - self._handled
            self._status = dataclasses.replace(self._status, closed=True, connected=False)
        if left > 0:
            log.warning(
                "audit checkpoint not published to %s %s before close (%s); the next start "
                "publishes the latest",
                self.address.display,
                self.topic,
                self._status.last_error or "timeout",
            )
        return left <= 0

    # -- the loop thread ---------------------------------------------------------------------

    def _thread_main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._task = self._loop.create_task(self._main())
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._task)
        except Exception:
            log.exception("audit checkpoint publisher stopped")
        finally:
            with self._cond:
                self._accepting = False
                self._cond.notify_all()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _enqueue(self, item: _Item) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # superseded by the newer one
        self._queue.put_nowait(item)
        self._wake.set()

    def _newest(self, item: _Item) -> _Item:
        while not self._queue.empty():
            item = self._queue.get_nowait()
        return item

    async def _next(self) -> _Item | None:
        """The next checkpoint to publish; ``None`` once closing with nothing queued."""
        while True:
            if not self._queue.empty():
                return self._newest(self._queue.get_nowait())
            if self._close_requested.is_set():
                return None
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            closer = asyncio.ensure_future(self._close_requested.wait())
            try:
                await asyncio.wait((waiter, closer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                closer.cancel()

    async def _main(self) -> None:
        import aiomqtt

        attempt = 0
        item: _Item | None = None
        while True:
            if item is None:
                item = await self._next()
                if item is None:
                    return
            connected = False
            client = _client(self.address, self._client_id, self._timeout)
            try:
                async with client:
                    connected = True
                    attempt = 0
                    await self._connected()
                    checked = False
                    while item is not None:
                        item = self._newest(item)
                        if not checked or self.status.refused:
                            decision = await self._judge_retained(client, item)
                            checked = True
                        else:
                            decision = self._judge_size(item)
                        if decision == "publish":
                            await self._publish(client, item)
                        self._handled_upto(item.ticket)
                        item = await self._next()
                    return
            except (aiomqtt.MqttError, CheckpointMqttError) as exc:
                await self._failed(exc, connecting=not connected)
            except Exception as exc:  # a bug or a surprise must not end publication for good
                log.exception("audit checkpoint publisher: unexpected error")
                await self._failed(exc, connecting=not connected)
            finally:
                _release(client)
                self._update(connected=False)
            if self._closing and time.monotonic() >= self._deadline:
                return
            low, high = self._backoff
            delay = min(high, low * (2**attempt)) * (0.5 + self._jitter.random())
            attempt += 1
            if self._closing:
                await asyncio.sleep(max(0.0, min(delay, self._deadline - time.monotonic())))
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._close_requested.wait(), timeout=delay)

    async def _publish(self, client: aiomqtt.Client, item: _Item) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        await client.publish(self.topic, item.payload, qos=1, retain=True, properties=properties)
        with self._cond:
            self._status = dataclasses.replace(
                self._status,
                published=item.checkpoint,
                published_count=self._status.published_count + 1,
                refused=None,
            )

    async def _connected(self) -> None:
        with self._cond:
            outage = self._status.outage_since
            incident = self._status.incident_id
            self._status = dataclasses.replace(self._status, connected=True, outage_since=None)
        if outage is not None:
            log.warning(
                "MQTT broker %s %s (down since %s)", self.address.display, RECOVERED_NOTE, outage
            )
            if incident is not None and self._store is not None:
                await asyncio.to_thread(self._note_recovery, incident, outage)

    def _judge_size(self, item: _Item) -> _Decision:
        last = self.status.published
        if (
            last is not None
            and last.log_id == item.checkpoint.log_id
            and last.tree_size > item.checkpoint.tree_size
        ):
            return "skip"  # never move the retained checkpoint backwards
        return "publish"

    async def _judge_retained(self, client: aiomqtt.Client, item: _Item) -> _Decision:
        """Publish over the retained checkpoint, skip (it is newer and consistent), or
        refuse (it proves the database was rolled back: leave it in place)."""
        try:
            payload = await _read_retained(client, self.topic, self._grace)
        except CheckpointMqttError as exc:  # ACL: publish-only account
            log.warning("cannot read the retained checkpoint (%s): publishing without check", exc)
            return self._judge_size(item)
        if payload is None:
            return self._judge_size(item)
        ours = item.checkpoint
        try:
            retained = parse_outside_document(payload)
        except ValueError as exc:
            log.warning(
                "retained checkpoint on %s is unreadable (%s): replacing it", self.topic, exc
            )
            return "publish"
        if retained.log_id != ours.log_id:
            log.warning(
                "retained checkpoint on %s belongs to another trail (%s): replacing it",
                self.topic,
                retained.log_id,
            )
            return "publish"
        store = self._store
        if store is None:
            return "skip" if retained.tree_size > ours.tree_size else self._judge_size(item)
        try:
            trusted = await asyncio.to_thread(store.trusted_audit_keys)
            public = trusted.get(retained.key_id)
            if public is None or not verify_signature(
                public, retained.statement_bytes(), retained.signature
            ):
                log.warning(
                    "retained checkpoint on %s does not verify: replacing it with a genuine one",
                    self.topic,
                )
                return "publish"
            known = await asyncio.to_thread(
                store.holds_checkpoint, retained.tree_size, retained.root
            )
        except (StoreError, sqlite3.Error) as exc:
            log.warning("cannot compare the retained checkpoint with the store: %s", exc)
            return self._judge_size(item)
        if known:
            return "skip" if retained.tree_size > ours.tree_size else self._judge_size(item)
        if self._replace_retained:
            log.warning(
                "superseding the retained checkpoint at %d events on %s, which this database "
                "does not hold (replace_retained)",
                retained.tree_size,
                self.topic,
            )
            return "publish"
        reason = (
            f"the broker's retained checkpoint at {retained.tree_size} events (time "
            f"{retained.time}) is signed for this trail but is not in this database, which "
            f"has {ours.tree_size} events: the database was probably rolled back"
        )
        with self._cond:
            first = self._status.refused is None
            self._status = dataclasses.replace(self._status, refused=reason)
        if first:
            log.error(
                "%s; left in place as evidence, no checkpoint published to %s. Check with "
                "`samu audit verify --mqtt URL`; after a legitimate restore run `samu audit "
                "checkpoint --mqtt URL --replace-retained`",
                reason,
                self.topic,
            )
            await asyncio.to_thread(self._record_refusal, retained, reason)
        return "refuse"

    def _handled_upto(self, ticket: int) -> None:
        with self._cond:
            self._handled = max(self._handled, ticket)
            self._cond.notify_all()

    def _update(self, **changes: object) -> None:
        with self._cond:
            self._status = dataclasses.replace(self._status, **changes)  # type: ignore[arg-type]

    async def _failed(self, exc: Exception, *, connecting: bool) -> None:
        error = str(exc) or type(exc).__name__
        with self._cond:
            starts = connecting and self._status.outage_since is None
            self._status = dataclasses.replace(
                self._status,
                failures=self._status.failures + 1,
                last_error=error,
                outage_since=_now() if starts else self._status.outage_since,
            )
        if not starts:
            log.info("MQTT %s: %s; retrying", self.address.display, error)
            return
        log.warning(
            "MQTT broker %s unreachable (%s): audit checkpoints stay in the database and the "
            "checkpoint directory; the latest is published when it returns",
            self.address.display,
            error,
        )
        if self._store is not None:
            await asyncio.to_thread(self._record_outage, error)

    # -- incidents (run on a worker thread: they write to the store) --------------------------

    def _actor(self) -> AuditContext:
        if self._who is None:
            from console.records._audit import AuditContext, local_terminal

            self._who = AuditContext(
                actor="system:audit-checkpoint", role="system", terminal=local_terminal()
            )
        return self._who

    def _record_outage(self, error: str) -> None:
        from console.records._incidents import open_incident, update_incident

        store = self._store
        assert store is not None
        obj = self.address.incident_object
        since = self.status.outage_since or _now()
        try:
            with store.transaction() as conn:
                row = conn.execute(
                    "SELECT i.id, (SELECT n.note FROM incident_notes n WHERE n.incident_id = i.id "
                    "ORDER BY n.id DESC LIMIT 1) FROM incidents i WHERE i.category = 'broker-loss' "
                    "AND i.object = ? AND i.status <> 'closed' ORDER BY i.id DESC LIMIT 1",
                    (obj,),
                ).fetchone()
                if row is None:
                    incident_id = open_incident(
                        store,
                        self._actor(),
                        kind="technical",
                        category="broker-loss",
                        severity="high",
                        object=obj,
                        title="MQTT broker unreachable: audit checkpoints not published",
                        note=f"{self.address.display} unreachable since {since} ({error}); "
                        f"retained topic {self.topic}. Checkpoints stay in the database and "
                        "the checkpoint directory; the latest is published when it returns.",
                    ).id
                elif str(row[1] or "").startswith(RECOVERED_NOTE):
                    incident_id = int(row[0])
                    update_incident(
                        store,
                        self._actor(),
                        incident_id,
                        note=f"unreachable again since {since} ({error})",
                    )
                else:
                    incident_id = int(row[0])  # this outage is already on record
        except (StoreError, sqlite3.Error) as exc:
            log.error("cannot record the broker-loss incident: %s", exc)
            return
        self._update(incident_id=incident_id)

    def _note_recovery(self, incident_id: int, since: str) -> None:
        from console.records._incidents import update_incident

        store = self._store
        assert store is not None
        try:
            update_incident(
                store,
                self._actor(),
                incident_id,
                note=f"{RECOVERED_NOTE} at {_now()} (down since {since}); the latest audit "
                f"checkpoint is published to {self.topic}",
            )
        except (StoreError, sqlite3.Error) as exc:
            log.error("cannot note the broker's return on incident %d: %s", incident_id, exc)

    def _record_refusal(self, retained: Checkpoint, reason: str) -> None:
        from console.records._incidents import open_incident

        store = self._store
        assert store is not None
        obj = f"audit-checkpoint:{retained.tree_size}"
        try:
            with store.transaction() as conn:
                known = conn.execute(
                    "SELECT 1 FROM incidents WHERE category = 'verify-failure' AND object = ? "
                    "AND status <> 'closed'",
                    (obj,),
                ).fetchone()
                if known is None:
                    open_incident(
                        store,
                        self._actor(),
                        kind="security",
                        category="verify-failure",
                        severity="critical",
                        object=obj,
                        title="Broker holds an audit checkpoint this database lacks: roll-back?",
                        note=f"{reason}. The retained message on {self.topic} is left in place "
                        "and no checkpoint is published there. Run `samu audit verify --mqtt "
                        "URL`; after a legitimate restore, `samu audit checkpoint --mqtt URL "
                        "--replace-retained`.",
                    )
        except (StoreError, sqlite3.Error) as exc:
            log.error("cannot record the roll-back incident: %s", exc)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
