"""What every ``samu`` command needs from its arguments: settings, database, services.

One implementation of "read ``--config`` and ``SAMU_*``, fold in ``--db``, open the
system", so every command reports a bad configuration file, a bad variable, a directory
given as ``--db`` or a missing database the same way: one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli._main import UsageError

if TYPE_CHECKING:
    from console.services import Services
    from console.settings import Settings
    from transport import BrokerConfig


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings for this command line (cached on ``args``).

    Raises:
        UsageError: the configuration file or a ``SAMU_*`` variable is unusable.
    """
    cached = getattr(args, "_settings", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from console.settings import SettingsError, load_settings

    db = getattr(args, "db", None)
    checkpoint_dir = getattr(args, "checkpoint_dir", None)
    try:
        settings = load_settings(
            getattr(args, "config", None),
            db=Path(db) if db else None,
            checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
        )
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    args._settings = settings
    return settings


def db_path(args: argparse.Namespace) -> Path:
    """``--db``, else the ``db`` setting (default ``./samu.db``)."""
    return Path(settings_of(args).db)


def broker_of(args: argparse.Namespace, url: str | None = None) -> BrokerConfig | None:
    """The broker named by ``url`` (e.g. ``--mqtt``) or configured, with credentials.

    Raises:
        UsageError: the URL or the CA file is unusable.
    """
    from console.services import ServicesError, broker_config

    try:
        return broker_config(settings_of(args), url)
    except ServicesError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def services_of(
    args: argparse.Namespace, *, create: bool = False, readonly: bool = False
) -> Iterator[Services]:
    """Open the system for this command (see :func:`console.services.open_services`).

    With ``create``, a database that did not exist is created and the operator is told so
    on stderr: a mistyped ``--db`` must not silently start a second set of records.

    Raises:
        UsageError: the system cannot be assembled (the message says why).
    """
    from console.services import ServicesError, open_services

    settings = settings_of(args)
    try:
        with open_services(settings, create=create, readonly=readonly) as services:
            if services.created:
                print(
                    f"note: no database at {services.db_path}: created a new one "
                    f"(master key {services.master_key_path})",
                    file=sys.stderr,
                )
            yield services
    except ServicesError as exc:
        raise UsageError(str(exc)) from None


def prompt_secret(prompt: str, variable: str, *, confirm: bool = False) -> str:
    """A secret from ``variable`` (automation) or a hidden prompt on the terminal.

    Without a terminal and without the variable, this fails cleanly instead of letting
    :mod:`getpass` print warnings and read the secret in clear from a pipe.

    Raises:
        UsageError: no terminal and no variable, end of input, or the two typings differ.
    """
    from console.settings import automation_secret

    given = automation_secret(variable)
    if given is not None:
        return given
    if not sys.stdin.isatty():
        raise UsageError(
            f"no terminal to ask for it: type it at the prompt in a terminal, or set {variable} "
            "for automation"
        )
    import getpass

    try:
        first = getpass.getpass(prompt)
        if confirm:
            again = getpass.getpass("Again: ")
            if first != again:
                raise UsageError("the two entries differ; nothing was done")
    except EOFError:
        raise UsageError(f"nothing typed: type it at the prompt, or set {variable}") from None
    return first
