"""The incidents the checkpoint publisher records: broker loss, and a suspected roll-back.

Kept apart from the publishing loop: these are records-store writes (synchronous, in the
store's writer transaction), called from the loop through ``asyncio.to_thread``.

* ``broker-loss`` (technical, high) — the first failed connection of an outage opens one
  incident (object ``mqtt:<host>:<port>``); a later process finding that incident still
  open and not yet marked recovered does not open another; the return is noted on it
  (``reachable again …``); closing it is left to a person.
* ``verify-failure`` (security, critical) — the broker holds a checkpoint of this trail,
  validly signed, that the database does not: the database probably went back in time.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from console.records._audit import AuditContext, local_terminal
from console.records._errors import StoreError
from console.records._incidents import open_incident, update_incident

if TYPE_CHECKING:
    from console.records._checkpoint import Checkpoint
    from console.records._store import Store

log = logging.getLogger("console.records.checkpoint_mqtt")

#: The note that marks a ``broker-loss`` incident's outage as over.
RECOVERED_NOTE = "reachable again"


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def publisher_actor() -> AuditContext:
    """Who the trail shows recording these incidents."""
    return AuditContext(actor="system:audit-checkpoint", role="system", terminal=local_terminal())


def record_outage(
    store: Store, *, broker_object: str, display: str, topic: str, since: str, error: str
) -> int | None:
    """Open (or follow up) the ``broker-loss`` incident of this outage; its id."""
    who = publisher_actor()
    try:
        with store.transaction() as conn:
            row = conn.execute(
                "SELECT i.id, (SELECT n.note FROM incident_notes n WHERE n.incident_id = i.id "
                "ORDER BY n.id DESC LIMIT 1) FROM incidents i WHERE i.category = 'broker-loss' "
                "AND i.object = ? AND i.status <> 'closed' ORDER BY i.id DESC LIMIT 1",
                (broker_object,),
            ).fetchone()
            if row is None:
                return open_incident(
                    store,
                    who,
                    kind="technical",
                    category="broker-loss",
                    severity="high",
                    object=broker_object,
                    title="MQTT broker unreachable: audit checkpoints not published",
                    note=f"{display} unreachable since {since} ({error}); retained topic "
                    f"{topic}. Checkpoints stay in the database and the checkpoint "
                    "directory; the latest is published when it returns.",
                ).id
            incident_id = int(row[0])
            if str(row[1] or "").startswith(RECOVERED_NOTE):
                update_incident(
                    store, who, incident_id, note=f"unreachable again since {since} ({error})"
                )
            return incident_id  # otherwise this outage is already on record
    except (StoreError, sqlite3.Error) as exc:
        log.error("cannot record the broker-loss incident: %s", exc)
        return None


def note_recovery(store: Store, incident_id: int, *, since: str, topic: str) -> None:
    """Note on the ``broker-loss`` incident that the broker is back."""
    try:
        update_incident(
            store,
            publisher_actor(),
            incident_id,
            note=f"{RECOVERED_NOTE} at {now_text()} (down since {since}); the latest audit "
            f"checkpoint is published to {topic}",
        )
    except (StoreError, sqlite3.Error) as exc:
        log.error("cannot note the broker's return on incident %d: %s", incident_id, exc)


def record_refusal(store: Store, retained: Checkpoint, reason: str, topic: str) -> None:
    """Open the ``verify-failure`` incident of a suspected roll-back (once per checkpoint)."""
    obj = f"audit-checkpoint:{retained.tree_size}"
    try:
        with store.transaction() as conn:
            known = conn.execute(
                "SELECT 1 FROM incidents WHERE category = 'verify-failure' AND object = ? "
                "AND status <> 'closed'",
                (obj,),
            ).fetchone()
            if known is None:
                open_incident(
                    store,
                    publisher_actor(),
                    kind="security",
                    category="verify-failure",
                    severity="critical",
                    object=obj,
                    title="Broker holds an audit checkpoint this database lacks: roll-back?",
                    note=f"{reason}. The retained message on {topic} is left in place and no "
                    "checkpoint is published there. Run `samu audit verify --mqtt URL`; after "
                    "a legitimate restore, `samu audit checkpoint --mqtt URL "
                    "--replace-retained`.",
                )
    except (StoreError, sqlite3.Error) as exc:
        log.error("cannot record the roll-back incident: %s", exc)
