"""Log in; who am I; health."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlmodel import select

from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.core.security import create_access_token, verify_password
from kraken.models import User
from kraken.schemas.api import LoginIn, TokenOut, UserOut
from kraken.schemas.responses import HealthOut

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=TokenOut)
async def login(body: LoginIn, session: SessionDep, state: StateDep) -> TokenOut:
    user = (await session.execute(select(User).where(User.username == body.username))).scalar_one_or_none()
    if user is None or not verify_password(body.password, user.password_hash):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    minutes = state.runtime.settings.access_token_minutes
    return TokenOut(access_token=create_access_token(user.username, state.secret_key, minutes))


@router.get("/auth/me", response_model=UserOut)
async def me(user: UserDep) -> User:
    return user


@router.get("/health", response_model=HealthOut, tags=["health"])
async def health(state: StateDep) -> dict[str, str]:
    return {"status": "ok", "role": state.runtime.role, "instance": state.instance_id}
