"""Shared FastAPI dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from kraken.core.security import read_access_token
from kraken.models import User

if TYPE_CHECKING:
    from kraken.api.state import ServerState
    from kraken.core.db import Database

bearer = HTTPBearer(auto_error=False)


def get_state(request: Request) -> ServerState:
    return request.app.state.kraken  # type: ignore[no-any-return]


StateDep = Annotated["ServerState", Depends(get_state)]


def get_db(request: Request) -> Database:
    return get_state(request).runtime.db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_db(request).session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def current_user(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    token = creds.credentials if creds else request.query_params.get("access_token")
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not logged in", {"WWW-Authenticate": "Bearer"})
    state = get_state(request)
    username = read_access_token(token, state.secret_key)
    if username is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or expired token", {"WWW-Authenticate": "Bearer"})
    async with state.runtime.db.session(quick=True) as session:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown user", {"WWW-Authenticate": "Bearer"})
    return user


UserDep = Annotated[User, Depends(current_user)]

