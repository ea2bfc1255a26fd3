"""SQLite migrations for identities, keys and signed records, applied by the records store.

``MIGRATIONS`` is an ordered list of ``(name, sql_script)``; names never change once shipped.

Nothing here holds an identity in clear: every trait, the INS, the date of death,
rectification history values and signed payloads are AES-256-GCM ciphertexts (see
``_crypto``). What stays in clear is what the system must compute on without the
master key or what is not identifying: ids, the EHPAD site, status flags, the date of
last contact (retention), timestamps, and user ids of professionals.

* ``identity_keyring`` — one row: the id of the master key the database was made with.
* ``patients`` — the patient record's clear metadata: status
  (``unqualified``/``qualified``/``shredded``), site, last contact, opposition flag.
* ``patient_keys`` — each patient's data key wrapped by the master key; deleting the
  row is crypto-shredding.
* ``patient_identities`` — the five traits + INS (+ date of death), each sealed.
* ``identity_blind_index`` — HMAC tokens of normalised names for search.
* ``identity_history`` — rectifications: field, old and new values (sealed), who, when.
* ``signed_records`` — decisions, bilans, comptes rendus: sealed payload + signature.
* ``retention_holds`` — legal holds suspending retention.
"""

from __future__ import annotations


def _append_only(table: str) -> dict[str, str]:
    return {
        f"{table}_no_update": (
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        ),
        f"{table}_no_delete": (
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        ),
    }


#: Checked at start-up by the store (name -> exact CREATE TRIGGER text). Rectification
#: history and signed records are append-only: history that can be rewritten is not
#: history, and a signed record is corrected by a new signed record, never edited.
#: Crypto-shredding needs neither UPDATE nor DELETE on them (it deletes the key).
PROTECTIVE_TRIGGERS: dict[str, str] = {
    **_append_only("identity_history"),
    **_append_only("signed_records"),
}

MIGRATIONS: list[tuple[str, str]] = [
    (
        "identity_0001_patients",
        """
CREATE TABLE identity_keyring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    master_key_id TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE patients (
    patient_id TEXT PRIMARY KEY NOT NULL,
    site TEXT,
    status TEXT NOT NULL DEFAULT 'unqualified'
        CHECK (status IN ('unqualified', 'qualified', 'shredded')),
    created_at TEXT NOT NULL,
    last_contact TEXT NOT NULL,
    deceased INTEGER NOT NULL DEFAULT 0 CHECK (deceased IN (0, 1)),
    opposition INTEGER NOT NULL DEFAULT 0 CHECK (opposition IN (0, 1)),
    opposition_at TEXT,
    shredded_at TEXT
) STRICT;
CREATE INDEX patients_site ON patients(site);

CREATE TABLE patient_keys (
    patient_id TEXT PRIMARY KEY NOT NULL REFERENCES patients(patient_id),
    key_version INTEGER NOT NULL CHECK (key_version >= 1),
    wrapped_key BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE patient_identities (
    patient_id TEXT PRIMARY KEY NOT NULL REFERENCES patients(patient_id),
    birth_name BLOB NOT NULL,
    first_names BLOB NOT NULL,
    birth_date BLOB NOT NULL,
    sex BLOB NOT NULL,
    birthplace_code BLOB NOT NULL,
    ins BLOB,
    death_date BLOB,
    qualified_at TEXT,
    qualified_by TEXT,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE identity_blind_index (
    patient_id TEXT NOT NULL REFERENCES patients(patient_id),
    kind TEXT NOT NULL CHECK (kind IN ('birth_name', 'first_name')),
    token BLOB NOT NULL,
    PRIMARY KEY (patient_id, kind, token)
) STRICT;
CREATE INDEX identity_blind_index_token ON identity_blind_index(kind, token);

CREATE TABLE identity_history (
    change_id TEXT PRIMARY KEY NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(patient_id),
    field TEXT NOT NULL,
    old_value BLOB,
    new_value BLOB,
    reason BLOB NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL
) STRICT;
CREATE INDEX identity_history_patient ON identity_history(patient_id);

CREATE TABLE signed_records (
    record_id TEXT PRIMARY KEY NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(patient_id),
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'bilan', 'compte_rendu')),
    author TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    content BLOB NOT NULL,
    signature BLOB NOT NULL CHECK (length(signature) = 64)
) STRICT;
CREATE INDEX signed_records_patient ON signed_records(patient_id);

CREATE TABLE retention_holds (
    hold_id TEXT PRIMARY KEY NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(patient_id),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    placed_at TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    released_at TEXT,
    released_by TEXT
) STRICT;
CREATE INDEX retention_holds_patient ON retention_holds(patient_id);
"""
        + ";\n".join(PROTECTIVE_TRIGGERS.values())
        + ";\n",
    ),
]
