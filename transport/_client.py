"""The only module that constructs aiomqtt clients or touches their internals.

aiomqtt 2.x (pinned ``<3``: 3.0 changes the API) is the maintained asyncio MQTT client.
Everything else in the product sees this package's small interface, so the client can
change in one place. Two aiomqtt behaviours need a hand, kept here and nowhere else:

* after a connection dies, aiomqtt stores the error in a future its context exit does not
  read; asyncio then logs "Future exception was never retrieved" at garbage collection,
  and after a refused CONNACK it leaves paho's (TLS) socket open — :func:`settle` reads
  the one and closes the other;
* aiomqtt has no "abort" (drop the TCP connection without an MQTT DISCONNECT, which is
  what a transmitter unplugged from the wall does and what makes the broker publish the
  Last Will) — :func:`abort` shuts paho's socket down, the only handle there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from transport._config import BrokerConfig

__all__ = [
    "Client",
    "MqttError",
    "Will",
    "abort",
    "ack",
    "client_for",
    "is_connected",
    "manual_acks",
    "publish_properties",
    "settle",
]

Client = aiomqtt.Client
MqttError = aiomqtt.MqttError


@dataclass(frozen=True, slots=True)
class Will:
    """A Last Will: what the broker publishes if the connection dies without goodbye."""

    topic: str
    payload: bytes
    retain: bool = False


def client_for(
    config: BrokerConfig,
    client_id: str,
    *,
    clean_start: bool = True,
    session_expiry_s: int | None = None,
    will: Will | None = None,
    keepalive: int = 30,
    timeout: float = 10.0,
    max_inflight: int | None = None,
    max_queued_incoming: int = 0,
    receive_maximum: int | None = None,
    logger: logging.Logger | None = None,
) -> aiomqtt.Client:
    """An MQTT v5 client for ``config`` (not connected: use it with ``async with``).

    Args:
        clean_start: ``False`` with ``session_expiry_s`` for a persistent session (the
            broker keeps subscriptions and QoS 1 messages while the client is away).
        session_expiry_s: MQTT v5 session expiry interval.
        will: the Last Will.
        max_inflight: QoS 1 messages in flight at once (publishers).
        max_queued_incoming: bound of aiomqtt's incoming queue (0 = unbounded); a bound
            makes paho stop reading the socket when full — back-pressure to the broker.
        receive_maximum: MQTT v5 Receive Maximum — QoS 1 messages the broker may have
            unacknowledged towards us at once (subscribers acknowledging after commit).
    """
    properties = None
    if session_expiry_s is not None or receive_maximum is not None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry_s is not None:
            properties.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            properties.ReceiveMaximum = receive_maximum
    kwargs: dict[str, object] = {}
    if max_inflight is not None:
        kwargs["max_inflight_messages"] = max_inflight
    if max_queued_incoming:
        kwargs["max_queued_incoming_messages"] = max_queued_incoming
    client = aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=config.password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=clean_start,
        properties=properties,
        will=aiomqtt.Will(will.topic, will.payload, qos=1, retain=will.retain) if will else None,
        keepalive=keepalive,
        timeout=timeout,
        tls_context=config.tls_context(),
        logger=logger or logging.getLogger("transport.mqtt"),
        **kwargs,  # type: ignore[arg-type]
    )
    if max_inflight is not None:
        # A full window in flight is normal for a publisher, not a reason to warn.
        client.pending_calls_threshold = max_inflight + 8
    return client


def publish_properties(content_type: str | None = None) -> Properties:
    """MQTT v5 PUBLISH properties (content type)."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if content_type is not None:
        properties.ContentType = content_type
    return properties


def settle(client: aiomqtt.Client | None) -> None:
    """Tidy up after a client's context, whatever happened in it (module docstring)."""
    if client is None:
        return
    future = getattr(client, "_disconnected", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()
    reset = getattr(getattr(client, "_client", None), "_reset_sockets", None)
    if callable(reset):
        with contextlib.suppress(Exception):
            reset()


def abort(client: aiomqtt.Client) -> None:
    """Drop the TCP connection without DISCONNECT (the broker then sends the will)."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def is_connected(client: aiomqtt.Client) -> bool:
    """Whether paho still considers the connection up (after :func:`abort`, it soon won't)."""
    return bool(client._client.is_connected())


def manual_acks(client: aiomqtt.Client) -> None:
    """Acknowledge QoS 1 messages only when :func:`ack` is called (after a commit).

    aiomqtt has no option for it; paho has, on the client aiomqtt wraps.
    """
    client._client.manual_ack_set(True)


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK of ``message`` (see :func:`manual_acks`)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)
