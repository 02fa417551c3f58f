"""Projects and their branches."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from sqlmodel import col, select

from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Branch, Project
from kraken.schemas.api import BranchIn, BranchOut, ProjectIn, ProjectOut
from kraken.schemas.ints import Id

router = APIRouter(tags=["projects"])


async def _project_out(session: SessionDep, project: Project) -> ProjectOut:
    branches = (
        await session.execute(select(Branch).where(Branch.project_id == project.id).order_by(col(Branch.id)))
    ).scalars()
    out = ProjectOut.model_validate(project)
    out.branches = [BranchOut.model_validate(b) for b in branches]
    return out


@router.get("/projects", response_model=list[ProjectOut])
async def list_projects(session: SessionDep, _: UserDep) -> list[ProjectOut]:
    projects = (await session.execute(select(Project).order_by(col(Project.name)))).scalars().all()
    branches = (await session.execute(select(Branch).order_by(col(Branch.id)))).scalars().all()
    out = []
    for p in projects:
        po = ProjectOut.model_validate(p)
        po.branches = [BranchOut.model_validate(b) for b in branches if b.project_id == p.id]
        out.append(po)
    return out


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
async def create_project(body: ProjectIn, state: StateDep, _: UserDep) -> ProjectOut:
    async with state.write() as (session, _effects):
        if (await session.execute(select(Project.id).where(Project.name == body.name))).first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"a project named '{body.name}' exists")
        project = Project(name=body.name, description=body.description)
        session.add(project)
        await session.flush()
    return ProjectOut.model_validate(project)


@router.get("/projects/{project_id}", response_model=ProjectOut)
async def get_project(project_id: Id, session: SessionDep, _: UserDep) -> ProjectOut:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return await _project_out(session, project)


@router.post("/projects/{project_id}/branches", response_model=BranchOut, status_code=status.HTTP_201_CREATED)
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


@router.get("/branches/{branch_id}", response_model=BranchOut)
async def get_branch(branch_id: Id, session: SessionDep, _: UserDep) -> Branch:
    branch = await session.get(Branch, branch_id)
    if branch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    return branch
