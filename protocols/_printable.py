"""Text from outside made safe to put on a terminal.

Free text arrives from EHPADs, other SAMU centres (Hub Santé imports), rosters and
physicians' keyboards. A terminal executes control sequences: ``ESC ] 0;…BEL`` retitles
the window, ``ESC [2J`` wipes the screen, and worse sequences exist. Every place that
shows such text on a terminal (the Textual apps, the text output of the commands)
passes it through :func:`printable`, which shows each control character as a visible
escape instead of sending it: the text stays readable and the trace stays faithful.
Newlines and tabs are kept; so are all printable characters of every script.
"""

from __future__ import annotations

import re

#: C0 and C1 controls except tab and newline, DEL, and the bidirectional overrides and
#: isolates (which can make a line read differently from what it holds).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` (or ``\\uNNNN``)."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape, text)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character :func:`printable` would escape."""
    return _UNSAFE.search(text) is not None
