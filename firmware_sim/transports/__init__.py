"""Device-side transports: pty serial, serial over TCP, in-process ports; MQTT links.

Two small interfaces cover them all: a *byte sink* (``write(bytes)``/``close()``) for serial
devices and a *message link* (``publish(topic, payload, retain=…)``) for MQTT senders.
Firmware depends only on these, so the same device runs over a pty in the demo, over
``socket://`` against a terminal-server consumer, or in process in a replay. The message
links (MQTT, in-process bus) are the shared :mod:`transport` package's, re-exported here
for the firmware's convenience.
"""

from firmware_sim.transports._inproc import InprocPort
from firmware_sim.transports._pty import PtyPort
from firmware_sim.transports._socket import SocketPort
from transport import (
    BrokerConfig,
    BusMessage,
    InprocBus,
    InprocLink,
    LinkStats,
    MessageLink,
    MqttLink,
    OutMessage,
    topic_matches,
)

__all__ = [
    "BrokerConfig",
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
