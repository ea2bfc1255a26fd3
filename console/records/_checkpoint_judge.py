"""Whether to publish over the broker's retained checkpoint: evidence is never overwritten.

Before its first publication on each connection the publisher reads the retained
checkpoint and asks :func:`judge_retained`:

* none, unreadable, another trail's, or a forgery (no trusted key signs it) → publish;
* one of ours the database holds → publish unless it is newer than ours (skip: never
  move the retained checkpoint backwards);
* one of this trail, validly signed, that the database does **not** hold → the database
  went back in time (a restored older copy). Refuse: leave it in place as the proof,
  unless the operator deliberately supersedes it (``replace_retained``, audited by the
  caller). Without this rule the first checkpoint of a hub restarted on the old copy
  would erase the only trace.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from console.records._checkpoint import Checkpoint, parse_outside_document, verify_signature
from console.records._errors import StoreError

if TYPE_CHECKING:
    from console.records._store import Store

log = logging.getLogger("console.records.checkpoint_mqtt")

Decision = Literal["publish", "skip", "refuse"]


@dataclass(frozen=True)
class Judgement:
    decision: Decision
    #: For a refusal: why (a suspected roll-back), and the retained checkpoint.
    reason: str | None = None
    retained: Checkpoint | None = None


def by_size(ours: Checkpoint, last_published: Checkpoint | None) -> Decision:
    """Skip a checkpoint older than what this publisher already put there."""
    if (
        last_published is not None
        and last_published.log_id == ours.log_id
        and last_published.tree_size > ours.tree_size
    ):
        return "skip"
    return "publish"


def judge_retained(
    payload: bytes | None,
    ours: Checkpoint,
    *,
    store: Store | None,
    topic: str,
    replace_retained: bool,
    last_published: Checkpoint | None,
) -> Judgement:
    """Decide what to do with ``ours`` given the retained ``payload`` (module docstring).

    Blocking (reads the store): call it from a worker thread in async code.
    """
    if payload is None:
        return Judgement(by_size(ours, last_published))
    try:
        retained = parse_outside_document(payload)
    except ValueError as exc:
        log.warning("retained checkpoint on %s is unreadable (%s): replacing it", topic, exc)
        return Judgement("publish")
    if retained.log_id != ours.log_id:
        log.warning(
            "retained checkpoint on %s belongs to another trail (%s): replacing it",
            topic,
            retained.log_id,
        )
        return Judgement("publish")
    if store is None:
        if retained.tree_size > ours.tree_size:
            return Judgement("skip")
        return Judgement(by_size(ours, last_published))
    try:
        public = store.trusted_audit_keys().get(retained.key_id)
        if public is None or not verify_signature(
            public, retained.statement_bytes(), retained.signature
        ):
            log.warning(
                "retained checkpoint on %s does not verify: replacing it with a genuine one", topic
            )
            return Judgement("publish")
        known = store.holds_checkpoint(retained.tree_size, retained.root)
    except (StoreError, sqlite3.Error) as exc:
        log.warning("cannot compare the retained checkpoint with the store: %s", exc)
        return Judgement(by_size(ours, last_published))
    if known:
        if retained.tree_size > ours.tree_size:
            return Judgement("skip")
        return Judgement(by_size(ours, last_published))
    if replace_retained:
        log.warning(
            "superseding the retained checkpoint at %d events on %s, which this database "
            "does not hold (replace_retained)",
            retained.tree_size,
            topic,
        )
        return Judgement("publish")
    reason = (
        f"the broker's retained checkpoint at {retained.tree_size} events (time "
        f"{retained.time}) is signed for this trail but is not in this database, which "
        f"has {ours.tree_size} events: the database was probably rolled back"
    )
    return Judgement("refuse", reason, retained)
