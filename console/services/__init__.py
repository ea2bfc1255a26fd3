"""The one service API every caller (TUI, CLI, hub) goes through."""
