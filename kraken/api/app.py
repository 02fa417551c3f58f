"""The FastAPI application of ``kraken serve`` and ``kraken server``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import kraken
from kraken.api.agent_hub import AgentHub
from kraken.api.agent_hub import router as agent_router
from kraken.api.audit import AuditLog
from kraken.api.headers import SecurityHeaders
from kraken.api.limits import BodyLimits
from kraken.api.login_limits import LoginLimits
from kraken.api.routes import (
    agents,
    artifacts,
    audit,
    auth,
    branch_security,
    branches_admin,
    cache,
    comments,
    culprits,
    events,
    failure_groups,
    flows,
    logs,
    members,
    oidc,
    projects,
    quarantine,
    reports,
    results,
    runs,
    secrets,
    stages,
    tokens,
    tools,
    triggers,
    users,
    webhooks,
)
from kraken.api.state import ServerState
from kraken.api.static import web_router
from kraken.control.bootstrap import bootstrap
from kraken.core.migrate import upgrade_in_child
from kraken.core.oidc import OidcClient
from kraken.observability.endpoint import install as install_metrics
from kraken.runtime import Runtime

log = logging.getLogger(__name__)

ROUTER_MODULES = (
    auth,
    oidc,
    projects,
    branches_admin,
    branch_security,
    culprits,
    stages,
    flows,
    runs,
    agents,
    events,
    logs,
    results,
    failure_groups,
    quarantine,
    comments,
    secrets,
    artifacts,
    reports,
    cache,
    webhooks,
    triggers,
    tools,
    users,
    members,
    tokens,
    audit,
)


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api")
    for module in ROUTER_MODULES:
        router.include_router(module.router)
    router.include_router(agent_router)
    return router


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped: a lone surrogate echoed from the input cannot be
    encoded as UTF-8, and must not turn a 422 into a 500."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return AsciiJSONResponse(status_code=422, content={"detail": jsonable_encoder(exc.errors())})


def create_app(runtime: Runtime, *, controller: bool = False, migrate: bool = True) -> FastAPI:
    """``controller`` runs the scheduler and watchdog in this process (``kraken serve``)."""
    state = ServerState(runtime=runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.settings.is_sqlite:
            runtime.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate:
            await upgrade_in_child(runtime.settings.effective_database_url)
        await runtime.start()
        state.secret_key, state.agent_token = await bootstrap(runtime.db, runtime.settings)
        state.hub = AgentHub(state)
        await state.hub.start()
        if controller:
            runtime.start_controller()
        try:
            yield
        finally:
            await state.hub.stop()
            await runtime.stop()

    app = FastAPI(title="Kraken", version=kraken.__version__, lifespan=lifespan)
    app.state.kraken = state
    app.state.login_limits = LoginLimits()
    settings = runtime.settings
    app.state.oidc = OidcClient(settings) if settings.oidc_issuer is not None else None
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(AuditLog)  # innermost: sees the route's endpoint and the caller
    app.add_middleware(BodyLimits)
    app.add_middleware(SecurityHeaders)
    app.include_router(api_router())
    install_metrics(app, runtime)  # GET /metrics and request timing (kraken/observability)
    app.include_router(web_router())  # the web UI at / (after the API: its catch-all comes last)
    return app
