"""Where the broker is and how to talk to it: one strict parser for every MQTT user.

``mqtt://[user@]host[:1883]`` or ``mqtts://[user@]host[:8883]``. The password is never
in the URL — it would show in process lists and shell histories — but given apart (the
``mqtt_password`` setting, ``SAMU_MQTT_PASSWORD``). ``mqtts://`` verifies the broker's
certificate and host name against the system trust store, or against one CA file.

Before this module the simulator and the audit-checkpoint publisher each parsed broker
URLs, with opposite rules on passwords; now there is one rule, here.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["PASSWORD_HINT", "BrokerConfig", "BrokerConfigError"]

#: Where a password goes instead of the URL, for messages.
PASSWORD_HINT = "use mqtt://user@host:port and set SAMU_MQTT_PASSWORD"  # noqa: S105 - a hint


class BrokerConfigError(ValueError):
    """A broker URL or its companions (password, CA file) are unusable."""


@dataclass(frozen=True)
class BrokerConfig:
    """A broker: address, transport security and credentials (password hidden)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    @classmethod
    def parse(
        cls, url: str, *, password: str | None = None, ca_file: Path | str | None = None
    ) -> BrokerConfig:
        """Parse a broker URL; the password and the CA file come separately.

        Args:
            url: ``mqtt://[user@]host[:port]`` or ``mqtts://…``.
            password: the user's password (ignored, with no error, when the URL names no
                user: a configured password must not leak to an anonymous broker).
            ca_file: CA certificates to trust for ``mqtts://`` instead of the system's.

        Raises:
            BrokerConfigError: another scheme, no host, a bad port, a path or query, a
                password inside the URL, or a CA file that is not a file.
        """
        text = url.strip()
        parts = urlsplit(text)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BrokerConfigError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
        if parts.password is not None:
            raise BrokerConfigError(
                "do not put the MQTT password in the URL (process lists and shell history "
                f"show it): {PASSWORD_HINT}"
            )
        if not parts.hostname:
            raise BrokerConfigError(f"broker URL has no host: {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise BrokerConfigError(f"broker URL takes no path or query: {url!r}")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise BrokerConfigError(f"bad port in broker URL {url!r}") from exc
        username = unquote(parts.username) if parts.username else None
        ca = Path(ca_file) if ca_file else None
        if tls and ca is not None and not ca.is_file():
            raise BrokerConfigError(f"the MQTT CA file is not a file: {ca}")
        return cls(
            parts.hostname,
            port,
            tls,
            username,
            password if username is not None else None,
            ca if tls else None,
        )

    @property
    def display(self) -> str:
        """The URL without any secret, for messages and logs."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"

    @property
    def incident_object(self) -> str:
        """``mqtt:<host>:<port>``: the ``object`` of this broker's incidents."""
        return f"mqtt:{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """System trust store, or only the CA file; host names checked. None without TLS."""
        if not self.tls:
            return None
        cafile = str(self.ca_file) if self.ca_file is not None else None
        return ssl.create_default_context(cafile=cafile)
