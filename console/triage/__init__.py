"""Vectorised triage: NEWS2, qSOFA, shock index, implant alerts → priority P0–P3."""
