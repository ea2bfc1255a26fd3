"""Errors raised by the records store.

One base class (:class:`StoreError`) so callers (the CLI, the hub) can turn any store
problem into one clear line; subclasses exist only where a caller reacts differently.
"""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot do what was asked (bad file, refused start-up, failed write)."""


class SchemaError(StoreError):
    """The schema is unknown to this code (newer) or its protective triggers are missing.

    Start-up refuses such a database: writing to it would either corrupt a schema we do
    not understand or extend an audit trail whose append-only protection was removed.
    """


class KeyFileError(StoreError):
    """A key file (master key, installation signing key) is missing, unreadable or unsafe."""
