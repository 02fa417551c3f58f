"""Archived projects and branches: hidden from lists by default; no flow starts on them, neither
by hand (409) nor by a trigger (webhook deliveries and timed triggers skip them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.models import Branch, Project


def active_branch() -> Any:
    """A WHERE clause on ``Branch``: neither the branch nor its project is archived."""
    active_projects = select(Project.id).where(col(Project.archived).is_(False))
    return col(Branch.archived).is_(False) & col(Branch.project_id).in_(active_projects)


async def archived_reason(session: AsyncSession, branch: Branch) -> str | None:
    """Why no flow may start on ``branch`` (it or its project is archived), else None."""
    if branch.archived:
        return f"branch '{branch.name}' is archived"
    project = await session.get(Project, branch.project_id)
    if project is not None and project.archived:
        return f"project '{project.name}' is archived"
    return None
