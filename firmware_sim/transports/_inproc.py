"""An in-process byte sink: the serial port of a device in a replay or a test.

No syscalls: a virtual hour of a whole site runs in seconds and a test can inspect every
byte. (The in-process *message* bus is :class:`transport.InprocBus`, shared with the
console side.)
"""

from __future__ import annotations

from collections.abc import Callable


class InprocPort:
    """A byte sink that keeps what it is given (and optionally hands it on at once)."""

    def __init__(self, on_bytes: Callable[[bytes], None] | None = None) -> None:
        self._buffer = bytearray()
        self._on_bytes = on_bytes
        self.written = 0
        self.url = "inproc://"

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self._on_bytes is not None:
            self._on_bytes(data)
        else:
            self._buffer += data

    def read(self) -> bytes:
        """Everything written since the last read."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def close(self) -> None:
        self._buffer.clear()
