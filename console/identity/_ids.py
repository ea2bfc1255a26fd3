"""Record ids."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A random, unguessable id (``pat_…``, ``rec_…``): ids travel in audit objects and
    exports, so they must reveal nothing and be impossible to enumerate."""
    return f"{prefix}_{secrets.token_hex(8)}"
