"""SQLite migrations for identities, keys and signed records, applied by the records store.

``MIGRATIONS`` is an ordered list of ``(name, sql_script)``; names never change once shipped.
"""

MIGRATIONS: list[tuple[str, str]] = []
