"""The ingest pipeline over a real SQLite store: what is stored once, what is quarantined
with which reason, and that nothing bad ever appears as data."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.ingest import (
    Accepted,
    DeviceRegistry,
    Duplicate,
    EnrolmentError,
    Incoming,
    Ingest,
    Quarantined,
    Sender,
    quarantine_rows,
    read_key_file,
    write_key_file,
)
from console.records import AuditContext, Store
from protocols import (
    Envelope,
    Observation,
    StatusBody,
    VitalsBody,
    encode_envelope,
    seal_envelope,
    sign_envelope,
)
from protocols.topics import device_topic, topic_for

SITE, DEVICE = "ehpad-lilas", "ox-1"
T0 = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)
OP = AuditContext(actor="local:tester", role="local-operator", terminal="pts/test")


class Env:
    def __init__(self, path: Path) -> None:
        self.store = Store.open(path)
        self.master = os.urandom(32)
        self.registry = DeviceRegistry(self.store, self.master)
        ((_, self.key, _),) = self.registry.enrol(
            OP, [Sender(SITE, DEVICE, "spo2", "res-01")], now=T0
        )
        self.ingest = Ingest(
            self.store,
            self.registry.keyring(),
            self.master,
            patients={(SITE, DEVICE): "res-01"},
        )
        self.seq = 1000

    def vitals(self, spo2: float = 97.0, *, at: datetime = T0, patient: str | None = None):
        self.seq += 1
        body = VitalsBody(
            v=1,
            patient=patient,
            observations=(
                Observation(code="59408-5", value=spo2, unit="%", time=at, method="device"),
                Observation(code="8867-4", value=72.0, unit="/min", time=at, method="device"),
            ),
        )
        return Envelope.create(site=SITE, device=DEVICE, seq=self.seq, body=body, sent=at)

    def send(self, *items: tuple[str, bytes], at: datetime = T0) -> list:
        return self.ingest.accept([Incoming(t, p, at.timestamp()) for t, p in items])

    def signed(self, env: Envelope) -> tuple[str, bytes]:
        return topic_for(env), seal_envelope(env, self.key)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path / "s.db")
    try:
        yield e
    finally:
        e.store.close()


def test_a_signed_reading_is_stored_once_with_provenance(env: Env) -> None:
    message = env.signed(env.vitals(spo2=91))
    (outcome,) = env.send(message)
    assert isinstance(outcome, Accepted)
    assert outcome.resident == "res-01"  # from the device's binding: the body names none
    assert [(o.code, o.value) for o in outcome.observations] == [
        ("59408-5", 91.0),
        ("8867-4", 72.0),
    ]
    rows = env.store.fetchall("SELECT msg_id, resident, code, clock_skew FROM observations")
    assert rows == [
        (outcome.msg_id, "res-01", "59408-5", 0),
        (outcome.msg_id, "res-01", "8867-4", 0),
    ]
    # The raw bytes are kept sealed (a bilan carries an identity), and open again.
    (raw,) = env.store.fetchone("SELECT raw FROM ingest_messages")
    assert message[1] not in bytes(raw) and env.ingest.open_raw(bytes(raw)) == message[1]
    # The same message again (a QoS 1 redelivery), in the same batch or later: dropped.
    again = env.send(message, message)
    assert all(isinstance(o, Duplicate) for o in again)
    assert env.store.fetchone("SELECT count(*) FROM observations")[0] == 2
    device = env.registry.list()[0]
    assert (device.frames, device.state, device.last_seen) == (1, "online", outcome_iso(T0))
    assert env.store.fetchone("SELECT duplicates FROM devices")[0] == 2


def outcome_iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def test_same_device_and_seq_with_another_id_is_a_duplicate(env: Env) -> None:
    first = env.vitals()
    second = first.model_copy(update={"id": "7f6c1b8e-2d7e-4b39-9a55-0c3f0e7e9a11"})
    outcomes = env.send(env.signed(first), env.signed(second))
    assert isinstance(outcomes[0], Accepted) and isinstance(outcomes[1], Duplicate)


def test_duplicates_are_refused_across_a_restart(tmp_path: Path, env: Env) -> None:
    message = env.signed(env.vitals())
    assert isinstance(env.send(message)[0], Accepted)
    path = env.store.path
    env.store.close()
    env.store = Store.open(path)
    env.registry = DeviceRegistry(env.store, env.master)
    env.ingest = Ingest(env.store, env.registry.keyring(), env.master)
    assert isinstance(env.send(message)[0], Duplicate)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda e: (device_topic(SITE, DEVICE, "vitals"), b"x" * 70_000), "too_large"),
        (lambda e: (device_topic(SITE, DEVICE, "vitals"), b"{not json"), "json"),
        (
            lambda e: (
                device_topic(SITE, DEVICE, "vitals"),
                json.dumps({**sign_envelope(e.vitals(), e.key), "mac": "A" * 43}).encode(),
            ),
            "mac",
        ),
        (
            lambda e: (
                device_topic(SITE, "stranger", "vitals"),
                seal_envelope(e.vitals().model_copy(update={"device": "stranger"}), e.key),
            ),
            "unknown_device",
        ),
        (
            lambda e: (device_topic(SITE, "ox-2", "vitals"), seal_envelope(e.vitals(), e.key)),
            "topic",
        ),
        (
            lambda e: (device_topic(SITE, DEVICE, "status"), seal_envelope(e.vitals(), e.key)),
            "topic",
        ),
        (lambda e: ("samu/v1/elsewhere", seal_envelope(e.vitals(), e.key)), "topic"),
    ],
    ids=["too_large", "json", "mac", "unknown_device", "other-device-topic", "kind", "scheme"],
)
def test_bad_messages_are_quarantined_with_their_reason(env: Env, make, reason: str) -> None:
    topic, payload = make(env)
    (outcome,) = env.send((topic, payload))
    assert isinstance(outcome, Quarantined) and outcome.reason == reason, outcome
    assert env.store.fetchone("SELECT count(*) FROM observations")[0] == 0
    (row,) = quarantine_rows(env.store, env.master)
    assert row["reason"] == reason and row["source"] == topic
    import base64

    assert base64.b64decode(str(row["raw"])) == payload[:65537]


def test_a_body_that_fails_its_schema_under_a_good_mac(env: Env) -> None:
    data = env.vitals().to_wire()
    data["body"]["observations"][0]["value"] = 900  # SpO2 of 900 %
    payload = json.dumps(sign_envelope(data, env.key)).encode()
    (outcome,) = env.send((device_topic(SITE, DEVICE, "vitals"), payload))
    assert isinstance(outcome, Quarantined) and outcome.reason == "schema"
    assert "plausible" in outcome.detail
    assert env.store.fetchone("SELECT quarantined FROM devices")[0] == 1


def test_a_wrong_device_clock_is_replaced_by_arrival_time_and_flagged(env: Env) -> None:
    skewed = env.vitals(at=T0 - timedelta(hours=3))
    (outcome,) = env.send(env.signed(skewed), at=T0)
    assert isinstance(outcome, Accepted)
    assert all(o.clock_skew and o.observed_ts == T0.timestamp() for o in outcome.observations)
    within = env.vitals(at=T0 - timedelta(minutes=4))
    (ok,) = env.send(env.signed(within), at=T0)
    assert isinstance(ok, Accepted) and not any(o.clock_skew for o in ok.observations)


def test_status_updates_the_device_battery(env: Env) -> None:
    env.seq += 1
    status = Envelope.create(
        site=SITE,
        device=DEVICE,
        seq=env.seq,
        body=StatusBody(v=1, state="ok", battery_pct=14),
        sent=T0,
    )
    (outcome,) = env.send(env.signed(status))
    assert isinstance(outcome, Accepted) and outcome.resident is None
    assert env.registry.list()[0].battery_pct == 14


def test_re_enrolling_rotates_the_key(env: Env) -> None:
    old = env.signed(env.vitals())
    ((_, new_key, version),) = env.registry.enrol(
        OP, [Sender(SITE, DEVICE, "spo2", "res-01")], now=T0
    )
    assert version == 2 and new_key != env.key
    env.ingest.set_keyring(env.registry.keyring())
    (refused,) = env.send(old)
    assert isinstance(refused, Quarantined) and refused.reason == "mac"
    env.key = new_key
    assert isinstance(env.send(env.signed(env.vitals()))[0], Accepted)
    actions = [
        r[0]
        for r in env.store.fetchall("SELECT action FROM audit_events WHERE action LIKE 'device.%'")
    ]
    assert actions == ["device.enrol", "device.rotate_key"]
    # The key never reaches the database in clear.
    (sealed,) = env.store.fetchone("SELECT sealed_key FROM devices")
    assert new_key not in bytes(sealed)


def test_key_files_round_trip_and_bad_ones_say_why(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, [(Sender(SITE, DEVICE, "spo2", "res-01"), b"k" * 32)])
    assert path.stat().st_mode & 0o777 == 0o600
    ((sender, key),) = read_key_file(path)
    assert sender == Sender(SITE, DEVICE, "spo2", "res-01") and key == b"k" * 32
    for text, message in [
        ("[]", "not a key file"),
        ('{"keys": [{"site": "a"}]}', "missing 'device'"),
        ('{"keys": [{"site": "a", "device": "b", "key": "AAAA"}]}', "at least 16"),
        ('{"keys": [{"site": "a b", "device": "b", "key": "' + "A" * 43 + '"}]}', "ids are"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(EnrolmentError, match=message):
            read_key_file(bad)
    with pytest.raises(EnrolmentError, match="no such key file"):
        read_key_file(tmp_path / "absent.json")


def test_encode_envelope_is_what_seal_signs(env: Env) -> None:
    """Guard for the helpers above: an unsigned envelope is refused as mac."""
    (outcome,) = env.send((device_topic(SITE, DEVICE, "vitals"), encode_envelope(env.vitals())))
    assert isinstance(outcome, Quarantined) and outcome.reason == "mac"


def test_a_frame_the_device_flags_unreliable_is_kept_but_never_scored(env: Env) -> None:
    """A masimo line with EXC interference (a probe moving, a fall) is stored for
    provenance; its values do not become observations."""
    from console.ingest import SerialSource
    from protocols.codecs import get_codec

    codec = get_codec("masimo-ascii1")
    good = codec.encode({"kind": "spo2", "values": {"spo2_pct": 97, "pulse_bpm": 72}})
    flagged = b"SPO2=085% BPM=120 EXC=000010\r\n"  # 0x10: interference
    items = codec.decode(good + flagged)
    source = SerialSource("socket://127.0.0.1:1", "masimo-ascii1", SITE, DEVICE, "res-01")
    outcomes = env.ingest.accept_frames(source, items, T0.timestamp())
    assert [len(o.observations) for o in outcomes] == [2, 0]  # type: ignore[union-attr]
    assert env.store.fetchone("SELECT count(*) FROM ingest_messages")[0] == 2
    assert env.store.fetchone("SELECT min(value) FROM observations WHERE code = '59408-5'")[0] == 97


def test_a_heart_rate_frame_without_skin_contact_is_kept_but_never_scored(env: Env) -> None:
    """A patch off the skin still sends a rate (pinned to its lowest, 20/min): with the
    contact bits saying "not detected" that number is not the resident's pulse. Scored,
    it made a healthy resident P1 (pulse ≤ 40 scores 3) on a quiet night."""
    from console.ingest import SerialSource
    from protocols.codecs import get_codec

    codec = get_codec("sbf1")
    records = [
        {"kind": "heart_rate", "seq": seq, "values": {"heart_rate_bpm": bpm}, "sensor_contact": c}
        for seq, bpm, c in ((1, 72, "detected"), (2, 20, "not_detected"))
    ]
    frames = b"".join(codec.encode(r) for r in records)
    source = SerialSource("socket://127.0.0.1:1", "sbf1", SITE, DEVICE, "res-01")
    outcomes = env.ingest.accept_frames(source, codec.decode(frames), T0.timestamp())
    assert [len(o.observations) for o in outcomes] == [1, 0]  # type: ignore[union-attr]
    assert env.store.fetchone("SELECT count(*) FROM ingest_messages")[0] == 2
    assert env.store.fetchall("SELECT value FROM observations") == [(72.0,)]


@pytest.mark.parametrize(
    ("flags", "stored"),
    [
        ((), 2),
        (("low_battery", "low_perfusion", "clock_not_set"), 2),  # about the device: kept
        (("sensor_off",), 0),
        (("artifact",), 0),
        (("searching", "low_battery"), 0),
        (("measurement_error",), 0),
    ],
)
def test_forwarded_vitals_the_device_flags_unreliable_are_kept_but_never_scored(
    env: Env, flags: tuple[str, ...], stored: int
) -> None:
    """The gateway forwards the device's flags with its values; the hub reads them as it
    reads a serial frame's: the message is stored, flagged values never become data."""
    from protocols import DeviceStatus

    vitals = env.vitals()
    assert isinstance(vitals.body, VitalsBody)
    body = vitals.body.model_copy(
        update={"device_status": DeviceStatus(battery_pct=80, flags=flags)}
    )
    (outcome,) = env.send(env.signed(vitals.model_copy(update={"body": body})))
    assert isinstance(outcome, Accepted) and len(outcome.observations) == stored
    assert env.store.fetchone("SELECT count(*) FROM observations")[0] == stored
    assert env.store.fetchone("SELECT count(*) FROM ingest_messages")[0] == 1
    assert env.store.fetchone("SELECT battery_pct FROM devices")[0] == 80
