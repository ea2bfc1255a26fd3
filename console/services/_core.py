"""The régulation core: ingest and cases over one store, driven by whoever hosts it.

``samu hub`` hosts it on the wall clock behind the MQTT subscriber and serial readers;
the replay engine hosts it on a virtual clock. Either way the same two calls do all the
work, so what a tester replays is what production runs:

* :meth:`RegulationCore.receive` — a batch of received messages: verified and committed
  (ingest), then what they mean for cases (bilans, implant alerts, latest values);
* :meth:`RegulationCore.tick` — the triage tick over every monitored resident.

Both return :class:`~console.cases.CaseEvent` s (``case_opened``, ``priority_changed``,
``implant_alert``, ``quarantined``…) for the hub's log and the board.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from console.cases import CaseBook, CaseEvent, resident_id
from console.ingest import (
    Accepted,
    IncidentWatch,
    Incoming,
    Ingest,
    Outcome,
    Quarantined,
    RaisedIncident,
    SerialSource,
)
from console.services._compose import Services


@dataclass(frozen=True)
class Received:
    """What one batch became."""

    outcomes: list[Outcome]
    events: list[CaseEvent] = field(default_factory=list)


class RegulationCore:
    """Ingest + cases (see the module docstring).

    Args:
        services: the assembled system (store, master key, device registry, settings).
        centre: the SAMU id for case ids (``samu075``); the settings' when None.
        now: the current time (epoch s) used to rebuild state after a restart.
    """

    def __init__(self, services: Services, *, now: float, centre: str | None = None) -> None:
        self.services = services
        settings = services.settings
        self.centre = centre or settings.centre
        registry = services.devices
        self.ingest = Ingest(
            services.store,
            registry.keyring(),
            services.master_key,
            patients=self._bindings(),
        )
        self.cases = CaseBook(
            services.store,
            centre=self.centre,
            freshness_s=settings.triage.freshness_s,
            deescalate_after_s=settings.triage.deescalate_after_s,
        )
        self.cases.restore(now)
        self.watch = IncidentWatch(services.store)
        #: The latest time residents were scored at (tick or batch): never goes back.
        self._scored_at = now

    def _bindings(self) -> dict[tuple[str, str], str | None]:
        return {(d.site, d.device): d.patient for d in self.services.devices.list()}

    def reload_keys(self) -> None:
        """Pick up enrolments made since start (``samu devices enrol`` on a live hub)."""
        self.ingest.set_keyring(self.services.devices.keyring(), self._bindings())

    def receive(self, items: Sequence[Incoming], *, triage: bool = False) -> Received:
        """Verify, store and apply a batch (committed when this returns).

        With ``triage``, the residents the batch brought news of are also scored at
        once (:meth:`~console.cases.CaseBook.triage_residents`), so a value crossing
        into P1/P0 is on the board when the batch is, not at the next tick: that is
        what ``samu hub`` does. Ingest, the case updates and those results are then
        **one** transaction — one durable commit (``synchronous=FULL``) per batch
        instead of three, and a failure anywhere leaves nothing of the batch stored,
        so the unacknowledged batch comes back whole and is applied whole. Replays
        call it without ``triage``: their results are recorded on the tick of the
        virtual clock, as the library's expectations were written.
        """
        if not items:
            return Received([])
        now = max(i.received_ts for i in items)
        with self._consistent(now):
            if not triage:
                return self._applied(self.ingest.accept(items), now)
            with self.services.store.transaction():
                got = self._applied(self.ingest.accept(items), now)
                events = self._triage_touched(got.outcomes, now)
        return Received(got.outcomes, got.events + events) if events else got

    @contextlib.contextmanager
    def _consistent(self, now: float) -> Iterator[None]:
        """On any failure, rebuild the case book from what is committed.

        The book's memory (latest values, open cases) changes as a batch is applied,
        inside the batch's transaction. When that transaction rolls back (a disk error,
        a constraint), the memory would keep samples whose rows do not exist and, worse,
        a case id that was never committed: later results would land on a case no one
        can see. Failures are rare; re-reading the state then is cheap and exact.
        """
        try:
            yield
        except BaseException:
            self.cases.restore(now)
            # The incident watch counted the batch's failures and noted the incidents it
            # raised, whose rows rolled back: forget its counts (a redelivered batch then
            # raises them again; at worst an incident twice within its quiet hour, never
            # none).
            self.watch = IncidentWatch(self.services.store)
            raise

    def _triage_touched(self, outcomes: Sequence[Outcome], now: float) -> list[CaseEvent]:
        """Score the residents accepted messages or frames were about (see :meth:`receive`)."""
        touched = {
            resident_id(o.site, o.resident)
            for o in outcomes
            if isinstance(o, Accepted) and o.resident is not None
        }
        if not touched:
            return []
        # Never before the last tick: a batch formed just before a tick ran is
        # committed after it, and the timeline stays in order.
        self._scored_at = max(self._scored_at, now)
        return self.cases.triage_residents(touched, self._scored_at)

    def _incidents(self, raised: Sequence[RaisedIncident], now: float) -> list[CaseEvent]:
        if not raised:  # the usual case: no need to list the open cases
            return []
        bindings = self.ingest.bindings
        cases = self.cases.open_cases()
        events = []
        for inc in raised:
            resident = bindings.get((inc.site or "", inc.device or ""))
            case_id = cases.get(f"{inc.site}/{resident}") if resident else None
            detail = {
                "incident": inc.incident_id,
                "kind": inc.kind,
                "category": inc.category,
                "site": inc.site,
                "device": inc.device,
                "title": inc.title,
            }
            if case_id is not None:
                self.cases.add_timeline(case_id, now, "incident", detail)
            events.append(CaseEvent("incident", case_id, None, now, detail))
        return events

    def receive_frames(
        self, source: SerialSource, items: Sequence[object], now: float, *, triage: bool = False
    ) -> Received:
        """What a serial reader decoded: stored, applied, incidents raised (``triage``:
        as for :meth:`receive`, in one commit)."""
        with self._consistent(now):
            if not triage:
                return self._applied(self.ingest.accept_frames(source, items, now), now)
            with self.services.store.transaction():
                got = self._applied(self.ingest.accept_frames(source, items, now), now)
                events = self._triage_touched(got.outcomes, now)
        return Received(got.outcomes, got.events + events) if events else got

    def receive_lines(
        self,
        lines: Sequence[tuple[SerialSource, Sequence[object]]],
        now: float,
        *,
        triage: bool = False,
    ) -> list[Received]:
        """What several serial readers decoded at ``now``, stored in one commit.

        The same as :meth:`receive_frames` on each line in turn — the same rows, the
        same case updates, the same incidents — but ingest commits every line at once
        and the case book applies them in one transaction: a host draining 1 000
        bedside lines a second pays two commits instead of two thousand. Returns one
        :class:`Received` per line; the case events of the whole batch (frames open no
        case, so there are rarely any) come with the first line. ``triage``: as for
        :meth:`receive` (one commit; a rise is on the board with the batch), its events
        with the first line too.
        """
        if not any(items for _, items in lines):
            return [Received([]) for _ in lines]
        with self._consistent(now), contextlib.ExitStack() as stack:
            if triage:
                stack.enter_context(self.services.store.transaction())
            per_line = self.ingest.accept_lines(lines, now)
            accepted = [o for outcomes in per_line for o in outcomes if isinstance(o, Accepted)]
            events = self.cases.apply(accepted, now) if accepted else []
            if triage:
                events += self._triage_touched(accepted, now)
        out = []
        for outcomes in per_line:
            out.append(Received(outcomes, [*events, *self._aftermath(outcomes, now)]))
            events = []
        return out

    def _applied(self, outcomes: list[Outcome], now: float) -> Received:
        """What committed outcomes mean: cases, quarantine events, incidents."""
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        events = self.cases.apply(accepted, now) if accepted else []
        return Received(outcomes, events + self._aftermath(outcomes, now))

    def _aftermath(self, outcomes: list[Outcome], now: float) -> list[CaseEvent]:
        """Quarantine events and the incidents the outcomes raise."""
        events = [
            CaseEvent(
                "quarantined",
                None,
                None,
                o.received_ts,
                {"reason": o.reason, "source": o.source, "site": o.site, "device": o.device},
            )
            for o in outcomes
            if isinstance(o, Quarantined)
        ]
        events += self._incidents(self.watch.observe(outcomes, now), now)
        return events

    def serial_state(self, source: SerialSource, state: str, now: float) -> list[CaseEvent]:
        """A serial port went away or came back: incidents, device state."""
        if state == "disconnected":
            with self.services.store.transaction() as conn:
                conn.execute(
                    "UPDATE devices SET state = 'offline' WHERE site = ? AND device = ?",
                    (source.site, source.device),
                )
        raised = self.watch.serial_state(source.site, source.device, source.url, state, now)
        return [
            CaseEvent("serial", None, None, now, {"port": source.url, "state": state}),
            *self._incidents(raised, now),
        ]

    def tick(self, now: float) -> list[CaseEvent]:
        """The triage tick (default every second)."""
        self._scored_at = max(self._scored_at, now)
        with self._consistent(now):
            return self.cases.tick(now)
