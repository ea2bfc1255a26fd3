"""The régulation side: ingest, triage, records, exchange, and the Textual apps.

Everything here but ``console.tui`` is domain code and never imports Textual (an
import-linter contract checks it).
"""
