"""SQLite migrations for devices, received messages, observations and quarantine.

Applied by the records store like every other set (``console.records.MIGRATION_SETS``).

* ``devices`` — one row per enrolled sender (site, device): kind, the resident it is bound
  to, its HMAC key sealed under the master key (never in clear), and live counters the
  hub keeps (state, last seen, battery, frames, duplicates, errors, quarantined).
* ``ingest_messages`` — every accepted message or serial frame, exactly once: the
  envelope id (unique) and the (site, device, seq) triple (unique) are how duplicates
  are refused by the database itself, not only by the code. The raw bytes are kept,
  sealed (a bilan carries a resident's identity), for provenance.
* ``observations`` — one row per value, with the message it came from (provenance), the
  resident, the device or manual method, the time used for triage and a ``clock_skew``
  flag when the device clock could not be trusted.
* ``quarantine`` — what was refused: reason, source (topic or port), arrival time, sender
  when known, and the raw bytes (sealed). Never shown as data.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0201_ingest",
        """
        CREATE TABLE devices (
            site TEXT NOT NULL,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            patient TEXT,
            key_version INTEGER NOT NULL,
            sealed_key BLOB NOT NULL,
            enrolled_at TEXT NOT NULL,
            enrolled_by TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'never_seen'
                CHECK (state IN ('online', 'offline', 'never_seen')),
            last_seen TEXT,
            battery_pct INTEGER,
            frames INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            quarantined INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (site, device)
        ) STRICT;

        CREATE TABLE ingest_messages (
            msg_id INTEGER PRIMARY KEY,
            envelope_id TEXT UNIQUE,
            site TEXT NOT NULL,
            device TEXT NOT NULL,
            seq INTEGER,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            received_at TEXT NOT NULL,
            sent_at TEXT,
            raw BLOB NOT NULL,
            UNIQUE (site, device, seq)
        ) STRICT;

        CREATE TABLE observations (
            obs_id INTEGER PRIMARY KEY,
            msg_id INTEGER NOT NULL REFERENCES ingest_messages (msg_id),
            site TEXT NOT NULL,
            resident TEXT,
            device TEXT NOT NULL,
            code TEXT NOT NULL,
            value REAL,
            coded TEXT,
            unit TEXT,
            method TEXT NOT NULL,
            measured_at TEXT NOT NULL,
            observed_ts REAL NOT NULL,
            clock_skew INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX observations_resident ON observations (site, resident, observed_ts);
        CREATE INDEX observations_msg ON observations (msg_id);

        CREATE TABLE quarantine (
            q_id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            source TEXT NOT NULL,
            site TEXT,
            device TEXT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            raw BLOB NOT NULL
        ) STRICT;
        CREATE INDEX quarantine_sender ON quarantine (site, device);
        """,
    ),
]

PROTECTIVE_TRIGGERS: dict[str, str] = {}
