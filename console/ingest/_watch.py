"""From what ingest saw to incidents (cases.md): security and technical, rate-limited.

* **security** — a recurring MAC failure from one sender (:data:`MAC_FAILURES` within
  :data:`WINDOW_S`: a wrong or stolen key, or someone forging), or messages from an
  unknown device (a device not enrolled, or a probe);
* **technical** — a device that disconnected (its Last Will, ``connection_lost``), a
  device reporting a fault, a persistent clock skew (:data:`SKEWED` readings in a row).

Each (kind, category, device) raises at most one incident per :data:`QUIET_S`, so a
flood of bad messages becomes one incident to review, not thousands; the flood itself is
in the quarantine, counted. Incidents are the records package's (``samu incidents``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from console.ingest._pipeline import Accepted, Outcome, Quarantined
from console.records import AuditContext, Store, open_incident
from protocols import DeathBody, StatusBody

MAC_FAILURES = 3
WINDOW_S = 600.0
QUIET_S = 3600.0
SKEWED = 30
#: Distinct unknown senders reported per quiet period (a scan must not flood review).
UNKNOWN_MAX = 20
#: Bad serial frames from one device within WINDOW_S that make a technical incident.
FRAME_ERRORS = 10
_MESSAGE_REASONS = frozenset({"too_large", "json", "schema", "mac", "unknown_device", "topic"})

_WHO = AuditContext(actor="system:ingest", role="system", terminal="hub")


@dataclass(frozen=True, slots=True)
class RaisedIncident:
    incident_id: int
    kind: str
    category: str
    site: str | None
    device: str | None
    title: str
    at: float


class IncidentWatch:
    """Turns ingest outcomes into incidents (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._macs: dict[tuple[str, str], deque[float]] = {}
        self._last: dict[tuple[str, str, str], float] = {}
        self._unknown_window: deque[float] = deque()
        self._skew: dict[tuple[str, str], int] = {}
        self._frame_errors: dict[tuple[str, str], deque[float]] = {}

    def _quiet(self, key: tuple[str, str, str], now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < QUIET_S:
            return True
        self._last[key] = now
        return False

    def _raise(
        self,
        kind: str,
        category: str,
        *,
        site: str | None,
        device: str | None,
        title: str,
        now: float,
        severity: str = "medium",
    ) -> RaisedIncident:
        obj = f"device:{site}/{device}" if device else None
        incident = open_incident(
            self._store,
            _WHO,
            kind=kind,  # type: ignore[arg-type]
            category=category,
            title=title[:200],
            severity=severity,  # type: ignore[arg-type]
            object=obj,
        )
        return RaisedIncident(incident.id, kind, category, site, device, title, now)

    def observe(self, outcomes: Sequence[Outcome], now: float) -> list[RaisedIncident]:
        raised: list[RaisedIncident] = []
        for o in outcomes:
            if isinstance(o, Quarantined):
                raised += self._quarantined(o, now)
            elif isinstance(o, Accepted):
                raised += self._accepted(o, now)
        return raised

    def _quarantined(self, q: Quarantined, now: float) -> list[RaisedIncident]:
        site, device = q.site or "?", q.device or "?"
        if q.reason == "mac":
            times = self._macs.setdefault((site, device), deque())
            times.append(now)
            while times and times[0] < now - WINDOW_S:
                times.popleft()
            if len(times) >= MAC_FAILURES and not self._quiet(
                ("security", "mac", site + device), now
            ):
                return [
                    self._raise(
                        "security",
                        "mac-failure",
                        site=q.site,
                        device=q.device,
                        title=f"{len(times)} messages with a bad MAC from {site}/{device} "
                        f"within {WINDOW_S / 60:g} min: wrong key or forgery",
                        now=now,
                        severity="high",
                    )
                ]
        elif q.reason not in _MESSAGE_REASONS:  # a codec's reason: a bad serial frame
            times = self._frame_errors.setdefault((site, device), deque())
            times.append(now)
            while times and times[0] < now - WINDOW_S:
                times.popleft()
            key = ("technical", "frames", f"{site}/{device}")
            if len(times) >= FRAME_ERRORS and not self._quiet(key, now):
                return [
                    self._raise(
                        "technical",
                        "frame-errors",
                        site=q.site,
                        device=q.device,
                        title=f"{len(times)} bad frames from {site}/{device} within "
                        f"{WINDOW_S / 60:g} min (last: {q.reason})",
                        now=now,
                    )
                ]
        elif q.reason == "unknown_device":
            while self._unknown_window and self._unknown_window[0] < now - QUIET_S:
                self._unknown_window.popleft()
            if len(self._unknown_window) < UNKNOWN_MAX and not self._quiet(
                ("security", "unknown", f"{site}/{device}"), now
            ):
                self._unknown_window.append(now)
                return [
                    self._raise(
                        "security",
                        "unknown-device",
                        site=q.site,
                        device=q.device,
                        title=f"messages from a device that is not enrolled: {site}/{device}",
                        now=now,
                    )
                ]
        return []

    def serial_state(
        self, site: str, device: str, url: str, state: str, now: float
    ) -> list[RaisedIncident]:
        """A serial port the hub reads went away (``disconnected``) or came back."""
        if state != "disconnected" or self._quiet(
            ("technical", "disconnect", f"{site}/{device}"), now
        ):
            return []
        return [
            self._raise(
                "technical",
                "device-disconnect",
                site=site,
                device=device,
                title=f"{site}/{device} unplugged from {url}: the hub retries until it is back",
                now=now,
            )
        ]

    def _accepted(self, a: Accepted, now: float) -> list[RaisedIncident]:
        site, device = a.site, a.device
        body = a.body
        out: list[RaisedIncident] = []
        if isinstance(body, DeathBody) and body.reason in ("connection_lost", "fault"):
            if not self._quiet(("technical", "disconnect", f"{site}/{device}"), now):
                out.append(
                    self._raise(
                        "technical",
                        "device-disconnect",
                        site=site,
                        device=device,
                        title=f"{site}/{device} disconnected ({body.reason.replace('_', ' ')})",
                        now=now,
                    )
                )
        elif (
            isinstance(body, StatusBody)
            and body.state in ("fault", "disconnected")
            and not self._quiet(("technical", "fault", f"{site}/{device}"), now)
        ):
            detail = f": {body.detail}" if body.detail else ""
            out.append(
                self._raise(
                    "technical",
                    "device-fault",
                    site=site,
                    device=device,
                    title=f"{site}/{device} reports {body.state}{detail}",
                    now=now,
                )
            )
        if a.observations:
            skewed = all(o.clock_skew for o in a.observations)
            count = self._skew.get((site, device), 0) + 1 if skewed else 0
            self._skew[(site, device)] = count
            if count >= SKEWED and not self._quiet(("technical", "skew", f"{site}/{device}"), now):
                out.append(
                    self._raise(
                        "technical",
                        "clock-skew",
                        site=site,
                        device=device,
                        title=f"{site}/{device}: device clock off by more than 5 min for "
                        f"{count} readings (arrival time used)",
                        now=now,
                        severity="low",
                    )
                )
        return out
