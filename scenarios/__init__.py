"""Replayable scenarios (TOML) with expectations, for testers."""

__all__: list[str] = []
