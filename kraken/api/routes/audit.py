"""The audit log: administrators read all of it, maintainers the entries of their projects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import col, select

from kraken.api.authz import LoggedIn, Role, roles_of
from kraken.api.deps import SessionDep
from kraken.models.audit import AuditEntry
from kraken.schemas.audit import AuditEntryOut, AuditPage
from kraken.schemas.ints import Id

router = APIRouter(tags=["audit"])

MAX_PAGE = 500


@router.get("/audit", response_model=AuditPage)
async def audit_log(
    session: SessionDep,
    principal: LoggedIn,
    user: Annotated[str | None, Query(max_length=100, description="a user name")] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    project: Id | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[Id | None, Query(description="entries older than this id (the last page's next_before)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    """Newest first, ``limit`` at a time (keyset: ``before`` is the last page's ``next_before``).
    Entries without a project (users, agents, tokens) are for administrators only."""
    query = select(AuditEntry)
    if not principal.user.is_admin:
        mine = [p for p, role in (await roles_of(session, principal.user)).items() if role >= Role.MAINTAINER]
        if not mine:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the audit log is for administrators and maintainers")
        if project is not None and project not in mine:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"project={project}: you are not a maintainer there")
        query = query.where(col(AuditEntry.project_id).in_(mine))
    if user is not None:
        query = query.where(AuditEntry.username == user)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if project is not None:
        query = query.where(AuditEntry.project_id == project)
    if since is not None:
        query = query.where(col(AuditEntry.created) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.created) < until)
    if before is not None:
        query = query.where(col(AuditEntry.id) < before)
    rows = list((await session.execute(query.order_by(col(AuditEntry.id).desc()).limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        items=[AuditEntryOut.model_validate(r) for r in rows],
        next_before=rows[-1].id if more and rows else None,
    )
