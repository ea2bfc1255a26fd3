"""A publisher with an outbox that survives broker outages (gateways, transmitters).

Guarantees, in the order a gateway needs them:

* **Nothing lost** — :meth:`MqttLink.publish` only appends to an in-memory outbox; a
  message leaves the outbox when the broker has acknowledged it (QoS 1 PUBACK). While the
  broker is unreachable the outbox grows and the link retries with the shared capped
  back-off (:class:`~transport.Backoff`, jitter seeded by the client id).
* **In order** — messages are sent in outbox order, in windows of ``window`` in flight;
  a window that is not fully acknowledged is sent again, from its first message, on the
  next connection.
* **Duplicates are recognisable** — a resent message is byte-identical (same envelope id
  and seq), so the consumer drops it as a duplicate instead of counting new data.
* **Birth and death** — on every connection the link first publishes what ``on_connect``
  returns (the retained birth); the Last Will (death) is registered with the broker at
  connect time and only sent by it if the link dies without a clean disconnect.
* **Says what is wrong** — the first failure of an outage is logged at WARNING with the
  broker and the reason ("broker unreachable"), the following retries at INFO; an
  optional ``give_up_after_s`` makes :meth:`run` raise :class:`BrokerUnreachableError`
  instead of retrying forever (for commands that must exit non-zero).

The loop is aiomqtt's own style: ``async with`` a client per connection, a reconnect loop
with back-off around it, and the session's work in a :class:`asyncio.TaskGroup`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from transport._backoff import Backoff
from transport._client import MqttError, Will, abort, client_for, is_connected, settle
from transport._config import BrokerConfig
from transport._stats import ConnectionStats

__all__ = ["BrokerUnreachableError", "LinkStats", "MqttLink", "OutMessage"]

_log = logging.getLogger("transport.mqtt")


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to publish (always QoS 1)."""

    topic: str
    payload: bytes
    retain: bool = False


class BrokerUnreachableError(ConnectionError):
    """The broker stayed unreachable for longer than the caller accepts."""


@dataclass
class LinkStats(ConnectionStats):
    """What happened on the link; the acknowledged count is the one that matters."""

    queued: int = 0
    acked: int = 0
    sent: int = 0
    resent: int = 0


class MqttLink:
    """A QoS 1 publisher with an outbox (see the module docstring).

    Args:
        broker: the broker (:meth:`BrokerConfig.parse`).
        client_id: MQTT client identifier (one per gateway/transmitter).
        will: Last Will factory, called at each connection (a fresh signed death
            envelope: its ``sent`` time must be the connection's).
        on_connect: messages to publish first on each connection (the retained birth).
        window: messages in flight at once.
        ack_timeout: seconds to wait for a PUBACK before treating the connection as dead.
        backoff: first and maximum delay between connection attempts, seconds.
        give_up_after_s: raise :class:`BrokerUnreachableError` from :meth:`run` when no
            connection succeeded for that long (``None``: retry forever).
    """

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        *,
        will: Callable[[], OutMessage] | None = None,
        on_connect: Callable[[], list[OutMessage]] | None = None,
        window: int = 32,
        ack_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        keepalive: int = 30,
        give_up_after_s: float | None = None,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self._will = will
        self._on_connect = on_connect
        self._window = max(1, window)
        self._ack_timeout = ack_timeout
        self._backoff = Backoff(backoff[0], backoff[1], client_id)
        self._keepalive = keepalive
        self._give_up_after_s = give_up_after_s
        self._outbox: deque[OutMessage] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._connected_event = asyncio.Event()
        self._stopping = False
        self._graceful_goodbye: list[OutMessage] = []
        self._offline = False
        self._client_now: object | None = None
        self._attempted: set[int] = set()
        self._running = False
        self.stats = LinkStats()

    # -- the small interface firmware sees ----------------------------------------------
    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a message (never blocks, never fails: it is sent when it can be)."""
        self._outbox.append(OutMessage(topic, payload, retain))
        self.stats.queued += 1
        self._idle.clear()
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Messages not yet acknowledged by the broker."""
        return len(self._outbox)

    @property
    def connected(self) -> bool:
        return self.stats.connected

    async def wait_connected(self) -> None:
        await self._connected_event.wait()

    async def flush(self) -> None:
        """Wait until every queued message has been acknowledged."""
        while self._outbox:
            self._idle.clear()
            await self._idle.wait()

    def set_offline(self, offline: bool) -> None:
        """Simulate the sender losing (``True``) or regaining its network.

        Going offline drops the TCP connection without an MQTT DISCONNECT, so the broker
        sees a dead client and publishes its Last Will — what a transmitter unplugged
        from the wall does. Messages published meanwhile stay in the outbox.
        """
        self._offline = offline
        client = self._client_now
        if offline and client is not None:
            abort(client)  # type: ignore[arg-type]
        self._wake.set()

    def stop(self, goodbye: list[OutMessage] | None = None) -> None:
        """Ask :meth:`run` to send ``goodbye`` (e.g. a death envelope) then disconnect
        cleanly — a clean disconnect means the broker does not send the will."""
        self._graceful_goodbye = list(goodbye or [])
        self._stopping = True
        self._wake.set()

    # -- the connection loop ------------------------------------------------------------
    def _client(self) -> object:
        will = None
        if self._will is not None:
            w = self._will()
            will = Will(w.topic, w.payload, w.retain)
        return client_for(
            self.broker,
            self.client_id,
            will=will,
            keepalive=self._keepalive,
            timeout=self._ack_timeout,
            max_inflight=self._window,
        )

    async def run(self) -> None:
        """Connect, publish, reconnect until :meth:`stop`. Run it as a task.

        Raises:
            BrokerUnreachableError: ``give_up_after_s`` passed without a connection.
        """
        if self._running:
            # One consumer per outbox: a second run() would send and pop the same
            # messages twice (it once did, when an app started its system twice).
            raise RuntimeError(f"MqttLink {self.client_id}: run() is already running")
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False

    async def _run(self) -> None:
        attempt = 0
        while True:
            while self._offline and not self._stopping:
                self._wake.clear()
                await self._wake.wait()
            client = self._client()
            try:
                async with client:  # type: ignore[attr-defined]
                    self._client_now = client
                    attempt = 0
                    self._connected_now()
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self._session(client), name=f"{self.client_id}-out")
                    return  # stopped cleanly
            except* MqttError as group:
                self._failed(group.exceptions[0])
            finally:
                settle(client)  # type: ignore[arg-type]
                self._client_now = None
                self.stats.connected = False
                self._connected_event.clear()
            if self._stopping and not self._outbox:
                return
            self._check_give_up()
            delay = self._backoff.delay(attempt)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_stop(), timeout=delay)

    def _connected_now(self) -> None:
        self.stats.up(self.client_id, self.broker.display)
        self._connected_event.set()

    def _failed(self, exc: BaseException) -> None:
        kept = f"{len(self._outbox)} message(s) kept"
        self.stats.down(self.client_id, self.broker.display, exc, kept=kept)

    def _check_give_up(self) -> None:
        limit = self._give_up_after_s
        since = self.stats.outage_since
        if limit is not None and since is not None and time.monotonic() - since >= limit:
            raise BrokerUnreachableError(
                f"MQTT broker {self.broker.display} unreachable for {limit:g} s "
                f"({self.stats.last_error}); {len(self._outbox)} message(s) not sent"
            )

    async def _wait_stop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    async def _session(self, client: object) -> None:
        publish = client.publish  # type: ignore[attr-defined]
        if self._on_connect is not None:
            for m in self._on_connect():
                await publish(m.topic, m.payload, qos=1, retain=m.retain)
                self.stats.sent += 1
        while True:
            if self._offline:
                # Let paho notice the dead socket first, so leaving the context does not
                # try a DISCONNECT on it (which would race the socket's closing).
                for _ in range(100):
                    if not is_connected(client):  # type: ignore[arg-type]
                        break
                    await asyncio.sleep(0.01)
                raise MqttError("network down (simulated)")
            if not self._outbox:
                self._idle.set()
                if self._stopping:
                    for m in self._graceful_goodbye:
                        await publish(m.topic, m.payload, qos=1, retain=m.retain)
                    self._graceful_goodbye = []
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._outbox[i] for i in range(min(self._window, len(self._outbox)))]
            for m in batch:
                key = id(m)
                if key in self._attempted:
                    self.stats.resent += 1
                self._attempted.add(key)
            results = await asyncio.gather(
                *(publish(m.topic, m.payload, qos=1, retain=m.retain) for m in batch),
                return_exceptions=True,
            )
            self.stats.sent += len(batch)
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                if isinstance(failed, MqttError):
                    raise failed
                raise MqttError(f"publish failed: {failed!r}") from failed
            for m in batch:
                self._outbox.popleft()
                self._attempted.discard(id(m))
            self.stats.acked += len(batch)
