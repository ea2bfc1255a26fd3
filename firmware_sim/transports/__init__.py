"""Transports: pty serial, serial over TCP, MQTT (aiomqtt), and in-process.

Two small interfaces cover them all: a *byte sink* (``write(bytes)``/``close()``) for serial
devices and a *message link* (``publish(topic, payload, retain=…)``) for MQTT senders.
Firmware depends only on these, so the same device runs over a pty in the demo, over
``socket://`` against a terminal-server consumer, or in process in a replay.
"""

from typing import Protocol

from firmware_sim.transports._inproc import (
    BusMessage,
    InprocBus,
    InprocLink,
    InprocPort,
    topic_matches,
)
from firmware_sim.transports._mqtt import BrokerAddress, LinkStats, MqttLink, OutMessage
from firmware_sim.transports._pty import PtyPort
from firmware_sim.transports._socket import SocketPort


class MessageLink(Protocol):
    """Where envelopes go: an MQTT connection, or the in-process bus."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue one message for delivery at QoS 1 (must not block)."""


__all__ = [
    "BrokerAddress",
    "BusMessage",
    "InprocBus",
    "InprocLink",
    "InprocPort",
    "LinkStats",
    "MessageLink",
    "MqttLink",
    "OutMessage",
    "PtyPort",
    "SocketPort",
    "topic_matches",
]
