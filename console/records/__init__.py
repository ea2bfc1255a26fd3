"""Authenticated, tamper-evident records in SQLite."""
