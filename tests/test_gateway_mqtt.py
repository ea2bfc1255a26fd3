"""The gateway through a real Mosquitto: pty → pyserial → envelopes → broker → subscriber.

The central promise: across a broker restart, every envelope the gateway published reaches
a persistent subscriber, and after de-duplication by envelope id exactly once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_sim import DeviceSpec, KeyStore, RealClock, Simulation, profile_for
from firmware_sim.gateway import GatewayCore, GatewayPort, SerialGateway, first_will
from firmware_sim.transports import BrokerConfig, MqttLink, OutMessage, PtyPort
from protocols import KeyRing, open_envelope
from tests.support.brokers import Broker

SITE = "ehpad-mqtt"


class RecordingLink:
    """Forwards to the MQTT link and remembers what was handed to it."""

    def __init__(self, inner: MqttLink) -> None:
        self.inner = inner
        self.sent: list[OutMessage] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.sent.append(OutMessage(topic, payload, retain))
        self.inner.publish(topic, payload, retain=retain)


class Subscriber:
    """A console-like subscriber: persistent session (clean start false, expiry 1 h),
    QoS 1, reconnecting on its own when the broker goes away."""

    def __init__(self, broker: Broker, filters: list[str]) -> None:
        self.broker = broker
        self.filters = filters
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = asyncio.Event()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.broker.port,
                    identifier="test-console",
                    protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=False,
                    properties=props,
                    keepalive=5,
                ) as client:
                    for f in self.filters:
                        await client.subscribe(f, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        self.received.append((message.topic.value, message.payload))
                        self.changed.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)  # back-off before reconnecting

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        async def loop() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


async def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.05) -> None:
    """Wait for a condition on objects that post no event (link state, device counters)."""

    async def loop() -> None:
        while not condition():
            await asyncio.sleep(poll)

    await asyncio.wait_for(loop(), timeout)


async def test_gateway_delivers_everything_exactly_once_across_a_broker_restart(
    mosquitto: Broker,
) -> None:
    subscriber = Subscriber(mosquitto, [f"samu/v1/site/{SITE}/#"])
    sub_task = asyncio.create_task(subscriber.run())
    await asyncio.wait_for(subscriber.subscribed.wait(), 10)

    clock = RealClock(speed=10.0)
    sim = Simulation(clock, seed=11)
    keys = KeyStore.from_seed(11)
    specs = [
        DeviceSpec("spo2-1", "spo2", "sbf1", "r1", SITE),
        DeviceSpec("spo2-2", "spo2", "nonin-df8", "r2", SITE),
    ]
    ports = []
    for spec in specs:
        pty = PtyPort()
        sim.add_serial(spec, pty)
        ports.append(GatewayPort(spec.device_id, pty.path, profile_for(spec), spec.patient))
    holder: list[GatewayCore] = []
    mqtt = MqttLink(
        BrokerConfig.parse(mosquitto.url),
        "gw-test",
        will=functools.partial(first_will, holder),
        ack_timeout=2.0,
        backoff=(0.05, 0.5),
    )
    link = RecordingLink(mqtt)
    core = GatewayCore(SITE, "gw-1", ports, link, keys, clock=clock, seed=11)
    holder.append(core)
    gateway = SerialGateway(core, mqtt)
    gw_task = asyncio.create_task(gateway.run())
    sim.start()
    try:
        await wait_until(lambda: mqtt.stats.acked >= 20, 20)
        mosquitto.stop()
        sent_before = len(link.sent)
        await wait_until(lambda: len(link.sent) >= sent_before + 20 and mqtt.backlog > 10, 20)
        assert not mqtt.connected
        mosquitto.start()
        await wait_until(lambda: mqtt.stats.connections >= 2, 20)
        await wait_until(lambda: mqtt.backlog == 0 and mqtt.stats.acked >= len(link.sent) - 5, 20)
    finally:
        sim.close()
        gateway.stop()
        await asyncio.wait_for(gw_task, 15)
    published = {json.loads(m.payload)["id"]: m.payload for m in link.sent}
    await subscriber.wait_for(
        lambda: published.keys() <= {json.loads(p)["id"] for _, p in subscriber.received}, 20
    )
    sub_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sub_task

    ring = KeyRing(keys.as_mapping())
    seen: dict[str, bytes] = {}
    order: dict[str, list[int]] = {}
    for topic, payload in subscriber.received:
        env = open_envelope(payload, ring)  # signed by each device's key, schema-valid
        if env.id in seen:
            assert seen[env.id] == payload  # a duplicate is byte-identical: same id, same seq
            continue
        seen[env.id] = payload
        order.setdefault(env.device, []).append(env.seq)
        assert topic.endswith(f"/device/{env.device}/{env.kind}")
    delivered_from_gateway = {i for i in seen if i in published}
    assert delivered_from_gateway == set(published)  # nothing lost
    assert mqtt.stats.failures >= 1  # the restart really happened under the gateway
    for device, seqs in order.items():
        if device != "gw-1":
            assert seqs == sorted(seqs), device  # in order, once de-duplicated
    kinds = {json.loads(p)["kind"] for p in published.values()}
    assert {"birth", "vitals"} <= kinds
    assert any(json.loads(p)["kind"] == "death" for _, p in subscriber.received)  # clean goodbye


async def test_last_will_reaches_subscribers_when_a_sender_drops(mosquitto: Broker) -> None:
    subscriber = Subscriber(mosquitto, ["samu/v1/site/home/device/+/death"])
    sub_task = asyncio.create_task(subscriber.run())
    await asyncio.wait_for(subscriber.subscribed.wait(), 10)
    link = MqttLink(
        BrokerConfig.parse(mosquitto.url),
        "tx-1",
        will=lambda: OutMessage("samu/v1/site/home/device/icd-1/death", b'{"will":1}'),
        backoff=(0.05, 0.2),
    )
    task = asyncio.create_task(link.run())
    await asyncio.wait_for(link.wait_connected(), 10)
    link.set_offline(True)  # the network goes: the broker publishes the will
    await subscriber.wait_for(lambda: bool(subscriber.received), 15)
    assert subscriber.received[0][1] == b'{"will":1}'
    link.publish("samu/v1/site/home/device/icd-1/implant", b"queued while offline")
    assert link.backlog == 1
    link.set_offline(False)
    await wait_until(lambda: link.backlog == 0, 15)
    link.stop()
    await asyncio.wait_for(task, 10)
    sub_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sub_task
    assert len(subscriber.received) == 1  # a clean stop sends no will


@pytest.fixture(autouse=True)
def _quiet_aiomqtt_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="mqtt")
