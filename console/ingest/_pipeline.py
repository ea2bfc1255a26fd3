"""One pipeline for every message: size → JSON → MAC → schema → topic → dedup → store.

:meth:`Ingest.accept` takes a batch of received messages (MQTT payloads with their topic,
as the hub's subscriber or the replay engine hands them over) and commits what they hold
in **one** transaction through the store's single writer: the accepted messages (raw
bytes sealed), their observations with provenance, the quarantined items with their
reason, the devices' counters. Only after that commit may the transport acknowledge the
messages (the PUBACK), so an acknowledged message is durable.

Reasons (cases.md): ``too_large``, ``json``, ``schema``, ``mac``, ``unknown_device``,
``topic`` (the topic does not match the envelope's site, device or kind). Duplicates
(same envelope ``id``, or same device and ``seq``) are dropped and counted — the database's
unique constraints decide, so a redelivery after a crash is refused even across restarts.

Clocks: an observation is timed by the device while its clock is within
:data:`CLOCK_TOLERANCE_S` of the arrival time, and by the arrival time beyond that,
flagged ``clock_skew``; a wrong clock never makes good data disappear.
"""

from __future__ import annotations

import base64
import functools
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from console.crypto import MasterKeyRing
from console.records import AuditEvent, Store
from protocols import (
    MAX_ENVELOPE_BYTES,
    BilanBody,
    DeathBody,
    EnvelopeError,
    ImplantBody,
    KeyRing,
    StatusBody,
    VitalsBody,
    decode_envelope_json,
    verify_envelope,
)
from protocols.models import Envelope, VideoBody
from protocols.topics import BilanTopic, DeviceTopic, TopicError, VideoTopic, parse_topic

#: Device clock tolerance before arrival time is used instead (cases.md: 5 minutes).
CLOCK_TOLERANCE_S = 300.0

#: protocols' envelope reasons → the quarantine reasons of cases.md.
_REASONS = {
    "oversize": "too_large",
    "json": "json",
    "schema": "schema",
    "mac": "mac",
    "unknown-sender": "unknown_device",
}
QUARANTINE_REASONS = ("too_large", "json", "schema", "mac", "unknown_device", "topic")
_RAW_CONTEXT = "ingest\x00raw"
#: Frame flags that make a reading unreliable (the device says so): the frame is kept
#: for provenance, its values never reach triage. A probe moving or off, a search for
#: the pulse, interference: scoring those would open cases for healthy residents.
UNRELIABLE_FLAGS = frozenset(
    {
        # nonin-df8 status
        "sensor_disconnected", "out_of_track", "artifact", "sensor_alarm",
        # contec-cms50d status
        "finger_out", "probe_error", "searching",
        # masimo-ascii1 exceptions
        "no_sensor", "defective_sensor", "pulse_search", "interference", "sensor_off",
        "ambient_light", "low_signal_iq",
        # sbf1 PLX measurement and device status
        "measurement_unavailable", "questionable_measurement", "invalid_measurement",
        "equipment_malfunction", "inadequate_signal", "poor_signal", "erratic_signal",
        "nonpulsatile_signal", "sensor_interference", "sensor_unconnected_to_user",
        "sensor_displaced", "sensor_malfunctioning",
    }
)  # fmt: skip


#: The envelope's device flags (protocols' DEVICE_FLAGS) with the same meaning, for
#: vitals a gateway forwards: a probe off, a faulty sensor, a failed measurement, an
#: artefact, a search for the pulse or interference. Low perfusion, battery and clock
#: flags describe the device, not the value, and keep it.
UNRELIABLE_DEVICE_FLAGS = frozenset(
    {"sensor_off", "sensor_fault", "no_sensor", "measurement_error", "artifact",
     "searching", "interference"}
)  # fmt: skip


def unreliable(extra: dict[str, object]) -> list[str]:
    """The flags of a decoded frame that make its values unreliable.

    A heart-rate frame whose sensor contact is "not detected" counts too: the patch is
    off the skin, and whatever number it still sends (pinned to its range, often its
    lowest rate) is not the resident's pulse.
    """
    found: list[str] = []
    for key in ("status", "exceptions", "measurement_status", "device_status"):
        names = extra.get(key)
        if isinstance(names, list | tuple):
            found += [n for n in names if isinstance(n, str) and n in UNRELIABLE_FLAGS]
    if extra.get("sensor_contact") == "not_detected":
        found.append("sensor_contact_not_detected")
    return found


def unreliable_vitals(body: VitalsBody) -> list[str]:
    """The device flags of a forwarded vitals message that make its values unreliable."""
    status = body.device_status
    if status is None:
        return []
    return [f for f in status.flags if f in UNRELIABLE_DEVICE_FLAGS]


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as received: where from, its bytes, when (epoch s; virtual in replay)."""

    source: str
    payload: bytes
    received_ts: float


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """An observation as stored (what triage reads)."""

    obs_id: int
    code: str
    value: float | None
    coded: str | None
    observed_ts: float
    clock_skew: bool
    method: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message (or serial frame) stored once; ``resident`` is the site-local
    reference it concerns. A serial frame has no envelope (``envelope`` is None)."""

    msg_id: int
    envelope: Envelope | None
    source: str
    received_ts: float
    resident: str | None
    observations: tuple[StoredObservation, ...] = ()
    frame_site: str | None = None
    frame_device: str | None = None
    frame_kind: str | None = None

    @property
    def site(self) -> str:
        return self.envelope.site if self.envelope is not None else str(self.frame_site)

    @property
    def device(self) -> str:
        return self.envelope.device if self.envelope is not None else str(self.frame_device)

    @property
    def kind(self) -> str:
        return self.envelope.kind if self.envelope is not None else f"frame:{self.frame_kind}"

    @property
    def body(self) -> object:
        return self.envelope.body if self.envelope is not None else None


@dataclass(frozen=True, slots=True)
class SerialSource:
    """A bedside device the hub reads itself: where, which format, who it is."""

    url: str
    format: str
    site: str
    device: str
    patient: str | None = None

    @property
    def source(self) -> str:
        return f"serial:{self.url}"


@dataclass(frozen=True, slots=True)
class Quarantined:
    q_id: int
    reason: str
    detail: str
    source: str
    site: str | None
    device: str | None
    received_ts: float


@dataclass(frozen=True, slots=True)
class Duplicate:
    site: str
    device: str
    envelope_id: str
    source: str


Outcome = Accepted | Quarantined | Duplicate


@dataclass
class IngestStats:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    observations: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def iso(ts: float) -> str:
    """Epoch seconds → ISO 8601 with offset (UTC), millisecond precision."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class _Checked:
    item: Incoming
    envelope: Envelope | None = None
    reason: str | None = None
    detail: str = ""
    site: str | None = None
    device: str | None = None


def _claimed(payload: bytes) -> tuple[str | None, str | None]:
    """The site/device a refused message claims, when it parses (for the counters)."""
    try:
        data = decode_envelope_json(payload)
    except EnvelopeError:
        return None, None
    site, device = data.get("site"), data.get("device")
    ok = isinstance(site, str) and isinstance(device, str) and len(site) + len(device) < 130
    return (site, device) if ok else (None, None)


@functools.lru_cache(maxsize=8192)
def _parse_topic(topic: str) -> object:
    """:func:`parse_topic`, remembered: a fleet publishes on the same few thousand
    topics all day (the parsed topics are frozen; a refused one is not remembered)."""
    return parse_topic(topic)


def _topic_mismatch(topic: str, env: Envelope) -> str | None:
    try:
        parsed = _parse_topic(topic)
    except TopicError as exc:
        return str(exc)
    match parsed:
        case DeviceTopic(site=site, device=device, channel=channel):
            if (site, device) != (env.site, env.device):
                return f"topic names {site}/{device}, the envelope {env.site}/{env.device}"
            if channel != env.kind:
                return f"a {env.kind} envelope on the {channel} topic"
        case BilanTopic(site=site):
            if site != env.site or env.kind != "bilan":
                return f"a {env.kind} envelope of {env.site} on the bilan topic of {site}"
        case VideoTopic(session=session):
            if not isinstance(env.body, VideoBody) or env.body.session != session:
                return f"a {env.kind} envelope on the video topic of session {session}"
        case _:
            return f"{topic[:200]!r} is not a topic devices publish on"
    return None


class Ingest:
    """Verifies and stores received messages (see the module docstring).

    Args:
        store: the records store (its single writer commits every batch).
        keyring: enrolled device keys (``DeviceRegistry.keyring()``); replace it with
            :meth:`set_keyring` after an enrolment.
        master_key: seals the raw bytes kept for provenance and quarantine.
        patients: (site, device) → the resident a device is bound to, for readings
            that do not name one.
    """

    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        master_key: bytes,
        *,
        patients: dict[tuple[str, str], str | None] | None = None,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._ring = MasterKeyRing(master_key)
        self._patients = dict(patients or {})
        self.stats = IngestStats()

    def set_keyring(
        self, keyring: KeyRing, patients: dict[tuple[str, str], str | None] | None = None
    ) -> None:
        self._keyring = keyring
        if patients is not None:
            self._patients = dict(patients)

    @property
    def bindings(self) -> dict[tuple[str, str], str | None]:
        """(site, device) → the resident it is bound to."""
        return self._patients

    def seal_raw(self, raw: bytes) -> bytes:
        return self._ring.seal_secret(_RAW_CONTEXT, raw)

    def open_raw(self, sealed: bytes) -> bytes:
        return self._ring.open_secret(_RAW_CONTEXT, sealed)

    # ------------------------------------------------------------------ checks

    def _check(self, item: Incoming) -> _Checked:
        payload = item.payload
        if len(payload) > MAX_ENVELOPE_BYTES:
            return _Checked(
                item,
                reason="too_large",
                detail=f"{len(payload)} bytes (at most {MAX_ENVELOPE_BYTES})",
            )
        try:
            env = verify_envelope(decode_envelope_json(payload), self._keyring)
        except EnvelopeError as exc:
            site, device = _claimed(payload)
            reason = _REASONS.get(exc.reason, exc.reason)
            return _Checked(item, reason=reason, detail=exc.detail, site=site, device=device)
        except RecursionError:
            return _Checked(item, reason="json", detail="nested too deeply")
        mismatch = _topic_mismatch(item.source, env)
        if mismatch is not None:
            return _Checked(item, reason="topic", detail=mismatch, site=env.site, device=env.device)
        return _Checked(item, envelope=env, site=env.site, device=env.device)

    # ------------------------------------------------------------------ the batch

    def accept(self, items: Sequence[Incoming]) -> list[Outcome]:
        """Verify and commit a batch; returns one outcome per item, in order.

        Verification runs before the transaction (CPU only); the writes of the whole
        batch are one transaction. Raises only what the store raises (the batch is then
        not committed and must not be acknowledged).

        Each message row is inserted on its own (its unique constraints decide whether
        it is a duplicate); the observations of the whole batch are then one
        ``executemany`` and the devices' counters one ``UPDATE`` per device, not per
        message. The rows and their ids are what per-message writes in the same order
        gave (observation ids are consecutive: one writer inside one transaction), and
        the counters end the same: frames counted, the last message's arrival time and
        state, the last battery level reported.
        """
        checked = [self._check(item) for item in items]
        outcomes: list[Outcome] = []
        texts: dict[float, str] = {}

        def text_of(ts: float) -> str:
            got = texts.get(ts)
            if got is None:
                got = texts[ts] = iso(ts)
            return got

        obs_rows: list[tuple[object, ...]] = []
        # (outcome slot, message row, checked item, resident, kept observations)
        stored: list[tuple[int, int, _Checked, str | None, list[_Kept]]] = []
        # (site, device) -> [messages, last seen, state, battery (last reported)]
        counters: dict[tuple[str, str], tuple[int, str, str, int | None]] = {}
        with self._store.transaction() as conn:
            seen_ids: set[str] = set()
            for c in checked:
                if c.envelope is None:
                    outcomes.append(self._quarantine(conn, c))
                    continue
                env = c.envelope
                if env.id in seen_ids:
                    outcomes.append(self._duplicate(conn, c))
                    continue
                seen_ids.add(env.id)
                received_text = text_of(c.item.received_ts)
                cur = conn.execute(
                    "INSERT OR IGNORE INTO ingest_messages (envelope_id, site, device, seq, kind,"
                    " source, received_at, sent_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        env.id,
                        env.site,
                        env.device,
                        env.seq,
                        env.kind,
                        c.item.source,
                        received_text,
                        env.sent.isoformat(),
                        self.seal_raw(c.item.payload),
                    ),
                )
                if cur.rowcount == 0:
                    outcomes.append(self._duplicate(conn, c))
                    continue
                msg_id = int(cur.lastrowid or 0)
                resident, kept, battery, state = self._body(msg_id, c, obs_rows)
                key = (env.site, env.device)
                n, _, _, last_battery = counters.get(key, (0, "", "", None))
                counters[key] = (
                    n + 1,
                    received_text,
                    state,
                    battery if battery is not None else last_battery,
                )
                stored.append((len(outcomes), msg_id, c, resident, kept))
                outcomes.append(None)  # type: ignore[arg-type]  # filled in below
            if obs_rows:
                conn.executemany(
                    "INSERT INTO observations (msg_id, site, resident, device, code, value, coded,"
                    " unit, method, measured_at, observed_ts, clock_skew)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    obs_rows,
                )
                # One writer inside one transaction: the rows just inserted took
                # consecutive ids ending at the last one (INTEGER PRIMARY KEY: max + 1).
                obs_id = _last_rowid(conn) - len(obs_rows) + 1
            else:
                obs_id = 0
            for slot, msg_id, c, resident, kept in stored:
                observations = tuple(
                    StoredObservation(obs_id + k, code, value, coded, when, skew, method)
                    for k, (code, value, coded, when, skew, method) in enumerate(kept)
                )
                obs_id += len(kept)
                self.stats.accepted += 1
                self.stats.observations += len(observations)
                outcomes[slot] = Accepted(
                    msg_id, c.envelope, c.item.source, c.item.received_ts, resident, observations
                )
            if counters:
                conn.executemany(
                    "UPDATE devices SET frames = frames + ?, last_seen = ?, state = ?,"
                    " battery_pct = coalesce(?, battery_pct) WHERE site = ? AND device = ?",
                    [(*count, *key) for key, count in counters.items()],
                )
            self._audit_batch(conn, outcomes)
        return outcomes

    def _audit_batch(self, conn: sqlite3.Connection, outcomes: Sequence[Outcome]) -> None:
        """One audit event per committed batch: what ingest wrote, in the same commit."""
        accepted = sum(1 for o in outcomes if isinstance(o, Accepted))
        quarantined = sum(1 for o in outcomes if isinstance(o, Quarantined))
        self._store.append_audit(
            AuditEvent(
                actor="system:ingest",
                role="system",
                terminal="hub",
                action="ingest.batch",
                object="ingest",
                purpose="normal",
                outcome="success",
                detail={
                    "accepted": accepted,
                    "duplicates": len(outcomes) - accepted - quarantined,
                    "quarantined": quarantined,
                },
            ),
            conn=conn,
        )

    # ------------------------------------------------------------------ serial frames

    def accept_frames(
        self, port: SerialSource, items: Sequence[object], received_ts: float
    ) -> list[Outcome]:
        """Store what a serial reader decoded (``protocols.codecs`` items) in one commit.

        A decoded frame becomes a message row (no envelope: the serial line is the
        trusted path of a device wired to the hub) and its observations; a bad frame is
        quarantined with the codec's reason (``crc``, ``sync``, ``truncated``…) and its
        bytes, and counts as a device error.
        """
        return self.accept_lines([(port, items)], received_ts)[0]

    def accept_lines(
        self, lines: Sequence[tuple[SerialSource, Sequence[object]]], received_ts: float
    ) -> list[list[Outcome]]:
        """What several serial lines decoded, received at one time, in **one** commit.

        Each line's items are stored exactly as :meth:`accept_frames` stores them (a
        message row per frame, its observations, quarantine for bad frames, the
        device's counters), and the batch has its one ``ingest.batch`` audit event in
        the same commit. A host that drains every line it reads at once (the replay
        engine's step, a hub polling many ports) thus pays one durable commit for all of
        them instead of one per line: with ``synchronous=FULL`` each commit is a WAL
        sync, which is what bounded 1 000 bedside devices at 1 Hz. Rows are written in
        the order given (lines, then each line's frames), so ids and the stored order
        are what per-line commits in that order would give.

        Returns one outcome list per line, in order.
        """
        from protocols.codecs import Decoded, DecodeError
        from protocols.vocab import VALUE_KEYS

        when_text = iso(received_ts)
        seal = self.seal_raw
        per_line: list[list[Outcome]] = []
        with self._store.transaction() as conn:
            # Pass 1: quarantine bad frames (rare, row by row) and collect the message
            # rows of good ones, to insert with one executemany.
            messages: list[tuple[object, ...]] = []
            frames: list[tuple[int, int, SerialSource, Decoded]] = []
            for k, (port, items) in enumerate(lines):
                outcomes: list[Outcome] = []
                errors = 0
                for item in items:
                    if isinstance(item, DecodeError):
                        q = self._quarantine(
                            conn,
                            _Checked(
                                Incoming(port.source, bytes(item.raw), received_ts),
                                reason=item.reason,
                                detail=item.detail
                                or f"bad {port.format} frame at byte {item.offset}",
                                site=port.site,
                                device=port.device,
                            ),
                        )
                        errors += 1
                        outcomes.append(q)
                        continue
                    if not isinstance(item, Decoded):
                        continue
                    messages.append(
                        (
                            port.site,
                            port.device,
                            f"frame:{item.kind}",
                            port.source,
                            when_text,
                            seal(bytes(item.raw)),
                        )
                    )
                    frames.append((k, len(outcomes), port, item))
                    outcomes.append(None)  # type: ignore[arg-type]  # filled in pass 2
                if errors:
                    conn.execute(
                        "UPDATE devices SET errors = errors + ? WHERE site = ? AND device = ?",
                        (errors, port.site, port.device),
                    )
                per_line.append(outcomes)
            if messages:
                conn.executemany(
                    "INSERT INTO ingest_messages (envelope_id, site, device, seq, kind, source,"
                    " received_at, sent_at, raw) VALUES (NULL, ?, ?, NULL, ?, ?, ?, NULL, ?)",
                    messages,
                )
            # One writer inside one transaction: the rows just inserted took consecutive
            # ids ending at the last one (INTEGER PRIMARY KEY allocates max + 1).
            msg_id = _last_rowid(conn) - len(messages) + 1
            # Pass 2: observations (one executemany), then outcomes with their ids.
            rows: list[tuple[object, ...]] = []
            kept: list[tuple[int, list[tuple[str, float, float, bool]]]] = []
            battery: dict[tuple[str, str], int | None] = {}
            for _, _, port, item in frames:
                device_ts = float(item.device_time) if item.device_time else None
                skew = device_ts is None or abs(device_ts - received_ts) > CLOCK_TOLERANCE_S
                when = received_ts if skew or device_ts is None else device_ts
                flagged = bool(skew and device_ts is not None)
                measured = iso(when) if when != received_ts else when_text
                obs: list[tuple[str, float, float, bool]] = []
                values = {} if unreliable(item.extra) else item.values
                for key, value in values.items():
                    info = VALUE_KEYS.get(key)
                    if info is None or info.loinc is None or not isinstance(value, int | float):
                        continue
                    rows.append(
                        (msg_id, port.site, port.patient, port.device, info.loinc,
                         float(value), info.unit, measured, when, int(flagged))
                    )  # fmt: skip
                    obs.append((info.loinc, float(value), when, flagged))
                kept.append((msg_id, obs))
                msg_id += 1
                level = item.values.get("battery_pct")
                key2 = (port.site, port.device)
                if isinstance(level, int | float):
                    battery[key2] = int(level)
                else:
                    battery.setdefault(key2, None)
            if rows:
                conn.executemany(
                    "INSERT INTO observations (msg_id, site, resident, device, code, value,"
                    " coded, unit, method, measured_at, observed_ts, clock_skew)"
                    " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 'device', ?, ?, ?)",
                    rows,
                )
            obs_id = _last_rowid(conn) - len(rows) + 1
            counts: dict[tuple[str, str], int] = {}
            for (k, slot, port, item), (mid, obs) in zip(frames, kept, strict=True):
                stored = []
                for code, value, when, flagged in obs:
                    stored.append(
                        StoredObservation(obs_id, code, value, None, when, flagged, "device")
                    )
                    obs_id += 1
                self.stats.accepted += 1
                self.stats.observations += len(stored)
                key2 = (port.site, port.device)
                counts[key2] = counts.get(key2, 0) + 1
                per_line[k][slot] = Accepted(
                    mid,
                    None,
                    port.source,
                    received_ts,
                    port.patient,
                    tuple(stored),
                    frame_site=port.site,
                    frame_device=port.device,
                    frame_kind=item.kind,
                )
            # The devices' counters: one UPDATE per device, not per frame. Same end
            # state: frames counted, seen now, online, the last battery level reported.
            if counts:
                conn.executemany(
                    "UPDATE devices SET frames = frames + ?, last_seen = ?, state = 'online',"
                    " battery_pct = coalesce(?, battery_pct) WHERE site = ? AND device = ?",
                    [(n, when_text, battery[sd], *sd) for sd, n in counts.items()],
                )
            self._audit_batch(conn, [o for outcomes in per_line for o in outcomes])
        return per_line

    def _quarantine(self, conn: sqlite3.Connection, c: _Checked) -> Quarantined:
        assert c.reason is not None
        cur = conn.execute(
            "INSERT INTO quarantine (received_at, source, site, device, reason, detail, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                iso(c.item.received_ts),
                c.item.source[:512],
                c.site,
                c.device,
                c.reason,
                c.detail[:1000],
                self.seal_raw(c.item.payload[: MAX_ENVELOPE_BYTES + 1]),
            ),
        )
        if c.site is not None and c.device is not None:
            conn.execute(
                "UPDATE devices SET quarantined = quarantined + 1 WHERE site = ? AND device = ?",
                (c.site, c.device),
            )
        self.stats.quarantined += 1
        self.stats.by_reason[c.reason] = self.stats.by_reason.get(c.reason, 0) + 1
        return Quarantined(
            int(cur.lastrowid or 0),
            c.reason,
            c.detail,
            c.item.source,
            c.site,
            c.device,
            c.item.received_ts,
        )

    def _duplicate(self, conn: sqlite3.Connection, c: _Checked) -> Duplicate:
        env = c.envelope
        assert env is not None
        conn.execute(
            "UPDATE devices SET duplicates = duplicates + 1 WHERE site = ? AND device = ?",
            (env.site, env.device),
        )
        self.stats.duplicates += 1
        return Duplicate(env.site, env.device, env.id, c.item.source)

    def _body(
        self, msg_id: int, c: _Checked, obs_rows: list[tuple[object, ...]]
    ) -> tuple[str | None, list[_Kept], int | None, str]:
        """What an accepted envelope's body holds: its resident, its observation rows
        (appended to ``obs_rows``, kept for the outcome), the battery level and the
        device state it reports."""
        env = c.envelope
        assert env is not None
        body = env.body
        received = c.item.received_ts
        resident: str | None = None
        kept: list[_Kept] = []
        battery: int | None = None
        state = "online"
        if isinstance(body, VitalsBody):
            resident = body.patient or self._patients.get((env.site, env.device))
            # Like a serial frame's: the message is kept for provenance, but values the
            # device itself flags as unreliable never become observations.
            if not unreliable_vitals(body):
                kept = _observations(
                    obs_rows, msg_id=msg_id, env=env, resident=resident, body=body,
                    received=received,
                )  # fmt: skip
            if body.device_status is not None:
                battery = body.device_status.battery_pct
        elif isinstance(body, BilanBody):
            resident = body.resident.resident
            kept = _observations(
                obs_rows, msg_id=msg_id, env=env, resident=resident, body=body, received=received
            )
        elif isinstance(body, ImplantBody):
            resident = body.patient or self._patients.get((env.site, env.device))
        elif isinstance(body, StatusBody):
            battery = body.battery_pct
            if body.state == "disconnected":
                state = "offline"
        elif isinstance(body, DeathBody):
            state = "offline"
        return resident, kept, battery, state


#: An observation as kept for its outcome: (code, value, coded, observed at, skew, method).
_Kept = tuple[str, float | None, str | None, float, bool, str]


def _observations(
    rows: list[tuple[object, ...]],
    *,
    msg_id: int,
    env: Envelope,
    resident: str | None,
    body: VitalsBody | BilanBody,
    received: float,
) -> list[_Kept]:
    """The observation rows of one message, appended to ``rows``; what each became."""
    kept: list[_Kept] = []
    # A message's observations usually share one time: format it once. Keyed with the
    # offset too: equal instants in two offsets are equal datetimes, not equal texts.
    texts: dict[tuple[datetime, object], str] = {}
    for o in body.observations:
        measured = o.time.timestamp()
        skew = not math.isfinite(measured) or abs(measured - received) > CLOCK_TOLERANCE_S
        when = received if skew else measured
        value = None if isinstance(o.value, str) else float(o.value)
        coded = o.value if isinstance(o.value, str) else None
        key = (o.time, o.time.utcoffset())
        measured_at = texts.get(key)
        if measured_at is None:
            measured_at = texts[key] = o.time.isoformat()
        rows.append(
            (msg_id, env.site, resident, env.device, o.code, value, coded, o.unit, o.method,
             measured_at, when, int(skew))
        )  # fmt: skip
        kept.append((o.code, value, coded, when, skew, o.method))
    return kept


def _last_rowid(conn: sqlite3.Connection) -> int:
    (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
    return int(last)


def raw_opener(master_key: bytes) -> Callable[[bytes], bytes]:
    """Opens the sealed raw bytes kept with messages and quarantined items (provenance)."""
    ring = MasterKeyRing(master_key)
    return lambda sealed: ring.open_secret(_RAW_CONTEXT, sealed)


def quarantine_rows(store: Store, master_key: bytes) -> list[dict[str, object]]:
    """Every quarantined item, oldest first, raw bytes opened (``samu records quarantine``)."""
    ring = MasterKeyRing(master_key)
    out: list[dict[str, object]] = []
    for r in store.fetchall(
        "SELECT received_at, source, site, device, reason, detail, raw FROM quarantine"
        " ORDER BY q_id"
    ):
        raw = ring.open_secret(_RAW_CONTEXT, bytes(r[6]))
        out.append(
            {
                "received_at": r[0],
                "source": r[1],
                "site": r[2],
                "device": r[3],
                "reason": r[4],
                "detail": r[5],
                "raw": base64.b64encode(raw).decode("ascii"),
            }
        )
    return out
