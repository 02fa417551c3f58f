"""A TCP proxy between an agent and its server, to make the agent lose its server mid-job.

Three faults: ``cut()`` aborts every open connection (the agent sees the connection drop);
``refusing = True`` resets every new connection at once (the server is down); ``stall()``
stops forwarding on the open connections without closing them (a half-open connection: the
server went silent, no FIN, no RST), while new connections are forwarded as usual (the load
balancer sends them to a replica that answers).
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.procs import free_port


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.connections = 0
        self.refusing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: set[asyncio.Event] = set()  # one per open connection: cleared when stalled
        self._stalled: set[asyncio.Event] = set()
        self._server: asyncio.Server | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.connections += 1
        self._writers.update((writer, up_writer))
        flowing = asyncio.Event()
        flowing.set()
        self._flowing.add(flowing)
        self.connected.set()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    await flowing.wait()  # stalled: what was read is held, nothing more is read
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
        self._flowing.discard(flowing)
        self._stalled.discard(flowing)

    def cut(self) -> None:
        """Abort every open connection (the listening socket stays, so the agent can reconnect)."""
        self.connected.clear()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        for flowing in self._stalled:  # let their pipes end (on the aborted transports)
            flowing.set()

    def stall(self) -> None:
        """Stop forwarding on every open connection, in both directions, without closing it."""
        self.connected.clear()
        for flowing in self._flowing:
            flowing.clear()
        self._stalled |= self._flowing
        self._flowing = set()  # connections made from now on flow

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
