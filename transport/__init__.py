"""How messages move: MQTT through a broker, or the in-process bus. Nothing else of ours.

One small package that the simulator (gateways, implant transmitters, video gateway),
the audit-checkpoint publisher and the hub's ingest all use, so there is one broker URL
parser (:class:`BrokerConfig`, passwords never in URLs), one capped back-off
(:class:`Backoff`), one place that constructs aiomqtt clients (:func:`client_for`), one
outbox publisher (:class:`MqttLink`) and one retained-message reader
(:func:`fetch_retained`). The in-process bus (:class:`InprocBus`) offers the same link
interface for replays and the embedded demo.

Layering: this package imports only aiomqtt/paho and the standard library; it never
imports ``protocols``, ``firmware_sim`` or ``console`` (an import-linter contract).
"""

from typing import Protocol

from transport._backoff import Backoff
from transport._client import (
    Client,
    MqttError,
    Will,
    abort,
    ack,
    client_for,
    is_connected,
    manual_acks,
    publish_properties,
    settle,
)
from transport._config import PASSWORD_HINT, BrokerConfig, BrokerConfigError
from transport._inproc import BusMessage, InprocBus, InprocLink, topic_matches
from transport._mosquitto import (
    BrokerStartError,
    ThrowawayBroker,
    free_loopback_port,
    mosquitto_binary,
)
from transport._publisher import BrokerUnreachableError, LinkStats, MqttLink, OutMessage
from transport._retained import RetainedReadError, fetch_retained, read_retained
from transport._subscriber import MqttSubscriber, Received, SubscriberStats


class MessageLink(Protocol):
    """Where envelopes go: an MQTT connection, or the in-process bus."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue one message for delivery at QoS 1 (must not block)."""


__all__ = [
    "PASSWORD_HINT",
    "Backoff",
    "BrokerConfig",
    "BrokerConfigError",
    "BrokerStartError",
    "BrokerUnreachableError",
    "BusMessage",
    "Client",
    "InprocBus",
    "InprocLink",
    "LinkStats",
    "MessageLink",
    "MqttError",
    "MqttLink",
    "MqttSubscriber",
    "OutMessage",
    "Received",
    "RetainedReadError",
    "SubscriberStats",
    "ThrowawayBroker",
    "Will",
    "abort",
    "ack",
    "client_for",
    "fetch_retained",
    "free_loopback_port",
    "is_connected",
    "manual_acks",
    "mosquitto_binary",
    "publish_properties",
    "read_retained",
    "settle",
    "topic_matches",
]
