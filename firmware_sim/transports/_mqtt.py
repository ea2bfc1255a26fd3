"""MQTT publishing behind a small interface of our own: outbox, reconnect, birth and will.

aiomqtt 2.x (pinned ``<3``: 3.0 changes the API) is used only here, so the transport can
change without touching firmware. Guarantees, in the order a gateway needs them:

* **Nothing lost** — :meth:`MqttLink.publish` only appends to an in-memory outbox; a
  message leaves the outbox when the broker has acknowledged it (QoS 1 PUBACK). While the
  broker is unreachable the outbox grows and the link retries with exponential back-off
  (with jitter seeded by the client id, so 200 gateways do not reconnect in lockstep).
* **In order** — messages are sent in outbox order, in windows of ``window`` in flight;
  a window that is not fully acknowledged is sent again, from its first message, on the
  next connection.
* **Duplicates are recognisable** — a resent message is byte-identical (same envelope id
  and seq), so the consumer drops it as a duplicate instead of counting new data.
* **Birth and death** — on every connection the link first publishes what ``on_connect``
  returns (the retained birth); the Last Will (death) is registered with the broker at
  connect time and only sent by it if the link dies without a clean disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import aiomqtt

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to publish (always QoS 1)."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True)
class BrokerAddress:
    """A broker URL taken apart: ``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://…``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; any host is accepted (it is the user's broker).

        Raises:
            ValueError: not an ``mqtt://`` or ``mqtts://`` URL, or no host.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"broker URL has no host: {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ValueError(f"bad port in broker URL {url!r}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


@dataclass
class LinkStats:
    """What happened on the link; the acknowledged count is the one that matters."""

    queued: int = 0
    acked: int = 0
    sent: int = 0
    resent: int = 0
    connections: int = 0
    failures: int = 0
    last_error: str = ""
    connected: bool = False
    errors: list[str] = field(default_factory=list)


class MqttLink:
    """A publisher with an outbox that survives broker outages.

    Args:
        url: broker URL (see :class:`BrokerAddress`).
        client_id: MQTT client identifier (one per gateway/transmitter).
        will: Last Will factory, called at each connection (a fresh signed death
            envelope: its ``sent`` time must be the connection's).
        on_connect: messages to publish first on each connection (the retained birth).
        window: messages in flight at once.
        ack_timeout: seconds to wait for a PUBACK before treating the connection as dead.
        backoff: first and maximum delay between connection attempts, seconds.
        tls_context: TLS context for ``mqtts://`` (default: system trust store).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        will: Callable[[], OutMessage] | None = None,
        on_connect: Callable[[], list[OutMessage]] | None = None,
        window: int = 32,
        ack_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        keepalive: int = 30,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address = BrokerAddress.parse(url)
        self.client_id = client_id
        self._will = will
        self._on_connect = on_connect
        self._window = max(1, window)
        self._ack_timeout = ack_timeout
        self._backoff = backoff
        self._keepalive = keepalive
        self._tls = tls_context
        self._outbox: deque[OutMessage] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._connected_event = asyncio.Event()
        self._stopping = False
        self._graceful_goodbye: list[OutMessage] = []
        self._jitter = random.Random(client_id)
        self._offline = False
        self._client_now: aiomqtt.Client | None = None
        self._attempted: set[int] = set()
        self._next_id = 0
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
            # aiomqtt has no "abort" call. Shutting the TCP connection down under paho is
            # the network failure: paho reads EOF and reports the disconnection, and the
            # broker, which got no DISCONNECT packet, publishes the will. (Closing the
            # descriptor instead would pull it from under paho's event-loop callbacks.)
            sock = client._client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._wake.set()

    def stop(self, goodbye: list[OutMessage] | None = None) -> None:
        """Ask :meth:`run` to send ``goodbye`` (e.g. a death envelope) then disconnect
        cleanly — a clean disconnect means the broker does not send the will."""
        self._graceful_goodbye = list(goodbye or [])
        self._stopping = True
        self._wake.set()

    # -- the connection loop ------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        will = None
        if self._will is not None:
            w = self._will()
            will = aiomqtt.Will(w.topic, w.payload, qos=1, retain=w.retain)
        tls_context = self._tls
        if self.address.tls and tls_context is None:
            tls_context = ssl.create_default_context()
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=self._keepalive,
            timeout=self._ack_timeout,
            max_inflight_messages=self._window,
            tls_context=tls_context,
        )
        # A full window in flight is normal here, not a reason to log warnings.
        client.pending_calls_threshold = self._window + 8
        return client

    async def run(self) -> None:
        """Connect, publish, reconnect forever (until :meth:`stop`). Run it as a task."""
        attempt = 0
        while True:
            while self._offline and not self._stopping:
                self._wake.clear()
                await self._wake.wait()
            try:
                async with self._client() as client:
                    self._client_now = client
                    attempt = 0
                    self.stats.connections += 1
                    self.stats.connected = True
                    self._connected_event.set()
                    await self._session(client)
                    return  # stopped cleanly
            except aiomqtt.MqttError as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                if len(self.stats.errors) < 100:
                    self.stats.errors.append(str(exc))
                _log.info("mqtt %s: %s; retrying", self.client_id, exc)
            finally:
                _retrieve_disconnect_error(self._client_now)
                self._client_now = None
                self.stats.connected = False
                self._connected_event.clear()
            if self._stopping and not self._outbox:
                return
            low, high = self._backoff
            delay = min(high, low * (2**attempt)) * (0.5 + self._jitter.random())
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_stop(), timeout=delay)

    async def _wait_stop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    async def _session(self, client: aiomqtt.Client) -> None:
        if self._on_connect is not None:
            for m in self._on_connect():
                await client.publish(m.topic, m.payload, qos=1, retain=m.retain)
                self.stats.sent += 1
        while True:
            if self._offline:
                # Let paho notice the dead socket first, so leaving the context does not
                # try a DISCONNECT on it (which would race the socket's closing).
                for _ in range(100):
                    if not client._client.is_connected():
                        break
                    await asyncio.sleep(0.01)
                raise aiomqtt.MqttError("network down (simulated)")
            if not self._outbox:
                self._idle.set()
                if self._stopping:
                    for m in self._graceful_goodbye:
                        await client.publish(m.topic, m.payload, qos=1, retain=m.retain)
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
                *(client.publish(m.topic, m.payload, qos=1, retain=m.retain) for m in batch),
                return_exceptions=True,
            )
            self.stats.sent += len(batch)
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                if isinstance(failed, aiomqtt.MqttError):
                    raise failed
                raise aiomqtt.MqttError(f"publish failed: {failed!r}") from failed
            for m in batch:
                self._outbox.popleft()
                self._attempted.discard(id(m))
            self.stats.acked += len(batch)


def _retrieve_disconnect_error(client: aiomqtt.Client | None) -> None:
    """Mark aiomqtt's "unexpected disconnection" future as seen.

    When the connection dies, aiomqtt stores the error in a future that its context exit
    does not read; asyncio then logs "Future exception was never retrieved" at garbage
    collection. The error has been handled here (we reconnect), so read it.
    """
    future = getattr(client, "_disconnected", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()
