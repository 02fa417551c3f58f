"""Projects and their branches (management: ``kraken.api.routes.branches_admin``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.audit import audit_change, audit_project
from kraken.api.authz import AdminOnly, LoggedInOnly, maintainer, viewer, visible_projects
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Branch, Project
from kraken.schemas.api import BranchIn, BranchOut, BranchUpdate, ProjectIn, ProjectOut
from kraken.schemas.ints import Id

router = APIRouter(tags=["projects"])


def _shown(include_archived: bool) -> list[Any]:
    return [] if include_archived else [col(Branch.archived).is_(False)]


async def project_out(session: AsyncSession, project: Project, include_archived: bool = False) -> ProjectOut:
    branches = (
        await session.execute(
            select(Branch).where(Branch.project_id == project.id, *_shown(include_archived)).order_by(col(Branch.id))
        )
    ).scalars()
    out = ProjectOut.model_validate(project)
    out.branches = [BranchOut.model_validate(b) for b in branches]
    return out


@router.get("/projects", response_model=list[ProjectOut], dependencies=[LoggedInOnly])
async def list_projects(session: SessionDep, user: UserDep, include_archived: bool = False) -> list[ProjectOut]:
    """The projects the caller can see, with their branches; archived ones only with ``include_archived``."""
    where = [] if include_archived else [col(Project.archived).is_(False)]
    visible = await visible_projects(session, user)
    if visible is not None:
        where.append(col(Project.id).in_(visible))
    projects = (await session.execute(select(Project).where(*where).order_by(col(Project.name)))).scalars().all()
    branches = (
        (await session.execute(select(Branch).where(*_shown(include_archived)).order_by(col(Branch.id))))
        .scalars()
        .all()
    )
    out = []
    for p in projects:
        po = ProjectOut.model_validate(p)
        po.branches = [BranchOut.model_validate(b) for b in branches if b.project_id == p.id]
        out.append(po)
    return out


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED, dependencies=[AdminOnly])
async def create_project(body: ProjectIn, request: Request, state: StateDep, _: UserDep) -> ProjectOut:
    async with state.write() as (session, _effects):
        if (await session.execute(select(Project.id).where(Project.name == body.name))).first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"a project named '{body.name}' exists")
        project = Project(name=body.name, description=body.description, public=body.public)
        session.add(project)
        await session.flush()
    audit_project(request, project.id or 0)
    return ProjectOut.model_validate(project)


@router.get("/projects/{project_id}", response_model=ProjectOut, dependencies=[viewer("project_id")])
async def get_project(project_id: Id, session: SessionDep, _: UserDep, include_archived: bool = False) -> ProjectOut:
    """A project (archived or not) with its branches; archived branches only with ``include_archived``."""
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return await project_out(session, project, include_archived)


@router.post(
    "/projects/{project_id}/branches",
    response_model=BranchOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[maintainer("project_id")],
)
async def create_branch(project_id: Id, body: BranchIn, state: StateDep, _: UserDep) -> Branch:
    async with state.write() as (session, _effects):
        if await session.get(Project, project_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
        dup = await session.execute(
            select(Branch.id).where(Branch.project_id == project_id, sa.func.lower(Branch.name) == body.name.lower())
        )
        if dup.first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"the project has a branch named '{body.name}'")
        branch = Branch(project_id=project_id, name=body.name, branch_name=body.branch_name, repo_url=body.repo_url)
        session.add(branch)
        await session.flush()
    return branch


@router.get("/branches/{branch_id}", response_model=BranchOut, dependencies=[viewer("branch_id")])
async def get_branch(branch_id: Id, session: SessionDep, _: UserDep) -> Branch:
    branch = await session.get(Branch, branch_id)
    if branch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    return branch


@router.patch("/branches/{branch_id}", response_model=BranchOut, dependencies=[maintainer("branch_id")])
async def update_branch(branch_id: Id, body: BranchUpdate, request: Request, state: StateDep, _: UserDep) -> Branch:
    """Change a branch's name, repository branch, repository URL or environment variables."""
    async with state.write() as (session, _effects):
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        if body.name is not None and body.name.lower() != branch.name.lower():
            dup = await session.execute(
                select(Branch.id).where(
                    Branch.project_id == branch.project_id,
                    sa.func.lower(Branch.name) == body.name.lower(),
                    Branch.id != branch_id,
                )
            )
            if dup.first():
                raise HTTPException(status.HTTP_409_CONFLICT, f"the project has a branch named '{body.name}'")
        changes = body.model_dump(exclude_unset=True)
        for key in ("name", "branch_name"):
            if key in changes and changes[key] is None:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"'{key}' cannot be null")
        if "env_vars" in changes:
            changes["env_vars"] = dict(changes["env_vars"] or {})
        before = {key: getattr(branch, key) for key in changes}
        for key, value in changes.items():
            setattr(branch, key, value)
        audit_change(request, before, changes)
        await session.flush()
    return branch
