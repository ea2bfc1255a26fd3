"""SQLite migrations for residents, cases, their timeline, triage results and decisions.

* ``residents`` — a monitored resident, by (site, the site's pseudonymous reference):
  ``resident_id`` is ``<site>/<ref>``; ``spo2_scale`` 2 only when set for the resident;
  the latest bilan flags and implant conditions (what triage keeps between ticks and a
  restart must not forget).
* ``cases`` — Hub Santé case (``fr.health.<centre>.<DRFR15…>``), status, the latest
  triage suggestion with its reasons, what sources contributed, the decided priority.
* ``case_residents`` — the patients of a case.
* ``case_timeline`` — what happened, in order (append-only: a timeline is evidence).
* ``triage_results`` — a suggestion the console showed, with the policy version and
  SHA-256 and the observations it used (provenance: a decision names the result it saw).
* ``case_counters`` — the dossier counter per day (``DRFR15`` + centre + year + day + n).
* ``video_events`` — the video link's events (the gateway's, and the operator's consent
  entries): who consented, their relation, how; never anything of the stream itself.
* ``comptes_rendus`` — signed comptes rendus (append-only, sealed).
* ``decisions`` — signed régulation decisions (append-only; codes in clear, the signed
  content with its reason sealed).
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


PROTECTIVE_TRIGGERS: dict[str, str] = {
    **_append_only("case_timeline"),
    **_append_only("triage_results"),
    **_append_only("decisions"),
    **_append_only("comptes_rendus"),
}
_FIRST = ("case_timeline", "triage_results")

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0301_cases",
        """
        CREATE TABLE residents (
            resident_id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            ref TEXT NOT NULL,
            spo2_scale INTEGER NOT NULL DEFAULT 1 CHECK (spo2_scale IN (1, 2)),
            first_seen TEXT NOT NULL,
            bilan_flags INTEGER NOT NULL DEFAULT 0,
            bilan_at REAL,
            implant_bits INTEGER NOT NULL DEFAULT 0,
            implant_alerts TEXT NOT NULL DEFAULT '[]',
            implant_at REAL,
            UNIQUE (site, ref)
        ) STRICT;

        CREATE TABLE case_counters (
            day TEXT PRIMARY KEY,
            last INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE cases (
            case_id TEXT PRIMARY KEY,
            centre TEXT NOT NULL,
            site TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('PROGRAM', 'ACTIF', 'ACHEVE', 'VALIDE', 'CLOTURE')),
            opened_at TEXT NOT NULL,
            opened_ts REAL NOT NULL,
            updated_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            sources TEXT NOT NULL DEFAULT '[]',
            suggested_priority TEXT NOT NULL DEFAULT 'NR',
            decided_priority TEXT,
            news2 INTEGER,
            news2_complete INTEGER NOT NULL DEFAULT 0,
            qsofa INTEGER,
            reasons TEXT NOT NULL DEFAULT '[]',
            implant_alerts TEXT NOT NULL DEFAULT '[]',
            last_result INTEGER
        ) STRICT;
        CREATE INDEX cases_status ON cases (status);

        CREATE TABLE case_residents (
            case_id TEXT NOT NULL REFERENCES cases (case_id),
            resident_id TEXT NOT NULL REFERENCES residents (resident_id),
            PRIMARY KEY (case_id, resident_id)
        ) STRICT;
        CREATE INDEX case_residents_resident ON case_residents (resident_id);

        CREATE TABLE case_timeline (
            event_id INTEGER PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (case_id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL
        ) STRICT;
        CREATE INDEX case_timeline_case ON case_timeline (case_id, event_id);

        CREATE TABLE triage_results (
            result_id INTEGER PRIMARY KEY,
            resident_id TEXT NOT NULL REFERENCES residents (resident_id),
            case_id TEXT,
            at TEXT NOT NULL,
            priority TEXT NOT NULL,
            news2 INTEGER,
            news2_complete INTEGER NOT NULL,
            qsofa INTEGER,
            reasons TEXT NOT NULL,
            policy_version TEXT NOT NULL,
            policy_sha256 TEXT NOT NULL,
            observations TEXT NOT NULL
        ) STRICT;
        CREATE INDEX triage_results_resident ON triage_results (resident_id, result_id);
        """
        + ";\n".join(v for k, v in PROTECTIVE_TRIGGERS.items() if k.startswith(_FIRST)),
    ),
    (
        "0302_decisions",
        """
        CREATE TABLE decisions (
            decision_id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (case_id),
            intention INTEGER NOT NULL,
            author TEXT NOT NULL,
            priority TEXT NOT NULL,
            care_level TEXT NOT NULL,
            decision_type TEXT NOT NULL,
            resource TEXT,
            orientation TEXT,
            suggested_priority TEXT NOT NULL,
            triage_result INTEGER REFERENCES triage_results (result_id),
            overridden INTEGER NOT NULL,
            signed_at TEXT NOT NULL,
            key_id TEXT NOT NULL,
            content BLOB NOT NULL,
            signature BLOB NOT NULL,
            UNIQUE (case_id, intention)
        ) STRICT;
        """
        + ";\n".join(v for k, v in PROTECTIVE_TRIGGERS.items() if k.startswith("decisions")),
    ),
    (
        "0303_comptes_rendus",
        """
        CREATE TABLE comptes_rendus (
            report_id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (case_id),
            author TEXT NOT NULL,
            signed_at TEXT NOT NULL,
            key_id TEXT NOT NULL,
            content BLOB NOT NULL,
            signature BLOB NOT NULL
        ) STRICT;
        """
        + ";\n".join(v for k, v in PROTECTIVE_TRIGGERS.items() if k.startswith("comptes_rendus")),
    ),
    (
        "0304_video",
        """
        CREATE TABLE video_events (
            event_id INTEGER PRIMARY KEY,
            session TEXT NOT NULL,
            case_ref TEXT NOT NULL,
            msg_id INTEGER NOT NULL,
            event TEXT NOT NULL,
            at TEXT NOT NULL,
            consent_by TEXT,
            relation TEXT,
            how TEXT,
            loss_pct REAL,
            recorded_by TEXT NOT NULL
        ) STRICT;
        CREATE INDEX video_events_session ON video_events (session, event_id);
        CREATE INDEX video_events_case ON video_events (case_ref, event_id);
        """,
    ),
]
