"""``GET /metrics``: Prometheus text format, for every role.

- ``kraken serve`` / ``kraken server``: on the API's port (``install``: the route, a middleware
  timing requests by route template, the loop-lag probe);
- ``kraken controller`` / ``kraken worker``: a small listener of their own (``listener.py``).

With ``KRAKEN_METRICS_TOKEN`` set, a scrape needs ``Authorization: Bearer <token>``; without it
the endpoint is open: it shows counts, durations, route templates and agents group names, never
a secret, a project's name or a log line.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kraken.observability.background import running
from kraken.observability.exposition import authorized, render
from kraken.observability.gauges import GAUGES
from kraken.observability.listener import Refresh, maybe_listen
from kraken.observability.metrics import HTTP_DURATION, set_role
from kraken.observability.settings import MetricsSettings

if TYPE_CHECKING:
    from kraken.runtime import Runtime

log = logging.getLogger(__name__)


async def refresh_database(runtime: Runtime) -> None:
    """Renew the database gauges (at most every two seconds); a failure leaves the process's own
    metrics answering, with ``kraken_database_up 0``."""
    try:
        await GAUGES.refresh(runtime.db, runtime.settings.agent_timeout)
    except Exception as exc:
        log.warning("metrics: reading the database failed: %r", exc)


def router(runtime: Runtime, settings: MetricsSettings) -> APIRouter:
    r = APIRouter()

    @r.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), settings.token):
            return Response(
                "metrics need 'Authorization: Bearer <KRAKEN_METRICS_TOKEN>'\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
                media_type="text/plain",
            )
        await refresh_database(runtime)
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    return r


_SUFFIXES: dict[str, re.Pattern[str]] = {}


def route_template(scope: Scope) -> str:
    """The matched route's full path template.  A route included with a router's prefix may carry
    only its own part (``/flows/{flow_id}``): the prefix is what the raw path has before it."""
    route: Any = scope.get("route")
    suffix = getattr(route, "path", None)
    if not isinstance(suffix, str):
        return "unmatched"
    pattern = _SUFFIXES.get(suffix)
    if pattern is None:
        regex, _, _ = compile_path(suffix)
        pattern = _SUFFIXES[suffix] = re.compile("^(?P<kraken_prefix>.*?)" + regex.pattern.removeprefix("^"))
    found = pattern.match(str(scope.get("path", "")))
    return (found.group("kraken_prefix") if found else "") + suffix


class TimingMiddleware:
    """Times every HTTP request by its route template (``/api/flows/{flow_id}``, not the raw path),
    and runs the process's observability (``background.running``) for the application's lifetime."""

    def __init__(
        self,
        app: ASGIApp,
        role: str = "server",
        redis_url: str | None = None,
        listener: MetricsSettings | None = None,
        refresh: Refresh | None = None,
    ) -> None:
        self.app = app
        self.role = role
        self.redis_url = redis_url
        self.listener = listener or MetricsSettings(port=None)
        self.refresh = refresh

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with running(self.role, self.redis_url), maybe_listen(self.listener, self.role, self.refresh):
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = route_template(scope)
            HTTP_DURATION.labels(scope.get("method", ""), template, str(status)).observe(time.perf_counter() - started)


def install(app: FastAPI, runtime: Runtime) -> None:
    """Add ``GET /metrics`` (on the API's port, or on ``KRAKEN_METRICS_PORT`` when set), request
    timing and ``GET /api/diagnostics`` to the API application (before the web UI's catch-all)."""
    from kraken.observability.diagnostics_api import router as diagnostics_router

    settings = MetricsSettings()
    set_role(runtime.role)
    GAUGES.watch_pools(runtime.db)
    if settings.port is None:
        app.include_router(router(runtime, settings))
    app.include_router(diagnostics_router)
    redis_url = None if runtime.embedded else runtime.settings.redis_url

    async def refresh() -> None:
        await refresh_database(runtime)

    app.add_middleware(TimingMiddleware, role=runtime.role, redis_url=redis_url, listener=settings, refresh=refresh)
