"""Serial ports the way a gateway sees them: real pseudo-terminal pairs.

The firmware writes to the pty master; a consumer opens the slave path with pyserial
(``serial.Serial(path, baudrate=…)``) exactly as it would open ``/dev/ttyUSB0``. The slave
is put in raw mode so CR, LF and 0x00 pass untouched, and the simulator keeps its own slave
descriptor open so the line exists (and buffers) before and between consumers.

The master is non-blocking: when nobody reads and the kernel buffer fills, bytes are
dropped and counted, as a UART without flow control drops them — the simulator must never
stall because a consumer is slow.
"""

from __future__ import annotations

import contextlib
import os
import tty


class PtyPort:
    """One pseudo-terminal pair; ``path`` is what a consumer opens."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.dropped = 0
        self.written = 0
        self._closed = False

    @property
    def url(self) -> str:
        return self.path

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError:  # the line is gone (EIO after close): same as an unplugged cable
            n = 0
        self.written += n
        self.dropped += len(data) - n

    def drain_unread(self) -> bytes:
        """Read back what no consumer took (our own slave end): used by tests and replays."""
        chunks = []
        os.set_blocking(self._slave, False)
        try:
            while True:
                try:
                    chunk = os.read(self._slave, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.set_blocking(self._slave, True)
        return b"".join(chunks)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
