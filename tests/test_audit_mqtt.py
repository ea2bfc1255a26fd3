"""The retained MQTT copy of the audit checkpoints, against a real Mosquitto on 127.0.0.1.

What must hold (records-security.md, "Audit trail"): each checkpoint is published
retained (QoS 1) on ``samu/v1/centre/{centre}/audit/checkpoint`` as the same signed
document as the outside file; the store never waits for or fails because of the broker;
a broker outage is one ``broker-loss`` incident and the latest checkpoint goes out when
the broker returns; ``samu audit verify --mqtt URL`` catches a roll-back that also
replaced the checkpoint directory, and a forged retained checkpoint.

The publisher is hosted by an event loop, as the hub hosts it: the tests are async and
the store's synchronous writes run in that loop, as they do in the hub's writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.cli import main
from console.records import (
    AuditContext,
    AuditEvent,
    CheckpointPublisher,
    Store,
    checkpoint_topic,
    fetch_retained_checkpoint,
    list_incidents,
    verify_trail,
)
from console.records._checkpoint import canonical_bytes
from tests.support.brokers import (
    USERS,
    Broker,
    DeployedBroker,
    free_loopback_port,
    mosquitto_binary,
)
from transport import BrokerConfig

TOPIC = "samu/v1/centre/samu075/audit/checkpoint"
pytestmark = pytest.mark.timeout(60)


def append(store: Store, n: int, tag: str = "x") -> None:
    for i in range(n):
        store.append_audit(
            AuditEvent(actor="user:u1", role="regulateur", terminal="t1", action=f"{tag}{i}")
        )


async def wait_until(
    condition: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    """Poll a condition (not a fixed sleep) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def hub(
    path: Path, url: str, *, close_timeout: float = 3.0, **kw: object
) -> AsyncIterator[tuple[Store, CheckpointPublisher]]:
    """A store with its publisher hosted in this loop, as ``samu hub`` runs them.

    The broker first gets the latest checkpoint (it catches up with what was taken while
    it, or the hub, was away); on the way out: checkpoint, drain, close.
    """
    options: dict[str, object] = {"checkpoint_every": 5}
    publisher_options = {k: kw.pop(k) for k in ("backoff", "replace_retained") if k in kw}
    options.update(kw)
    store = Store.open(path, **options)  # type: ignore[arg-type]
    publisher = CheckpointPublisher(BrokerConfig.parse(url), store=store, **publisher_options)  # type: ignore[arg-type]
    store.add_checkpoint_listener(publisher)
    latest = store.latest_checkpoint()
    if latest is not None:
        publisher(latest)
    task = asyncio.create_task(publisher.run())
    try:
        yield store, publisher
    finally:
        store.checkpoint(force=False)
        await publisher.close(close_timeout)
        await asyncio.wait_for(task, timeout=close_timeout + 5)
        store.close()


async def late_subscriber(url: str, topic: str = TOPIC) -> aiomqtt.Message:
    address = BrokerConfig.parse(url)
    async with aiomqtt.Client(
        address.host, address.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=10
    ) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            return await anext(client.messages)


async def publish_raw(url: str, payload: bytes, topic: str = TOPIC) -> None:
    address = BrokerConfig.parse(url)
    async with aiomqtt.Client(
        address.host, address.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=10
    ) as client:
        await client.publish(topic, payload, qos=1, retain=True)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run a ``samu`` command as a separate step (its own event loop, in a thread)."""
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_sync(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def newest_file(db: Path) -> dict[str, object]:
    files = sorted(Path(f"{db}.checkpoints").glob("checkpoint-*.json"))
    doc: dict[str, object] = json.loads(files[-1].read_text())
    return doc


# --------------------------------------------------------------------------------------


def test_the_topic() -> None:
    assert checkpoint_topic() == TOPIC
    assert checkpoint_topic("samu013") == "samu/v1/centre/samu013/audit/checkpoint"
    with pytest.raises(ValueError, match="not a valid id"):
        checkpoint_topic("a/b")


async def test_a_checkpoint_is_retained_and_a_late_subscriber_gets_it(
    mosquitto: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "samu.db"
    async with hub(db, mosquitto.url) as (store, publisher):
        append(store, 12)
        taken = store.checkpoint()
        assert taken is not None
        assert await publisher.flush(15)
        assert publisher.status.published == taken
    message = await late_subscriber(mosquitto.url)
    assert message.retain and message.qos == 1 and message.topic.value == TOPIC
    assert message.properties is not None
    assert message.properties.ContentType == "application/json"  # type: ignore[attr-defined]
    assert isinstance(message.payload, bytes)
    # the very document of the outside file (the close checkpoint had nothing new to cover)
    assert json.loads(message.payload) == newest_file(db)
    assert json.loads(message.payload)["statement"]["tree_size"] == taken.tree_size

    fetched = await fetch_retained_checkpoint(BrokerConfig.parse(mosquitto.url))
    assert fetched is not None and fetched.checkpoint is not None
    assert fetched.checkpoint.statement() == taken.statement()
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 0, out
    assert out.startswith("intact: ")

    code, out, _ = await cli(
        capsys, "audit", "checkpoint", "--db", str(db), "--mqtt", mosquitto.url, "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["mqtt"] == {
        "broker": mosquitto.url,
        "topic": TOPIC,
        "published": True,
        "error": None,
    }
    retained = json.loads((await late_subscriber(mosquitto.url)).payload)
    assert retained["statement"] == doc["statement"]


async def test_the_store_works_on_while_the_broker_is_down(
    mosquitto: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "samu.db"
    async with hub(db, mosquitto.url, backoff=(0.05, 0.3), close_timeout=1.0) as (
        store,
        publisher,
    ):
        append(store, 9)
        assert await publisher.flush(15) and publisher.status.published is not None

        mosquitto.stop()
        started = time.monotonic()
        append(store, 25, "down")  # five checkpoints taken while the broker is away
        assert time.monotonic() - started < 5.0  # the writer never waits for the broker
        await wait_until(lambda: publisher.status.failures >= 3, what="several failed attempts")
        await wait_until(lambda: publisher.status.incident_id is not None, what="incident")
        assert not await publisher.flush(0)
        latest = store.latest_checkpoint()
        assert latest is not None and latest.tree_size >= 35
        published = publisher.status.published
        assert published is not None and published.tree_size < latest.tree_size

        mosquitto.start()
        assert await publisher.flush(20)
        await wait_until(lambda: publisher.status.outage_since is None, what="recovery")
        fetched = await fetch_retained_checkpoint(BrokerConfig.parse(mosquitto.url))
        assert fetched is not None and fetched.checkpoint is not None
        assert fetched.checkpoint.tree_size == store.latest_checkpoint().tree_size  # type: ignore[union-attr]

        # A second outage is a follow-up of the same open incident, not a new one.
        mosquitto.stop()
        append(store, 5, "again")
        await wait_until(lambda: publisher.status.outage_since is not None, what="second outage")
        mosquitto.start()
        assert await publisher.flush(20)
        await wait_until(lambda: publisher.status.outage_since is None, what="second recovery")
    with Store.open(db) as reader:
        incidents = list_incidents(reader, AuditContext.local(), with_notes=True)
    losses = [i for i in incidents if i.category == "broker-loss"]
    assert len(losses) == 1  # once per outage, however many retries
    (loss,) = losses
    assert loss.kind == "technical" and loss.status == "open"
    assert loss.object == f"mqtt:127.0.0.1:{mosquitto.port}"
    notes = [n.note for n in loss.notes]
    assert [n.split(" ")[0] for n in notes] == [
        mosquitto.url,
        "reachable",
        "unreachable",
        "reachable",
    ]
    assert verify_trail(db).exit_code == 0


async def test_closing_with_the_broker_down_is_quick_and_records_the_outage(
    tmp_path: Path,
) -> None:
    dead = f"mqtt://127.0.0.1:{free_loopback_port()}"
    db = tmp_path / "samu.db"
    started = time.monotonic()
    async with hub(db, dead, close_timeout=0.5) as (store, publisher):
        append(store, 3)
        store.checkpoint()
        await wait_until(lambda: publisher.status.incident_id is not None, what="incident")
    assert time.monotonic() - started < 8.0
    assert publisher.status.closed and not await publisher.flush(0)
    report = verify_trail(db)
    assert report.exit_code == 0  # the incident's events are covered on disk too


async def test_verify_catches_a_roll_back_only_the_broker_remembers(
    mosquitto: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "samu.db"
    directory = Path(f"{db}.checkpoints")
    async with hub(db, mosquitto.url) as (store, _):
        append(store, 15)
    shutil.copy(db, tmp_path / "old.db")
    shutil.copytree(directory, tmp_path / "old.checkpoints")
    async with hub(db, mosquitto.url) as (store, _):
        append(store, 6, "later")
        newer = store.checkpoint()
        assert newer is not None and newer.tree_size == 22
    # Put back the older database *and* its checkpoint directory.
    shutil.copy(tmp_path / "old.db", db)
    shutil.rmtree(directory)
    shutil.copytree(tmp_path / "old.checkpoints", directory)

    assert verify_trail(db).exit_code == 0  # nothing on this disk disagrees
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 1
    assert out.splitlines()[0] == "damaged: rolled back at seq 17"
    assert "covers 22 events but the log ends at seq 16" in out

    # A hub restarted on the old copy must not erase the evidence.
    async with hub(db, mosquitto.url) as (store, publisher):
        assert await publisher.flush(15)
        assert publisher.status.refused and "rolled back" in publisher.status.refused
        append(store, 10, "after")  # still refused, checkpoint after checkpoint
        assert await publisher.flush(15) and publisher.status.published is None
        security = list_incidents(store, AuditContext.local(), kind="security")
    assert [i.category for i in security] == ["verify-failure"]
    assert security[0].object == "audit-checkpoint:22"
    fetched = await fetch_retained_checkpoint(BrokerConfig.parse(mosquitto.url))
    assert fetched is not None and fetched.checkpoint is not None
    assert fetched.checkpoint.statement() == newer.statement()
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 1 and out.startswith("damaged: rolled back at seq ")
    code, _, err = await cli(
        capsys, "audit", "checkpoint", "--db", str(db), "--mqtt", mosquitto.url
    )
    assert code == 1 and "left in place" in err

    # After a legitimate restore the operator supersedes it, and that is in the trail.
    code, out, err = await cli(
        capsys,
        "audit",
        "checkpoint",
        "--db",
        str(db),
        "--mqtt",
        mosquitto.url,
        "--replace-retained",
    )
    assert code == 0, err
    assert "published (retained)" in out
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 0, out
    with Store.open(db) as store:
        row = store.fetchone(
            "SELECT detail FROM audit_events WHERE action = 'audit.checkpoint.supersede'"
        )
    assert json.loads(row[0])["retained"]["tree_size"] == 22


async def test_a_forged_retained_checkpoint_is_a_bad_signature(
    mosquitto: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "samu.db"
    async with hub(db, mosquitto.url) as (store, _):
        append(store, 12)
    doc = json.loads((await late_subscriber(mosquitto.url)).payload)
    size = doc["statement"]["tree_size"]
    doc["statement"]["tree_size"] = size + 5  # claims more, signed by someone else
    doc["signature"] = Ed25519PrivateKey.generate().sign(canonical_bytes(doc["statement"])).hex()
    await publish_raw(mosquitto.url, json.dumps(doc).encode())
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 1
    assert out.splitlines()[0] == f"damaged: bad signature at seq {size + 5}"
    assert "mqtt-retained@127.0.0.1" in out and "signature does not verify" in out

    await publish_raw(mosquitto.url, b"{not a checkpoint")
    code, out, _ = await cli(
        capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url, "--json"
    )
    report = json.loads(out)
    assert (code, report["kind"]) == (1, "bad signature")

    # The writer replaces a forgery with the genuine checkpoint (it is no evidence of ours).
    async with hub(db, mosquitto.url) as (_, publisher):
        assert await publisher.flush(15) and publisher.status.published is not None
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 0, out


def test_cli_broker_errors(
    mosquitto: Broker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "samu.db"
    with Store.open(db) as store:
        append(store, 3)
    dead = f"mqtt://127.0.0.1:{free_loopback_port()}"
    code, out, _ = cli_sync(capsys, "audit", "verify", "--db", str(db), "--mqtt", dead)
    assert code == 2 and out.startswith("unusable: cannot read the retained checkpoint")
    code, _, err = cli_sync(
        capsys, "audit", "verify", "--db", str(db), "--mqtt", "mqtt://u:pw@127.0.0.1:1"
    )
    assert code == 2 and "SAMU_MQTT_PASSWORD" in err
    # An empty topic: nothing to compare with, said in a note.
    code, out, _ = cli_sync(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 0 and "no retained checkpoint on" in out
    # A configured (not named) broker that is down only adds a note.
    monkeypatch.setenv("SAMU_MQTT__URL", dead)
    code, out, _ = cli_sync(capsys, "audit", "verify", "--db", str(db))
    assert code == 0 and "configured broker" in out
    # The checkpoint is taken and kept on disk even when the broker cannot take it.
    code, out, err = cli_sync(capsys, "audit", "checkpoint", "--db", str(db), "--mqtt-timeout", "1")
    assert code == 1 and "not published" in err and "written to" in out
    monkeypatch.setenv("SAMU_CENTRE", "samu013")
    monkeypatch.setenv("SAMU_MQTT__URL", mosquitto.url)
    code, out, _ = cli_sync(capsys, "audit", "checkpoint", "--db", str(db))
    assert code == 0 and "samu/v1/centre/samu013/audit/checkpoint" in out
    code, _, err = cli_sync(capsys, "audit", "checkpoint", "--db", str(db), "--mqtt-topic", "a/#")
    assert code == 2 and "concrete" in err


# --- the shipped deployment: TLS, passwords, ACL ------------------------------------------


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[DeployedBroker]:
    if mosquitto_binary() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto (with mosquitto_passwd) is not installed")
    (tmp_path / "deployed").mkdir()
    broker = DeployedBroker(tmp_path / "deployed")
    try:
        yield broker
    finally:
        broker.stop()
        if broker.proc.stderr is not None:
            broker.proc.stderr.close()


def test_tls_and_password_from_the_environment(
    deployed: DeployedBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"mqtts://hub.samu075@127.0.0.1:{deployed.tls_port}"
    monkeypatch.setenv("SAMU_MQTT_CA_FILE", str(deployed.crt))
    monkeypatch.setenv("SAMU_MQTT_PASSWORD", "wrong")
    db = tmp_path / "samu.db"
    with Store.open(db) as store:
        append(store, 3)
    code, _, err = cli_sync(
        capsys, "audit", "checkpoint", "--db", str(db), "--mqtt", url, "--mqtt-timeout", "1"
    )
    assert code == 1 and "not published" in err  # the broker refuses the password
    monkeypatch.setenv("SAMU_MQTT_PASSWORD", USERS["hub.samu075"])
    code, out, err = cli_sync(capsys, "audit", "checkpoint", "--db", str(db), "--mqtt", url)
    assert code == 0, err
    # a régulation terminal of the centre may read it (ACL), over TLS
    monkeypatch.setenv("SAMU_MQTT_PASSWORD", USERS["term.samu075.01"])
    term = f"mqtts://term.samu075.01@127.0.0.1:{deployed.tls_port}"
    code, out, _ = cli_sync(capsys, "audit", "verify", "--db", str(db), "--mqtt", term)
    assert code == 0, out
    # without the CA file the self-signed broker is not trusted
    monkeypatch.delenv("SAMU_MQTT_CA_FILE")
    code, out, _ = cli_sync(capsys, "audit", "verify", "--db", str(db), "--mqtt", term)
    assert code == 2 and "unusable" in out


async def test_backup_restore_supersedes_the_retained_checkpoint(
    mosquitto: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "samu.db"
    with Store.open(db) as store:
        append(store, 5)
    code, out, _ = await cli(
        capsys,
        "backup",
        "create",
        "--db",
        str(db),
        "--to",
        str(tmp_path / "b"),
        "--mqtt",
        mosquitto.url,
    )
    assert code == 0
    backup = out.split("backup written: ")[1].strip()
    async with hub(db, mosquitto.url) as (store, _):
        append(store, 10, "after-backup")
    assert (await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url))[0] == 0

    code, out, err = await cli(
        capsys, "backup", "restore", "--db", str(db), "--force", backup, "--mqtt", mosquitto.url
    )
    assert code == 0, err
    assert "superseded: retained checkpoint" in out
    code, out, _ = await cli(capsys, "audit", "verify", "--db", str(db), "--mqtt", mosquitto.url)
    assert code == 0, out
    with Store.open(db) as store:
        row = store.fetchone(
            "SELECT detail FROM audit_events WHERE action = 'audit.checkpoint.supersede'"
        )
    detail = json.loads(row[0])
    assert detail["reason"].startswith("backup.restore ")
    assert detail["retained"]["tree_size"] > 7
