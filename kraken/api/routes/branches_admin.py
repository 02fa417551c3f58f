"""Project and branch management: edit a project, archive and delete projects and branches,
delete a stage, set a branch's sequence counters.

Archived (``kraken.control.archive``): hidden from the lists unless asked for, no flow starts.
Deleting removes everything under the project or branch (stages, flows, runs, jobs, logs,
artifacts, test results); it is refused while a flow under it has not completed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.audit import audit_change
from kraken.api.authz import AdminOnly, maintainer
from kraken.api.deps import StateDep, UserDep
from kraken.api.routes.projects import project_out
from kraken.control import orchestration
from kraken.models import Branch, Flow, Project, Run, Stage
from kraken.models.enums import FlowKind, State
from kraken.schemas.admin import SEQUENCES, ProjectPatch, SequencesPatch
from kraken.schemas.api import BranchOut, ProjectOut
from kraken.schemas.ints import Id

router = APIRouter(tags=["projects"])


def _unprocessable(key: str, message: str) -> HTTPException:
    """A 422 in FastAPI's own shape, naming the body key."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_ENTITY, [{"loc": ["body", key], "msg": message, "type": "value_error"}]
    )


def _no_nulls(body: BaseModel) -> None:
    for key in sorted(body.model_fields_set):
        if getattr(body, key) is None:
            raise _unprocessable(key, "may not be null (leave the key out to keep the value)")


async def _project(session: AsyncSession, project_id: int) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return project


async def _branch(session: AsyncSession, branch_id: int) -> Branch:
    branch = await session.get(Branch, branch_id)
    if branch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    return branch


# ------------------------------------------------------------------ projects


@router.patch("/projects/{project_id}", response_model=ProjectOut, dependencies=[maintainer("project_id")])
async def patch_project(
    project_id: Id, body: ProjectPatch, request: Request, state: StateDep, _: UserDep
) -> ProjectOut:
    _no_nulls(body)
    async with state.write() as (session, _effects):
        project = await _project(session, project_id)
        before = {"name": project.name, "description": project.description, "public": project.public}
        if body.name is not None and body.name != project.name:
            taken = await session.execute(select(Project.id).where(Project.name == body.name))
            if taken.first():
                raise HTTPException(status.HTTP_409_CONFLICT, f"a project named '{body.name}' exists")
            project.name = body.name
        if body.description is not None:
            project.description = body.description
        if body.public is not None:
            project.public = body.public
        await session.flush()
        after = {"name": project.name, "description": project.description, "public": project.public}
        audit_change(request, before, after)
        return await project_out(session, project, include_archived=True)


async def _set_project_archived(state: Any, project_id: int, archived: bool) -> ProjectOut:
    async with state.write() as (session, effects):
        project = await _project(session, project_id)
        project.archived = archived
        effects.publish.append(("planner", {}))  # its triggers stop (or start again)
        await session.flush()
        return await project_out(session, project, include_archived=True)


@router.post("/projects/{project_id}/archive", response_model=ProjectOut, dependencies=[maintainer("project_id")])
async def archive_project(project_id: Id, state: StateDep, _: UserDep) -> ProjectOut:
    return await _set_project_archived(state, project_id, True)


@router.post("/projects/{project_id}/unarchive", response_model=ProjectOut, dependencies=[maintainer("project_id")])
async def unarchive_project(project_id: Id, state: StateDep, _: UserDep) -> ProjectOut:
    return await _set_project_archived(state, project_id, False)


async def _refuse_unfinished(session: AsyncSession, branch_ids: list[int], what: str) -> None:
    if not branch_ids:
        return
    unfinished = (
        await session.execute(
            select(sa.func.count())
            .select_from(Flow)
            .where(col(Flow.branch_id).in_(branch_ids), col(Flow.state) != State.COMPLETED)
        )
    ).scalar_one()
    if unfinished:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"{what} has {unfinished} flow(s) not completed: cancel them first"
        )


async def _delete_results(session: AsyncSession, branch_ids: list[int]) -> None:
    """Test results have no foreign keys (``kraken.models.results``): delete them by run."""
    if branch_ids:
        ids = ", ".join(str(int(b)) for b in branch_ids)
        await session.execute(
            sa.text(
                f"DELETE FROM test_result WHERE run_id IN (SELECT run_id FROM results_job WHERE branch_id IN ({ids}))"
            )
        )


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[AdminOnly])
async def delete_project(project_id: Id, state: StateDep, _: UserDep) -> Response:
    async with state.runtime.db.transaction() as session:  # may be large: not on the event loop's thread
        project = await _project(session, project_id)
        branch_ids = [
            int(b) for b in (await session.execute(select(Branch.id).where(Branch.project_id == project_id))).scalars()
        ]
        await _refuse_unfinished(session, branch_ids, f"project '{project.name}'")
        await _delete_results(session, branch_ids)
        await session.execute(sa.text("DELETE FROM test_case WHERE project_id = :p"), {"p": project_id})
        await session.execute(sa.delete(Project).where(col(Project.id) == project_id))  # cascades
    await state.runtime.bus.publish("planner", {})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------ branches


async def _set_branch_archived(state: Any, branch_id: int, archived: bool) -> Branch:
    async with state.write() as (session, effects):
        branch = await _branch(session, branch_id)
        branch.archived = archived
        effects.publish.append(("planner", {}))
        await session.flush()
    return branch


@router.post("/branches/{branch_id}/archive", response_model=BranchOut, dependencies=[maintainer("branch_id")])
async def archive_branch(branch_id: Id, state: StateDep, _: UserDep) -> Branch:
    return await _set_branch_archived(state, branch_id, True)


@router.post("/branches/{branch_id}/unarchive", response_model=BranchOut, dependencies=[maintainer("branch_id")])
async def unarchive_branch(branch_id: Id, state: StateDep, _: UserDep) -> Branch:
    return await _set_branch_archived(state, branch_id, False)


@router.delete(
    "/branches/{branch_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[maintainer("branch_id")],
)
async def delete_branch(branch_id: Id, state: StateDep, _: UserDep) -> Response:
    async with state.runtime.db.transaction() as session:
        branch = await _branch(session, branch_id)
        await _refuse_unfinished(session, [branch_id], f"branch '{branch.name}'")
        await _delete_results(session, [branch_id])
        await session.execute(sa.delete(Branch).where(col(Branch.id) == branch_id))  # cascades
    await state.runtime.bus.publish("planner", {})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _sequence_minimums(session: AsyncSession, branch_id: int) -> dict[str, int]:
    """The lowest value each counter may take: the highest number already given out."""
    flows = dict(
        (
            await session.execute(
                select(Flow.kind, sa.func.max(Flow.seq)).where(Flow.branch_id == branch_id).group_by(col(Flow.kind))
            )
        ).all()
    )
    runs = (
        await session.execute(
            select(sa.func.max(Run.seq)).join(Flow, col(Flow.id) == Run.flow_id).where(Flow.branch_id == branch_id)
        )
    ).scalar()
    return {
        "ci_flow_seq": int(flows.get(FlowKind.CI.value) or 0),
        "dev_flow_seq": int(flows.get(FlowKind.DEV.value) or 0),
        "run_seq": int(runs or 0),
    }


@router.patch("/branches/{branch_id}/sequences", response_model=BranchOut, dependencies=[maintainer("branch_id")])
async def set_sequences(branch_id: Id, body: SequencesPatch, state: StateDep, _: UserDep) -> Branch:
    """Set the branch's sequence counters; none may go below the highest number already used."""
    _no_nulls(body)
    if not body.model_fields_set:
        raise _unprocessable(SEQUENCES[0], f"give at least one of {', '.join(SEQUENCES)}")
    async with state.write() as (session, _effects):
        await _branch(session, branch_id)
        branch = await orchestration.lock_branch(session, branch_id)  # flows being created wait
        minimums = await _sequence_minimums(session, branch_id)
        for key in SEQUENCES:
            value = getattr(body, key)
            if value is not None and value < minimums[key]:
                raise _unprocessable(key, f"cannot be below {minimums[key]}, the highest number already used")
        for key in SEQUENCES:
            if getattr(body, key) is not None:
                setattr(branch, key, getattr(body, key))
    return branch


# ------------------------------------------------------------------ stages


@router.delete("/stages/{stage_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[maintainer("stage_id")])
async def delete_stage(stage_id: Id, state: StateDep, _: UserDep) -> Response:
    """Delete a stage; its past runs stay.  Refused while other stages name it as their parent."""
    async with state.write() as (session, effects):
        stage = await session.get(Stage, stage_id)
        if stage is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"stage {stage_id} not found")
        children = (
            (
                await session.execute(
                    select(Stage.name).where(Stage.branch_id == stage.branch_id, Stage.parent == stage.name)
                )
            )
            .scalars()
            .all()
        )
        if children:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"stage '{stage.name}' is the parent of {', '.join(sorted(children))}: change or delete them first",
            )
        await session.delete(stage)
        effects.publish.append(("planner", {}))  # its triggers go
    return Response(status_code=status.HTTP_204_NO_CONTENT)
