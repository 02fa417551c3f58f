"""OpenID Connect login, the browser side (``docs/auth.md``): which providers there are, the start
(a redirect to the provider), the callback, and the hand-over of the login token to the web UI.

What the callback must find again (state, nonce, PKCE verifier, where to go next) travels in a
cookie signed by the server, HttpOnly, limited to ``/api/auth/oidc`` and to ten minutes: no
server-side store, so any API process of a scaled-out server can take the callback.

The login token never appears in a URL (nor so in a log or the browser's history): the callback
puts it in a second cookie, HttpOnly, ``SameSite=Strict``, limited to ``/api/auth/oidc/token``
and to two minutes, and sends the browser to ``/login?oidc=1``; the web UI then calls
``POST /api/auth/oidc/token``, which answers the token once and deletes the cookie.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from kraken.api.deps import StateDep
from kraken.control.provider_users import GroupMapping, NameTaken, sync_provider_user
from kraken.core.clock import utcnow
from kraken.core.oidc import OidcClient, OidcRefused, OidcUnavailable
from kraken.core.security import create_access_token, read_access_token
from kraken.schemas.api import LoginProvidersOut, OidcProviderOut, TokenOut
from kraken.schemas.users import USERNAME_PATTERN

router = APIRouter(tags=["auth"])
log = logging.getLogger(__name__)

FLOW_COOKIE = "kraken_oidc_flow"
TOKEN_COOKIE = "kraken_oidc_token"
FLOW_PATH = "/api/auth/oidc"
TOKEN_PATH = "/api/auth/oidc/token"
FLOW_SECONDS = 600
TOKEN_SECONDS = 120
FLOW_AUDIENCE = "kraken-oidc-flow"
START_URL = "/api/auth/oidc/start"
UNAVAILABLE = "the OpenID Connect provider cannot be used now: try again later"
ERROR_PAGE = (
    '<!doctype html><meta charset="utf-8"><title>Kraken: login failed</title>'
    '<h1>The login did not succeed</h1><p data-testid="oidc-error">{detail}</p>'
    '<p><a href="/login">Back to the login page</a></p>'
)


def _client(request: Request) -> OidcClient:
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "OpenID Connect login is not configured")
    return client


def _flow_key(state: StateDep) -> str:
    """Not the login tokens' key itself: a flow cookie can never pass for a login token."""
    return f"{state.secret_key}:oidc-flow"


def _secure(state: StateDep) -> bool:
    return (state.runtime.settings.public_url or "").startswith("https://")


def safe_next_path(target: str | None) -> str:
    """A path of this site only (no ``//host`` nor ``/\\host``): no open redirect."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/"


def _unavailable_error(exc: OidcUnavailable) -> HTTPException:
    """The reason (the provider's address, the error) goes to the log, not to anonymous callers."""
    log.error("OpenID Connect provider: %s", exc)
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE)


def _refusal(request: Request, state: StateDep, exc: HTTPException) -> Response:
    """A refused login, with its status: a short page for a browser (the login ends here, in
    front of a person), JSON for other clients.  The flow cookie is dropped: it served once."""
    detail = str(exc.detail)
    response: Response
    if "text/html" in request.headers.get("accept", ""):
        page = ERROR_PAGE.format(detail=html.escape(detail))
        response = HTMLResponse(page, status_code=exc.status_code)
    else:
        response = JSONResponse({"detail": detail}, status_code=exc.status_code)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=_secure(state))
    return response


@router.get("/auth/providers", response_model=LoginProvidersOut)
async def providers(request: Request, state: StateDep) -> LoginProvidersOut:
    """Anonymous: the login page offers "Log in with …" for each provider configured."""
    settings = state.runtime.settings
    oidc = None
    if request.app.state.oidc is not None:
        oidc = OidcProviderOut(name=settings.oidc_display_name, start_url=START_URL)
    return LoginProvidersOut(ldap=settings.ldap_url is not None, oidc=oidc)


@router.get(
    "/auth/oidc/start",
    response_class=RedirectResponse,
    response_model=None,
    status_code=status.HTTP_302_FOUND,
    responses={
        302: {"description": "to the provider's authorization endpoint, with a signed flow cookie"},
        404: {"description": "OpenID Connect login is not configured"},
        503: {"description": "the provider cannot be reached"},
    },
)
async def start(
    request: Request,
    state: StateDep,
    next_path: Annotated[
        str | None, Query(alias="next", max_length=2000, description="a path of Kraken to go to afterwards")
    ] = None,
) -> Response:
    """Sends the browser to the provider (authorization-code flow, PKCE S256)."""
    client = _client(request)
    try:
        flow = await client.start()
    except OidcUnavailable as exc:
        return _refusal(request, state, _unavailable_error(exc))
    now = utcnow()
    payload: dict[str, Any] = {
        "aud": FLOW_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=FLOW_SECONDS),
        "state": flow.state,
        "nonce": flow.nonce,
        "verifier": flow.verifier,
        "next": safe_next_path(next_path),
    }
    response = RedirectResponse(flow.url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        FLOW_COOKIE,
        jwt.encode(payload, _flow_key(state), algorithm="HS256"),
        max_age=FLOW_SECONDS,
        path=FLOW_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(state),
    )
    return response


def _read_flow(request: Request, state: StateDep, returned_state: str | None) -> dict[str, Any]:
    cookie = request.cookies.get(FLOW_COOKIE)
    if not cookie:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "no OpenID Connect login was started in this browser, or it took more than 10 minutes: log in again",
        )
    try:
        flow: dict[str, Any] = jwt.decode(
            cookie, _flow_key(state), algorithms=["HS256"], audience=FLOW_AUDIENCE, options={"require": ["exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the login took more than 10 minutes: log in again") from exc
    except jwt.PyJWTError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the login's cookie is not Kraken's: log in again") from exc
    if not returned_state or returned_state != flow.get("state"):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "the state sent back by the provider is not the one of this login"
        )
    return flow


@router.get(
    "/auth/oidc/callback",
    response_class=RedirectResponse,
    response_model=None,
    status_code=status.HTTP_303_SEE_OTHER,
    responses={
        303: {"description": "to /login?oidc=1 (the web UI fetches the token), with a one-time token cookie"},
        400: {"description": "no login started here, or a wrong state"},
        401: {"description": "the provider refused, or its ID token fails a check"},
        403: {"description": "the user is disabled"},
        409: {"description": "the name belongs to another provider's user or a local account"},
        503: {"description": "the provider cannot be reached"},
    },
)
async def callback(
    request: Request,
    state: StateDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state_: Annotated[str | None, Query(alias="state", max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Where the provider sends the browser back: checks the state, exchanges the code, checks
    the ID token, creates or updates the ``oidc`` user with the roles of their groups."""
    try:
        return await _finish_login(request, state, code, state_, error, error_description)
    except HTTPException as exc:
        return _refusal(request, state, exc)


async def _finish_login(
    request: Request,
    state: StateDep,
    code: str | None,
    state_: str | None,
    error: str | None,
    error_description: str | None,
) -> Response:
    client = _client(request)
    flow = _read_flow(request, state, state_)
    if error or not code:
        reason = re.sub(r"[^\w .,:;'()-]", "", f"{error or 'no code'}: {error_description or ''}")[:300]
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"the provider refused the login ({reason.strip(': ')})")
    try:
        identity = await client.finish(code, str(flow["verifier"]), str(flow["nonce"]))
    except OidcUnavailable as exc:
        raise _unavailable_error(exc) from exc
    except OidcRefused as exc:
        log.warning("OpenID Connect login refused: %s", exc)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"OpenID Connect login refused: {exc}") from exc
    if len(identity.username) > 100 or not re.match(USERNAME_PATTERN, identity.username):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"the provider's user name {identity.username[:100]!r} is not a valid Kraken user name "
            "(letters, digits, . _ @ -): choose another claim (KRAKEN_OIDC_USERNAME_CLAIM)",
        )
    settings = state.runtime.settings
    mapping = GroupMapping.of(settings.oidc_admin_groups, settings.oidc_group_roles)
    try:
        async with state.write() as (session, _effects):
            user = await sync_provider_user(
                session, "oidc", identity.username, identity.groups, mapping, identity.subject
            )
    except NameTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}: an administrator must rename one of them") from exc
    if user.disabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the user is disabled")
    token = create_access_token(user.username, state.secret_key, settings.access_token_minutes, user.token_generation)
    response = RedirectResponse(
        f"/login?oidc=1&next={quote(safe_next_path(flow.get('next')), safe='/')}", status_code=status.HTTP_303_SEE_OTHER
    )
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=_secure(state))
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=TOKEN_SECONDS,
        path=TOKEN_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(state),
    )
    return response


@router.post("/auth/oidc/token", response_model=TokenOut)
async def token(request: Request, response: Response, state: StateDep) -> TokenOut:
    """The login token of the OpenID Connect login that just ended in this browser, once (its
    cookie is deleted); 401 when there is none."""
    _client(request)
    value = request.cookies.get(TOKEN_COOKIE)
    response.delete_cookie(TOKEN_COOKIE, path=TOKEN_PATH, httponly=True, samesite="strict", secure=_secure(state))
    if not value or read_access_token(value, state.secret_key) is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "no OpenID Connect login to finish in this browser: log in again"
        )
    return TokenOut(access_token=value)
