"""Ingest: serial readers, MQTT client, validation, dedup, quarantine."""
