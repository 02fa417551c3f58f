"""A small HTTP listener serving ``GET /metrics`` for ``kraken controller`` and ``kraken worker``,
which have no HTTP server of their own.  HTTP/1.0-style: one request per connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST

from kraken.observability.exposition import authorized, render
from kraken.observability.settings import MetricsSettings

log = logging.getLogger(__name__)

MAX_HEAD = 16 << 10

Refresh = Callable[[], Awaitable[None]]  # renews scrape-time gauges before a scrape


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
    return (head + "Connection: close\r\n\r\n").encode() + body


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str | None, refresh: Refresh | None
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if len(head) > MAX_HEAD:
            raise ValueError("request head too large")
        lines = head.decode("latin-1").split("\r\n")
        method, path, *_ = [*lines[0].split(" "), "", ""]
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if method != "GET" or path.split("?")[0] != "/metrics":
            writer.write(_response("404 Not Found", b"only GET /metrics here\n"))
        elif not authorized(headers.get("authorization"), token):
            writer.write(
                _response(
                    "401 Unauthorized",
                    b"metrics need 'Authorization: Bearer <KRAKEN_METRICS_TOKEN>'\n",
                    extra="WWW-Authenticate: Bearer\r\n",
                )
            )
        else:
            if refresh is not None:
                await refresh()
            writer.write(_response("200 OK", render(), CONTENT_TYPE_LATEST))
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class MetricsListener:
    def __init__(self, settings: MetricsSettings, role: str, refresh: Refresh | None = None) -> None:
        self.settings = settings
        self.role = role
        self.refresh = refresh
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        token = self.settings.token
        self._server = await asyncio.start_server(
            lambda r, w: _handle(r, w, token, self.refresh), self.settings.host, self.settings.port, limit=MAX_HEAD
        )
        print(f"kraken {self.role}: metrics on http://{self.settings.host}:{self.port}/metrics", flush=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def maybe_listen(
    settings: MetricsSettings, role: str, refresh: Refresh | None = None
) -> AsyncIterator[MetricsListener | None]:
    """Serve metrics while the block runs, when a port is set (``--metrics-port``)."""
    if settings.port is None:
        yield None
        return
    listener = MetricsListener(settings, role, refresh)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()
