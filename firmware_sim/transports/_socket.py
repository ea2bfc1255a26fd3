"""Serial over TCP: ``socket://127.0.0.1:PORT``, as pyserial's ``serial_for_url`` opens it.

This is how terminal servers (Moxa, Digi) expose real serial devices on a network, and it
keeps tests hardware-free. The port listens on loopback unless told otherwise, sends every
byte to every connected client, and drops bytes while no client is connected (nobody is on
the line) or when a client's send buffer is full (no flow control), counting them.
"""

from __future__ import annotations

import asyncio
import contextlib


class SocketPort:
    """A TCP listener carrying one device's serial stream. Create with :meth:`open`."""

    #: Bytes a client may have queued before we drop for it (slow consumer).
    HIGH_WATER = 256 * 1024

    def __init__(self, server: asyncio.Server, host: str, port: int) -> None:
        self._server = server
        self.host = host
        self.port = port
        self._clients: set[asyncio.StreamWriter] = set()
        self.dropped = 0
        self.written = 0

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0) -> SocketPort:
        """Listen on ``host:port`` (port 0: a free one). Needs a running event loop."""
        holder: list[SocketPort] = []

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            this = holder[0]
            this._clients.add(writer)
            try:
                # Anything the consumer sends (a real device would see commands) is read and
                # discarded; EOF means it hung up.
                while await reader.read(4096):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                this._clients.discard(writer)
                writer.close()

        server = await asyncio.start_server(on_client, host, port)
        bound = server.sockets[0].getsockname()[1]
        holder.append(cls(server, host, int(bound)))
        return holder[0]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"socket://{host}:{self.port}"

    @property
    def clients(self) -> int:
        return len(self._clients)

    def write(self, data: bytes) -> None:
        if not self._clients:
            self.dropped += len(data)
            return
        for writer in list(self._clients):
            transport = writer.transport
            if transport.is_closing():
                self._clients.discard(writer)
                continue
            if transport.get_write_buffer_size() > self.HIGH_WATER:
                self.dropped += len(data)
                continue
            writer.write(data)
            self.written += len(data)

    def close(self) -> None:
        for writer in list(self._clients):
            with contextlib.suppress(Exception):
                writer.close()
        self._clients.clear()
        self._server.close()
