"""The one language both sides speak: message models, frame codecs, MQTT topics and MACs.

Pure encode/decode only: no I/O, no SQLite, no Textual. Every other package depends on
this one; this one depends on none of ours.
"""

__all__: list[str] = []
