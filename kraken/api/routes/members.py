"""A project's members and their roles (``kraken.api.authz``)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.authz import maintainer, viewer
from kraken.api.deps import SessionDep, StateDep
from kraken.models import User
from kraken.models.access import ProjectMember
from kraken.schemas.ints import Id
from kraken.schemas.users import MemberIn, MemberOut

router = APIRouter(tags=["members"])


async def _members(session: AsyncSession, project_id: int) -> list[MemberOut]:
    rows = await session.execute(
        select(ProjectMember.user_id, User.username, ProjectMember.role)
        .join(User, col(User.id) == col(ProjectMember.user_id))
        .where(ProjectMember.project_id == project_id)
        .order_by(col(User.username))
    )
    return [MemberOut(user_id=u, username=n, role=r) for u, n, r in rows]


@router.get("/projects/{project_id}/members", response_model=list[MemberOut], dependencies=[viewer("project_id")])
async def list_members(project_id: Id, session: SessionDep) -> list[MemberOut]:
    return await _members(session, project_id)


@router.put("/projects/{project_id}/members", response_model=list[MemberOut], dependencies=[maintainer("project_id")])
async def set_members(project_id: Id, body: list[MemberIn], state: StateDep) -> list[MemberOut]:
    """Replaces the project's members with ``[{"user_id", "role"}]``."""
    seen: set[int] = set()
    for i, m in enumerate(body):
        if m.user_id in seen:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, f"[{i}].user_id: user {m.user_id} is listed twice"
            )
        seen.add(m.user_id)
    async with state.write() as (session, _effects):
        known = set((await session.execute(select(User.id).where(col(User.id).in_(seen)))).scalars()) if seen else set()
        for i, m in enumerate(body):
            if m.user_id not in known:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"[{i}].user_id: no user {m.user_id}")
        await session.execute(sa.delete(ProjectMember).where(col(ProjectMember.project_id) == project_id))
        for m in body:
            session.add(ProjectMember(project_id=project_id, user_id=m.user_id, role=m.role))
        await session.flush()
        return await _members(session, project_id)
