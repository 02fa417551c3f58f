"""Shared FastAPI dependencies: state, sessions, and who is calling (login token or personal
access token).  What the caller may do is decided in ``kraken.api.authz``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.security import PAT_PREFIX, read_access_token, token_digest
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


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def _refuse_barred(state: ServerState, user: User) -> None:
    """A disabled user, or a local account while local accounts are turned off, acts no more."""
    if user.disabled:
        raise _unauthorized("the user is disabled")
    if user.provider == "local" and not state.runtime.settings.allows_local(user.username):
        raise _unauthorized("local accounts are turned off")


async def _from_api_token(state: ServerState, token: str) -> Principal:
    now = utcnow()
    async with state.runtime.db.session(quick=True) as session:
        row = (
            await session.execute(
                select(ApiToken, User)
                .join(User, col(User.id) == col(ApiToken.user_id))
                .where(ApiToken.token_hash == token_digest(token))
            )
        ).one_or_none()
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
        raise _unauthorized("invalid or expired token")
    username, generation = claims
    async with state.runtime.db.session(quick=True) as session:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if user is None:
        raise _unauthorized("unknown user")
    _refuse_barred(state, user)
    if user.token_generation != generation:
        raise _unauthorized("the session has ended (logged out, password changed or user disabled)")
    return Principal(user, frozenset(SCOPES))


async def current_principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller, checked against the user's state on every request (a disabled user or an
    ended session is refused at once)."""
    token = creds.credentials if creds else request.query_params.get("access_token")
    if not token:
        raise _unauthorized("not logged in")
    state = get_state(request)
    if token.startswith(PAT_PREFIX):
        if not creds:  # a query string ends up in logs and browser histories
            raise _unauthorized("a personal access token goes in the Authorization header, not in the address")
        return await _from_api_token(state, token)
    return await _from_login_token(state, token)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: PrincipalDep) -> User:
    return principal.user


UserDep = Annotated[User, Depends(current_user)]
