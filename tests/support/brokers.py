"""Real Mosquitto brokers for tests, on free 127.0.0.1 ports only.

``start_broker(tmp)`` runs a plain anonymous broker (the ``mosquitto`` fixture of
conftest.py wraps it) and returns a ``Broker`` that can be stopped and restarted on the
same port; ``DeployedBroker(tmp)`` runs the shipped configuration (TLS, password file,
ACL) with the accounts in ``USERS``. ``mosquitto_binary`` and ``free_loopback_port``
are the lower-level pieces.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

HARDWARE = Path(__file__).resolve().parent.parent.parent / "hardware" / "mosquitto"


def mosquitto_binary() -> str | None:
    """Debian installs the broker in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    config: Path
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def start(self) -> None:
        """(Re)start on the same port, e.g. to test delivery across a broker restart."""
        self.process = _spawn(self.config, self.log)
        _wait_listening(self.host, self.port, self.process, self.log)


def _spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    binary = mosquitto_binary()
    assert binary is not None
    with log.open("ab") as fh:
        return subprocess.Popen([binary, "-c", str(config)], stdout=fh, stderr=subprocess.STDOUT)


def _wait_listening(
    host: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"mosquitto exited with {proc.returncode}: {log.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a condition (port open), not a fixed wait
    raise RuntimeError(f"mosquitto did not listen on {host}:{port} within {timeout}s")


def start_broker(tmp: Path, persistence: bool = True) -> Broker:
    """Start ``mosquitto -c <temp config>`` on a free 127.0.0.1 port (never another address)."""
    if mosquitto_binary() is None:
        # A failure, not a skip: `make test` installs it, so a missing broker means the
        # set-up is broken and the broker tests would silently stop testing anything.
        pytest.fail("mosquitto is not installed: run `make setup` (Debian's mosquitto package)")
    port = free_loopback_port()
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "mosquitto.conf"
    log = tmp / "mosquitto.log"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {tmp}/",
        # Started as root (CI, this machine), Mosquitto drops to user "mosquitto", which
        # cannot write the test's directory: persistence would silently fail and a broker
        # restart would lose every session. Stay the user who owns the directory.
        f"user {getpass.getuser()}",
        "log_dest stdout",
        "max_queued_messages 100000",
    ]
    config.write_text("\n".join(lines) + "\n")
    proc = _spawn(config, log)
    _wait_listening("127.0.0.1", port, proc, log)
    return Broker("127.0.0.1", port, proc, config, log)


# --- the shipped deployment: TLS, passwords, ACL -----------------------------------------

USERS = {
    "hub.samu075": "pw-hub",
    "term.samu075.01": "pw-term",
    "video.samu075": "pw-video",
    "gw.ehpad-lilas": "pw-lilas",
    "gw.ehpad-tilleuls": "pw-tilleuls",
}


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "samu test broker")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp / "server.crt", tmp / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


class DeployedBroker:
    """The shipped ``hardware/mosquitto`` configuration and ACL, run on two free loopback
    ports (plain and TLS) with a throw-away self-signed certificate and ``USERS``."""

    def __init__(self, tmp: Path) -> None:
        self.tls_port, self.port = free_loopback_port(), free_loopback_port()
        self.crt, key = _self_signed(tmp)
        passwd = tmp / "passwd"
        passwd.touch()
        for user, pw in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
        conf = (HARDWARE / "mosquitto.conf").read_text()
        substitutions = {
            "/etc/mosquitto/samu/passwd": str(passwd),
            "/etc/mosquitto/samu/acl": str(HARDWARE / "acl"),
            "/etc/mosquitto/samu/tls/server.crt": str(self.crt),
            "/etc/mosquitto/samu/tls/server.key": str(key),
            "/etc/mosquitto/samu/tls/ca.crt": str(self.crt),
            "/var/lib/mosquitto/": f"{tmp}/",
            "listener 8883\n": f"listener {self.tls_port} 127.0.0.1\n",
            "listener 1883 127.0.0.1\n": f"listener {self.port} 127.0.0.1\n",
            "log_dest syslog\n": f"log_dest file {tmp}/mosquitto.log\nuser {getpass.getuser()}\n",
        }
        for old, new in substitutions.items():
            assert old in conf, f"shipped mosquitto.conf no longer contains {old!r}"
            conf = conf.replace(old, new)
        (tmp / "samu.conf").write_text(conf)
        self.log = tmp / "mosquitto.log"
        binary = mosquitto_binary()
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, "-c", str(tmp / "samu.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_listening("127.0.0.1", self.port, self.proc, self.log)
        _wait_listening("127.0.0.1", self.tls_port, self.proc, self.log)

    def client(
        self, user: str | None, password: str | None = None, tls: bool = False
    ) -> aiomqtt.Client:
        kwargs: dict[str, object] = {}
        if tls:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.crt))
            kwargs["tls_context"] = ctx
        return aiomqtt.Client(
            "127.0.0.1",
            self.tls_port if tls else self.port,
            username=user,
            password=password if password is not None else USERS.get(user or ""),
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=10,
            **kwargs,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
