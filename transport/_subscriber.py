"""A subscriber that acknowledges a message only after its owner committed it.

For the hub's ingest: a persistent session (clean start false, a fixed client id, a
session expiry of at least an hour) so the broker keeps what arrives while the hub is
down or restarting, QoS 1, and **manual acknowledgement** — the PUBACK of a message is
sent only once :attr:`MqttSubscriber.on_batch` returned, i.e. once the batch it was part
of is committed. A hub killed between receiving and committing has acknowledged
nothing: the broker redelivers, and the consumer drops what it had already stored as a
duplicate. Nothing acknowledged is ever lost.

Messages are handed over in batches (up to ``batch_max``, waiting at most
``batch_wait_s`` for a batch to fill), which is what makes commits cheap. Back-pressure:
the broker sends at most ``receive_maximum`` unacknowledged messages (MQTT v5 Receive
Maximum), so a slow commit slows the broker down instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from transport._backoff import Backoff
from transport._client import MqttError, ack, client_for, manual_acks, settle
from transport._config import BrokerConfig
from transport._stats import ConnectionStats

__all__ = ["MqttSubscriber", "Received", "SubscriberStats"]

_log = logging.getLogger("transport.mqtt")


@dataclass(frozen=True, slots=True)
class Received:
    """One received message (``at``: wall-clock arrival, epoch seconds)."""

    topic: str
    payload: bytes
    retain: bool
    at: float


@dataclass
class SubscriberStats(ConnectionStats):
    received: int = 0
    acked: int = 0
    batches: int = 0


class MqttSubscriber:
    """Subscribe to ``filters`` and feed batches to ``on_batch`` (module docstring).

    Args:
        broker: where to connect.
        client_id: fixed per hub: the persistent session is keyed by it.
        filters: topic filters (QoS 1).
        on_batch: awaited with each batch; acknowledgements are sent after it returns.
            If it raises, nothing of the batch is acknowledged and the connection is
            dropped, so the broker redelivers the batch.
        session_expiry_s: how long the broker keeps the session while we are away.
    """

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        filters: Sequence[str],
        on_batch: Callable[[list[Received]], Awaitable[None]],
        *,
        session_expiry_s: int = 3600,
        batch_max: int = 500,
        batch_wait_s: float = 0.02,
        backoff: tuple[float, float] = (0.2, 5.0),
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.filters = tuple(filters)
        self._on_batch = on_batch
        self._on_connect = on_connect
        self.session_expiry_s = session_expiry_s
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self._backoff = Backoff(backoff[0], backoff[1], seed=client_id)
        self._stop = asyncio.Event()
        self.stats = SubscriberStats()

    def stop(self) -> None:
        """Finish the batch in hand, then disconnect cleanly."""
        self._stop.set()

    async def run(self) -> None:
        """Connect, consume, reconnect with back-off until :meth:`stop`."""
        attempt = 0
        while not self._stop.is_set():
            client = client_for(
                self.broker,
                self.client_id,
                clean_start=False,
                session_expiry_s=self.session_expiry_s,
                # The bound is the broker's: at most this many unacknowledged messages
                # in flight to us. Not aiomqtt's max_queued_incoming: a full aiomqtt queue
                # *discards* messages ("Message queue is full"), unacknowledged, so they
                # would come back only after a reconnect (the ingest benchmark lost 68 %).
                receive_maximum=max(2 * self.batch_max, 20),
            )
            manual_acks(client)
            try:
                async with client:
                    attempt = 0
                    self._connected()
                    for topic in self.filters:
                        await client.subscribe(topic, qos=1)
                    if self._on_connect is not None:
                        self._on_connect()
                    await self._consume(client)
                    return
            except MqttError as exc:
                self._failed(exc)
            finally:
                settle(client)
                self.stats.connected = False
            delay = self._backoff.delay(attempt)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def _consume(self, client: object) -> None:
        """Batches out of the connection until :meth:`stop`.

        One reader task moves messages from aiomqtt's iterator into ``pending`` and is
        never cancelled while it holds one: cancelling a pending ``__anext__`` (as
        ``asyncio.wait_for`` does on a timeout) can drop a message that was already
        taken off aiomqtt's queue (CPython 3.11's wait_for race), and an unacknowledged
        message is redelivered only after a reconnect — seconds of lost data on a live
        hub. Waiting on an :class:`asyncio.Event` with a timeout loses nothing. The broker
        sends at most ``receive_maximum`` unacknowledged messages, which bounds ``pending``.
        """
        pending: deque[object] = deque()
        arrived = asyncio.Event()
        full = asyncio.Event()  # a whole batch is waiting
        batch_max = self.batch_max

        async def reader() -> None:
            async for message in client.messages:  # type: ignore[attr-defined]
                pending.append(message)
                arrived.set()
                if len(pending) >= batch_max:
                    full.set()

        reading = asyncio.create_task(reader(), name=f"{self.client_id}-reader")
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                if not pending:
                    arrived.clear()
                    waiter = asyncio.create_task(arrived.wait())
                    await asyncio.wait(
                        {waiter, stopping, reading}, return_when=asyncio.FIRST_COMPLETED
                    )
                    waiter.cancel()
                    if reading.done():
                        reading.result()  # the connection died: raise its MqttError
                        return
                    continue
                # Let the batch fill for up to batch_wait_s: one wait for the window
                # (woken early by a full batch), not one wake-up per message arriving.
                if len(pending) < batch_max and not reading.done():
                    full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(full.wait(), timeout=self.batch_wait_s)
                batch = [pending.popleft() for _ in range(min(len(pending), self.batch_max))]
                now = time.time()
                received = [
                    Received(str(m.topic), bytes(m.payload or b""), bool(m.retain), now)  # type: ignore[attr-defined]
                    for m in batch
                ]
                self.stats.received += len(received)
                await self._on_batch(received)  # raises: nothing acknowledged, reconnect
                for m in batch:
                    ack(client, m)  # type: ignore[arg-type]
                self.stats.acked += len(batch)
                self.stats.batches += 1
        finally:
            stopping.cancel()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, MqttError):
                await reading

    def _connected(self) -> None:
        self.stats.up(self.client_id, self.broker.display)

    def _failed(self, exc: BaseException) -> None:
        self.stats.down(self.client_id, self.broker.display, exc)
