"""The in-process message bus: MQTT's semantics without a broker.

Same interface as :class:`~transport.MqttLink` (a message link), no syscalls, no broker:
a virtual hour of a whole site runs in seconds (replays, tests), and the embedded demo
runs without Mosquitto. The bus implements MQTT's topic filters (``+``, ``#``), retained
messages and Last Wills, so code written against it behaves the same on Mosquitto.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transport._publisher import OutMessage

__all__ = ["BusMessage", "InprocBus", "InprocLink", "topic_matches"]


@dataclass(frozen=True, slots=True)
class BusMessage:
    topic: str
    payload: bytes
    retain: bool = False


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (``+`` one level, ``#`` the rest, including none)."""
    p_parts = pattern.split("/")
    t_parts = topic.split("/")
    for i, part in enumerate(p_parts):
        if part == "#":
            return True
        if i >= len(t_parts):
            return False
        if part not in ("+", t_parts[i]):
            return False
    return len(p_parts) == len(t_parts)


class InprocBus:
    """A synchronous publish/subscribe bus with retained messages."""

    def __init__(self) -> None:
        self._subs: list[tuple[str, Callable[[BusMessage], None]]] = []
        self.retained: dict[str, BusMessage] = {}
        self.messages: list[BusMessage] = []
        self.keep = True

    def subscribe(self, pattern: str, callback: Callable[[BusMessage], None]) -> None:
        """Receive every later message matching ``pattern`` (retained ones at once)."""
        self._subs.append((pattern, callback))
        for topic, msg in list(self.retained.items()):
            if topic_matches(pattern, topic):
                callback(msg)

    def deliver(self, msg: BusMessage) -> None:
        if msg.retain:
            if msg.payload:
                self.retained[msg.topic] = msg
            else:
                self.retained.pop(msg.topic, None)
        if self.keep:
            self.messages.append(msg)
        for pattern, callback in self._subs:
            if topic_matches(pattern, msg.topic):
                callback(msg)


class InprocLink:
    """A message link onto an :class:`InprocBus`, with MQTT's presence semantics.

    ``will`` is a factory of the Last Will (as for :class:`MqttLink`): it is delivered
    when the link :meth:`crash`-es or goes offline; while offline, messages queue and are
    delivered in order when it comes back — the same contract as the real link.
    """

    def __init__(self, bus: InprocBus, will: Callable[[], OutMessage] | None = None) -> None:
        self._bus = bus
        self.will = will
        self.published = 0
        self._offline = False
        self._queue: list[BusMessage] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.published += 1
        msg = BusMessage(topic, payload, retain)
        if self._offline:
            self._queue.append(msg)
        else:
            self._bus.deliver(msg)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def crash(self) -> None:
        """Lose the connection without saying goodbye: the broker sends the Last Will."""
        if self.will is not None:
            w = self.will()
            self._bus.deliver(BusMessage(w.topic, w.payload, w.retain))

    def set_offline(self, offline: bool) -> None:
        """Network lost (will delivered, messages queue) or back (queue delivered)."""
        if offline and not self._offline:
            self.crash()
        self._offline = offline
        if not offline:
            queued, self._queue = self._queue, []
            for msg in queued:
                self._bus.deliver(msg)

    def close(self) -> None:
        """A clean goodbye: no will."""
