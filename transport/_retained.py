"""Reading a retained message: the broker as a witness (audit checkpoints).

Subscribing twice makes a barrier: the second SUBACK (retained messages not resent)
comes after the retained message of the first subscription, so with Mosquitto the answer
is known without waiting. ``grace`` covers brokers that deliver retained messages later
(clusters). The subscription is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets

from paho.mqtt.subscribeoptions import SubscribeOptions

from transport._client import Client, MqttError, client_for, settle
from transport._config import BrokerConfig

__all__ = ["RetainedReadError", "fetch_retained", "read_retained"]


class RetainedReadError(ConnectionError):
    """The broker could not be asked (unreachable, refused, no answer in time, ACL)."""


async def read_retained(client: Client, topic: str, grace: float = 0.3) -> bytes | None:
    """The retained payload of ``topic`` on a connected client (``None``: there is none).

    Raises:
        MqttError: the connection failed.
        RetainedReadError: the broker refused the subscription (ACL).
    """
    first = SubscribeOptions(qos=1, noLocal=True)
    again = SubscribeOptions(
        qos=1, noLocal=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
    )
    for options in (first, again):
        granted = await client.subscribe(topic, options=options)
        for code in granted:
            value = code if isinstance(code, int) else code.value
            if value >= 0x80:
                raise RetainedReadError(f"broker refused to subscribe to {topic}: {code}")
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
    with contextlib.suppress(MqttError):
        await client.unsubscribe(topic)
    while len(messages):  # anything that slipped in meanwhile
        await anext(messages)
    return payload


async def fetch_retained(
    broker: BrokerConfig, topic: str, *, timeout: float = 10.0, grace: float = 0.3
) -> bytes | None:
    """Connect, read ``topic``'s retained payload, disconnect.

    Raises:
        RetainedReadError: no answer within ``timeout`` seconds, a refused connection or
            subscription.
    """
    client_id = f"samu-read-{os.getpid()}-{secrets.token_hex(4)}"

    async def fetch() -> bytes | None:
        client = client_for(broker, client_id, timeout=timeout)
        try:
            async with client:
                return await read_retained(client, topic, grace)
        finally:
            settle(client)

    try:
        return await asyncio.wait_for(fetch(), timeout=timeout)
    except TimeoutError as exc:
        raise RetainedReadError(f"{broker.display}: no answer within {timeout:g}s") from exc
    except MqttError as exc:
        raise RetainedReadError(f"{broker.display}: {exc}") from exc
