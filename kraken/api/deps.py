"""Shared FastAPI dependencies: state, sessions, and who is calling (login token or personal
access token).  What the caller may do is decided in ``kraken.api.authz``."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.security import PAT_PREFIX, STREAM_PURPOSES, read_access_token, read_stream_token, token_digest
from kraken.core.transient import retry_dropped
from kraken.models import User
from kraken.models.access import ApiToken
from kraken.models.base import utcnow

if TYPE_CHECKING:
    from kraken.api.state import ServerState
    from kraken.core.db import Database

bearer = HTTPBearer(auto_error=False)

SCOPES = ("read", "trigger", "write", "admin")
"""Scopes of personal access tokens; a login token has them all."""

LAST_USED_PRECISION = timedelta(minutes=1)  # a token's last use is written at most once a minute


def get_state(request: Request) -> ServerState:
    return request.app.state.kraken  # type: ignore[no-any-return]


StateDep = Annotated["ServerState", Depends(get_state)]


def get_db(request: Request) -> Database:
    return get_state(request).runtime.db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_db(request).session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    """The caller: a user, and the scopes of the token used (all of them for a login token)."""

    user: User
    scopes: frozenset[str]
    token_id: int | None = None  # the personal access token used, if any
    stream: bool = False  # a short-lived stream/download token from the address


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def _refuse_barred(state: ServerState, user: User) -> None:
    """A disabled user, or a local account while local accounts are turned off, acts no more."""
    if user.disabled:
        raise _unauthorized("the user is disabled")
    if user.provider == "local" and not state.runtime.settings.allows_local(user.username):
        raise _unauthorized("local accounts are turned off")


# The caller's lookups run once more when the database dropped the connection under them (a
# restart, a failover): a request must not fail because of what happened to a pooled connection.
async def _user_named(state: ServerState, username: str) -> User | None:
    async with state.runtime.db.session(quick=True) as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def _api_token(state: ServerState, token_id: int) -> ApiToken | None:
    async with state.runtime.db.session(quick=True) as session:
        return await session.get(ApiToken, token_id)


async def _from_api_token(state: ServerState, token: str) -> Principal:
    now = utcnow()

    async def read() -> Any:
        async with state.runtime.db.session(quick=True) as session:
            return (
                await session.execute(
                    select(ApiToken, User)
                    .join(User, col(User.id) == col(ApiToken.user_id))
                    .where(ApiToken.token_hash == token_digest(token))
                )
            ).one_or_none()

    row = await retry_dropped(read, "API token")
    if row is None:
        raise _unauthorized("unknown API token")
    api_token, user = row
    if api_token.revoked:
        raise _unauthorized("the API token was revoked")
    if api_token.expires is not None and api_token.expires <= now:
        raise _unauthorized("the API token has expired")
    _refuse_barred(state, user)
    if api_token.last_used is None or now - api_token.last_used >= LAST_USED_PRECISION:
        async with state.runtime.db.transaction(quick=True) as session:
            stored = await session.get(ApiToken, api_token.id)
            if stored is not None:
                stored.last_used = now
    return Principal(user, frozenset(api_token.scopes.split()), api_token.id)


async def _from_login_token(state: ServerState, token: str) -> Principal:
    claims = read_access_token(token, state.secret_key)
    if claims is None:
        if read_stream_token(token, state.secret_key) is not None:
            raise _unauthorized("a stream token is taken only as ?access_token= by the stream or download it is for")
        raise _unauthorized("invalid or expired token")
    username, generation = claims
    user = await retry_dropped(functools.partial(_user_named, state, username), "login token")
    if user is None:
        raise _unauthorized("unknown user")
    _refuse_barred(state, user)
    if user.token_generation != generation:
        raise _unauthorized("the session has ended (logged out, password changed or user disabled)")
    return Principal(user, frozenset(SCOPES))


QUERY_TOKEN_ATTR = "__kraken_query_token__"
F = TypeVar("F", bound=Callable[..., Any])


def query_token(purpose: str) -> Callable[[F], F]:
    """Marks a route (a live stream, a download) that also takes a short-lived token of this
    purpose as ``?access_token=`` (``POST /api/auth/stream-token``), or as its path parameter
    ``access_token`` (a report's pages, whose relative links must keep it): an EventSource or a
    download link cannot send the Authorization header.  No other route reads the address."""
    if purpose not in STREAM_PURPOSES:
        raise ValueError(f"unknown stream token purpose {purpose!r}")

    def mark(endpoint: F) -> F:
        setattr(endpoint, QUERY_TOKEN_ATTR, purpose)
        return endpoint

    return mark


async def _from_stream_token(state: ServerState, token: str, purpose: str | None) -> Principal:
    if token.startswith(PAT_PREFIX) or read_access_token(token, state.secret_key) is not None:
        raise _unauthorized(
            "a login or personal access token goes in the Authorization header, never in the address;"
            " for a live stream or a download get a short-lived one from POST /api/auth/stream-token"
        )
    if purpose is None:
        raise _unauthorized(
            "this route takes no token in the address (only live streams and downloads do):"
            " use the Authorization header"
        )
    claims = read_stream_token(token, state.secret_key)
    if claims is None:
        raise _unauthorized("invalid or expired stream token: get a new one from POST /api/auth/stream-token")
    if claims.purpose != purpose:
        raise _unauthorized(f"this stream token is for '{claims.purpose}', this route needs one for '{purpose}'")
    user = await retry_dropped(functools.partial(_user_named, state, claims.username), "stream token")
    api_token = None
    if claims.api_token_id is not None:
        api_token = await retry_dropped(functools.partial(_api_token, state, claims.api_token_id), "stream token")
    if user is None or user.disabled:
        raise _unauthorized("the stream token's user is unknown or disabled")
    if user.token_generation != claims.generation:
        raise _unauthorized("the session has ended (logged out, password changed or user disabled)")
    if claims.api_token_id is not None and (
        api_token is None or api_token.revoked or (api_token.expires is not None and api_token.expires <= utcnow())
    ):
        raise _unauthorized("the API token that made this stream token is revoked or expired")
    return Principal(user, frozenset({"read"}), claims.api_token_id, stream=True)


async def current_principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller, checked against the user's state on every request (a disabled user or an
    ended session is refused at once).  The token goes in the Authorization header; only the
    routes marked ``@query_token`` take a short-lived stream token in the address."""
    state = get_state(request)
    if creds:
        token = creds.credentials
        principal = (
            await _from_api_token(state, token)
            if token.startswith(PAT_PREFIX)
            else await _from_login_token(state, token)
        )
    else:
        # a report's pages (kraken.api.routes.reports) carry it in the path, where their relative
        # links keep it; only routes marked @query_token accept one at all (below)
        token = request.query_params.get("access_token") or request.path_params.get("access_token") or ""
        if not token:
            raise _unauthorized("not logged in")
        purpose = getattr(request.scope.get("endpoint"), QUERY_TOKEN_ATTR, None)
        principal = await _from_stream_token(state, token, purpose)
    request.state.principal = principal  # for the audit log (kraken.api.audit)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: PrincipalDep) -> User:
    return principal.user


UserDep = Annotated[User, Depends(current_user)]
