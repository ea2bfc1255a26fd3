"""What every connection of this package counts, and how an outage is said once.

The first failure of an outage is logged at WARNING with the broker and the reason
("unreachable"), the retries at INFO, the recovery at WARNING with its length: a
broker that is down is said once, clearly, not once per retry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

__all__ = ["ConnectionStats"]

_log = logging.getLogger("transport.mqtt")
_MAX_ERRORS = 100


@dataclass
class ConnectionStats:
    connections: int = 0
    failures: int = 0
    last_error: str = ""
    connected: bool = False
    outage_since: float | None = None
    errors: list[str] = field(default_factory=list)

    def up(self, client_id: str, broker: str) -> None:
        """A connection was made (ends an outage, if one was going on)."""
        if self.outage_since is not None:
            _log.warning(
                "mqtt %s: broker %s reachable again (down %.0f s)",
                client_id,
                broker,
                time.monotonic() - self.outage_since,
            )
        self.connections += 1
        self.connected = True
        self.outage_since = None

    def down(self, client_id: str, broker: str, exc: BaseException, *, kept: str = "") -> None:
        """A connection attempt or a session failed; ``kept`` says what is held meanwhile."""
        self.failures += 1
        self.last_error = str(exc) or type(exc).__name__
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(self.last_error)
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            _log.warning(
                "mqtt %s: broker %s unreachable (%s); %sretrying",
                client_id,
                broker,
                self.last_error,
                f"{kept}, " if kept else "",
            )
        else:
            _log.info("mqtt %s: %s; retrying", client_id, self.last_error)
