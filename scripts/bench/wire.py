"""A loopback TCP proxy in front of PostgreSQL that counts round trips on the wire.

Each client message that makes the client wait for the server is one round trip: a simple
Query ('Q'), or a Sync ('S') closing an extended-protocol Parse/Bind/Execute batch. That counts
what SQLAlchemy's events cannot see: the driver's own BEGIN and COMMIT. The client must not
ask for TLS (sslmode=disable), or the stream could not be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
MAX_STARTUP_PACKETS = 4


@dataclass
class WireCounter:
    upstream_host: str = "127.0.0.1"
    upstream_port: int = 5432
    round_trips: int = 0
    # What each round trip carried: the SQL text, or the name of an already prepared statement.
    trips: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    def mark(self) -> int:
        return len(self.trips)

    def since(self, mark: int) -> list[str]:
        return self.trips[mark:]

    def _record(self, label: str) -> None:
        self.round_trips += 1
        self.trips.append(" ".join(label.split()))

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        pumps = [
            asyncio.create_task(self._from_client(client_r, server_w)),
            asyncio.create_task(_copy(server_r, client_w)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_w, server_w):
                writer.close()

    async def _from_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            # Startup packets have no type byte; an SSL/GSS request may precede the real one.
            for _ in range(MAX_STARTUP_PACKETS):
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                writer.write(head + await reader.readexactly(length - 8))
                await writer.drain()
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    break
            pending: str | None = None
            # Server-side name -> SQL, per connection: each connection numbers its own statements.
            prepared: dict[str, str] = {}
            while True:
                head = await reader.readexactly(5)
                kind = head[:1]
                (length,) = struct.unpack("!i", head[1:])
                body = await reader.readexactly(length - 4)
                if kind == b"Q":
                    self._record(_cstring(body, 0))
                elif kind == b"P":
                    name_end = body.index(b"\0")
                    pending = _cstring(body, name_end + 1)
                    if name_end:
                        prepared[body[:name_end].decode()] = pending
                elif kind == b"B" and pending is None:
                    name = _cstring(body, body.index(b"\0") + 1)
                    pending = f"[prepared {name}] {prepared.get(name, '?')}"
                elif kind == b"S":
                    self._record(pending or "(sync)")
                    pending = None
                writer.write(head + body)
                await writer.drain()
                if kind == b"X":
                    return


def _cstring(data: bytes, start: int) -> str:
    end = data.index(b"\0", start)
    return data[start:end].decode("utf-8", "replace")


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            writer.write(chunk)
            await writer.drain()
