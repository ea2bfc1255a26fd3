"""The composition root: settings in, the assembled services out.

Every front end — the command line, ``samu hub``, the Textual console, the replay engine —
builds the régulation system here and nowhere else, so there is one answer to "which
database, which keys, which broker" and one order of assembly:

    Settings → database path checks → Store (migrations, triggers, installation key)
    → master key → AccountService → PatientService → retention, rights
    → DeviceRegistry → RegulationCore (ingest + cases, what ``samu hub`` and replay run)

Parts are built on first use: ``samu audit export`` never needs the master key, and a
database without accounts never creates one. The caller owns the result and closes it
(``with open_services(settings) as services:``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from console.auth import AccountService, LocalOperator
from console.crypto import MasterKeyError, load_master_key, master_key_path
from console.records import Store as _Store
from console.records import StoreError
from console.settings import Settings

if TYPE_CHECKING:
    from console.identity import PatientService, RetentionRunner, RightsService
    from console.ingest import DeviceRegistry
    from console.records import Store
    from transport import BrokerConfig

__all__ = ["Services", "ServicesError", "check_database_path", "open_services"]


class ServicesError(Exception):
    """The system cannot be assembled (bad path, refused store, wrong key): one line."""


def check_database_path(path: Path, *, create: bool) -> bool:
    """Say clearly what is wrong with a database path; ``True`` when it must be created.

    Raises:
        ServicesError: the path is a directory, its directory does not exist, or (without
            ``create``) there is no database there.
    """
    if path.is_dir():
        raise ServicesError(f"{path} is a directory, not a database file (give --db FILE)")
    if path.exists():
        if not path.is_file():
            raise ServicesError(f"{path} is not a regular file")
        return False
    if not path.parent.is_dir():
        raise ServicesError(f"directory does not exist: {path.parent} (for database {path})")
    if not create:
        hint = (
            " (the default database is ./samu.db; give --db PATH)"
            if path == Path("samu.db")
            else ""
        )
        raise ServicesError(f"database not found: {path}{hint}")
    return True


@dataclass
class Services:
    """The assembled régulation system. Build with :func:`open_services`.

    Attributes:
        settings: what it was built from.
        store: the records store (open).
        operator: the local operator (command line), audited as ``local:<os-user>``.
        created: the database did not exist and was created by this opening.
    """

    settings: Settings
    store: Store
    operator: LocalOperator = field(default_factory=LocalOperator.current)
    created: bool = False

    @property
    def db_path(self) -> Path:
        return self.store.path

    @property
    def master_key_path(self) -> Path:
        """Where the master key file is (or would be), for messages."""
        return master_key_path(self.store.path, self.settings.master_key_file)

    @cached_property
    def master_key(self) -> bytes:
        """The installation master key; created on first use of a database with none.

        Raises:
            ServicesError: the key is missing (for a database already bound to one),
                unreadable, unsafe or malformed.
        """
        bound = self.store.fetchone("SELECT 1 FROM identity_keyring WHERE id = 1") is not None
        try:
            return load_master_key(
                self.store.path,
                key=self.settings.master_key_text(),
                key_file=self.settings.master_key_file,
                create=not bound,
            )
        except MasterKeyError as exc:
            raise ServicesError(str(exc)) from exc

    @cached_property
    def accounts(self) -> AccountService:
        """Accounts, logins, sessions and habilitations."""
        from console.crypto import CryptoError

        try:
            return AccountService(
                self.store,
                self.master_key,
                reauth_after=timedelta(hours=self.settings.console.reauth_h),
            )
        except CryptoError as exc:
            raise ServicesError(str(exc)) from exc

    @cached_property
    def patients(self) -> PatientService:
        """Identities and signed records."""
        from console.crypto import CryptoError
        from console.identity import PatientService

        try:
            return PatientService(self.accounts, self.master_key)
        except CryptoError as exc:
            raise ServicesError(str(exc)) from exc

    @cached_property
    def devices(self) -> DeviceRegistry:
        """Enrolled devices and their keys (sealed under the master key)."""
        from console.ingest import DeviceRegistry

        return DeviceRegistry(self.store, self.master_key)

    @cached_property
    def retention(self) -> RetentionRunner:
        from console.identity import RetentionRunner

        return RetentionRunner(self.patients)

    @cached_property
    def rights(self) -> RightsService:
        from console.identity import RightsService

        return RightsService(self.patients)

    def broker(self, url: str | None = None) -> BrokerConfig | None:
        """The broker of ``url`` or of the settings, with the configured credentials.

        Raises:
            ServicesError: the URL (or the CA file) is unusable.
        """
        return broker_config(self.settings, url)

    def close(self) -> None:
        self.store.close()


def broker_config(settings: Settings, url: str | None = None) -> BrokerConfig | None:
    """``url`` (or ``settings.mqtt.url``) as a :class:`~transport.BrokerConfig` carrying
    the configured password and CA file; ``None`` when neither names a broker.

    Raises:
        ServicesError: the URL or the CA file is unusable (the message says why).
    """
    from transport import BrokerConfig, BrokerConfigError

    text = url if url is not None else settings.mqtt.url
    if not text:
        return None
    try:
        return BrokerConfig.parse(
            text, password=settings.mqtt_password_text(), ca_file=settings.mqtt_ca_file
        )
    except BrokerConfigError as exc:
        raise ServicesError(f"MQTT: {exc}") from exc


@contextmanager
def open_services(
    settings: Settings,
    *,
    create: bool = False,
    readonly: bool = False,
    checkpoint_dir: Path | None = None,
) -> Iterator[Services]:
    """Assemble the system on ``settings.db`` and close it afterwards.

    Args:
        settings: the installation settings (``--db`` already folded in as ``db``).
        create: create the database when it does not exist (``users add``, the hub).
        readonly: open the store read-only (a live hub's database, not disturbed).
        checkpoint_dir: outside checkpoints (default: the setting, else beside the db).

    Raises:
        ServicesError: any reason the system cannot be assembled, in one line.
    """
    path = Path(settings.db)
    created = check_database_path(path, create=create and not readonly)
    try:
        store = _Store.open(
            path,
            readonly=readonly,
            checkpoint_dir=checkpoint_dir or settings.checkpoint_dir,
            installation_key_file=settings.installation_key_file,
        )
    except StoreError as exc:
        text = str(exc)
        raise ServicesError(text if str(path) in text else f"{path}: {text}") from exc
    services = Services(settings=settings, store=store, created=created)
    try:
        yield services
    finally:
        services.close()
