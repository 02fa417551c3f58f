"""Users: administrators manage accounts; everyone edits their own name and password.

Disabling a user, or setting their password, raises their token generation: every login token
they hold stops working at once (``kraken.api.deps``), and a disabled user's API tokens too.

Users of a login provider (``provider`` not ``local``) have their name and password in the
provider: changing either here is refused.  With local accounts turned off
(``KRAKEN_LOCAL_ACCOUNTS=false``) only break-glass accounts can be created (``docs/auth.md``)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, func, select

from kraken.api.authz import AdminOnly, LoggedInOnly
from kraken.api.deps import PrincipalDep, SessionDep, StateDep
from kraken.core.security import check_password, hash_password_async
from kraken.models import User
from kraken.models.access import ApiToken, ProjectMember
from kraken.schemas.ints import Id
from kraken.schemas.users import OwnPatch, UserFull, UserIn, UserPatch

router = APIRouter(tags=["users"])


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    return user


async def _refuse_taken(session: AsyncSession, username: str, user_id: int | None) -> None:
    taken = (await session.execute(select(User.id).where(User.username == username))).scalar_one_or_none()
    if taken is not None and taken != user_id:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a user named '{username}' exists")


def _refuse_provider_change(user: User, username: str | None, password: str | None) -> None:
    if user.provider == "local":
        return
    if password is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"password: '{user.username}' logs in through {user.provider}, which keeps it"
        )
    if username is not None and username != user.username:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"username: '{user.username}' logs in through {user.provider}, which names them"
        )


async def _refuse_last_admin(session: AsyncSession, user: User) -> None:
    """An administrator who is the last enabled one cannot lose the role, be disabled or deleted."""
    if not user.is_admin or user.disabled:
        return
    others = (
        select(func.count())
        .select_from(User)
        .where(col(User.is_admin).is_(True), col(User.disabled).is_(False), User.id != user.id)
    )
    if not (await session.execute(others)).scalar_one():
        raise HTTPException(status.HTTP_409_CONFLICT, f"'{user.username}' is the last enabled administrator")


@router.get("/users", response_model=list[UserFull], dependencies=[AdminOnly])
async def list_users(session: SessionDep) -> list[User]:
    return list((await session.execute(select(User).order_by(col(User.username)))).scalars())


@router.post("/users", response_model=UserFull, status_code=status.HTTP_201_CREATED, dependencies=[AdminOnly])
async def create_user(body: UserIn, state: StateDep) -> User:
    """A local (password) account; users of a login provider are created at their first login."""
    if not state.runtime.settings.allows_local(body.username):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"local accounts are turned off (KRAKEN_LOCAL_ACCOUNTS=false) and '{body.username}' is not in"
            " KRAKEN_LOCAL_BREAK_GLASS",
        )
    hashed = await hash_password_async(body.password)
    async with state.write() as (session, _effects):
        await _refuse_taken(session, body.username, None)
        user = User(username=body.username, password_hash=hashed, is_admin=body.is_admin)
        session.add(user)
        await session.flush()
        return user


@router.patch("/users/me", response_model=UserFull, dependencies=[LoggedInOnly])
async def patch_me(body: OwnPatch, state: StateDep, principal: PrincipalDep) -> User:
    """Own name and password; a new password needs ``current_password`` and ends the other sessions
    (log in again)."""
    _refuse_provider_change(principal.user, body.username, body.password)
    hashed = None
    if body.password is not None:
        if body.current_password is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "current_password: needed to set a password")
        if not await check_password(body.current_password, principal.user.password_hash):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password: wrong password")
        hashed = await hash_password_async(body.password)
    async with state.write() as (session, _effects):
        user = await _user(session, principal.user.id or 0)
        if body.username is not None:
            await _refuse_taken(session, body.username, user.id)
            user.username = body.username
        if hashed is not None:
            user.password_hash = hashed
        if body.username is not None or hashed is not None:
            user.token_generation += 1  # login tokens name the user: a new name needs a new login
        await session.flush()
        return user


@router.get("/users/{user_id}", response_model=UserFull, dependencies=[AdminOnly])
async def get_user(user_id: Id, session: SessionDep) -> User:
    return await _user(session, user_id)


@router.patch("/users/{user_id}", response_model=UserFull, dependencies=[AdminOnly])
async def patch_user(user_id: Id, body: UserPatch, state: StateDep) -> User:
    hashed = await hash_password_async(body.password) if body.password is not None else None
    async with state.write() as (session, _effects):
        user = await _user(session, user_id)
        _refuse_provider_change(user, body.username, body.password)
        if body.is_admin is False or body.disabled is True:
            await _refuse_last_admin(session, user)
        ended = False
        if body.username is not None and body.username != user.username:
            await _refuse_taken(session, body.username, user.id)
            user.username, ended = body.username, True
        if hashed is not None:
            user.password_hash, ended = hashed, True
        if body.is_admin is not None:
            user.is_admin = body.is_admin
        if body.disabled is not None:
            ended = ended or (body.disabled and not user.disabled)
            user.disabled = body.disabled
        if ended:
            user.token_generation += 1
        await session.flush()
        return user


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[AdminOnly])
async def delete_user(user_id: Id, state: StateDep, principal: PrincipalDep) -> Response:
    if user_id == principal.user.id:
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot delete yourself")
    async with state.write() as (session, _effects):
        user = await _user(session, user_id)
        await _refuse_last_admin(session, user)
        for table in (ProjectMember, ApiToken):  # also where SQLite does not enforce the foreign keys
            await session.execute(sa.delete(table).where(col(table.user_id) == user_id))
        await session.delete(user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
