"""Ingest: device registry, message verification, dedup, observations, quarantine.

The pipeline (:class:`Ingest`) is transport-agnostic: the hub's MQTT subscriber, the
serial readers and the replay engine hand it batches of :class:`Incoming` messages and
acknowledge them only after :meth:`Ingest.accept` returned (the commit).
"""

from console.ingest._pipeline import (
    CLOCK_TOLERANCE_S,
    QUARANTINE_REASONS,
    Accepted,
    Duplicate,
    Incoming,
    Ingest,
    IngestStats,
    Outcome,
    Quarantined,
    SerialSource,
    StoredObservation,
    iso,
    quarantine_rows,
    raw_opener,
)
from console.ingest._registry import (
    DeviceInfo,
    DeviceRegistry,
    EnrolmentError,
    Sender,
    read_key_file,
    write_key_file,
)
from console.ingest._serial import (
    DEFAULT_BAUD,
    SerialReader,
    SerialSpecError,
    parse_serial_spec,
)
from console.ingest._watch import IncidentWatch, RaisedIncident

__all__ = [
    "CLOCK_TOLERANCE_S",
    "DEFAULT_BAUD",
    "QUARANTINE_REASONS",
    "Accepted",
    "DeviceInfo",
    "DeviceRegistry",
    "Duplicate",
    "EnrolmentError",
    "IncidentWatch",
    "Incoming",
    "Ingest",
    "IngestStats",
    "Outcome",
    "Quarantined",
    "RaisedIncident",
    "Sender",
    "SerialReader",
    "SerialSource",
    "SerialSpecError",
    "StoredObservation",
    "iso",
    "parse_serial_spec",
    "quarantine_rows",
    "raw_opener",
    "read_key_file",
    "write_key_file",
]
