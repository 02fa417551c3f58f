"""Stages: create, update (schema code is checked first), list, check without saving."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.authz import LoggedInOnly, maintainer, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Branch, Project, Stage
from kraken.models.base import utcnow
from kraken.schemas.api import StageCheckIn, StageIn, StageOut, StageUpdate
from kraken.schemas.ints import Id
from kraken.schemas.responses import StageCheckOut
from kraken.stage import StageContext, StageSchemaError, check_stage_code, check_stage_graph

router = APIRouter(tags=["stages"])


def schema_error(err: StageSchemaError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, {**err.to_dict(), "message": str(err)})


async def _checked_schema(session: AsyncSession, branch: Branch, name: str, code: str) -> dict[str, Any]:
    """Evaluate the code and check the branch's stage graph with it; raise 422 on any error."""
    project = await session.get(Project, branch.project_id)
    ctx = StageContext(
        branch_name=branch.branch_name,
        project_name=project.name if project else "",
        stage_name=name,
        env=dict(branch.env_vars or {}),  # the branch's environment variables, as at a run
        project_id=branch.project_id,
        branch_id=branch.id,
        branch_display_name=branch.name,
    )
    try:
        schema = await check_stage_code(code, ctx)
        parents: dict[str, str | None] = {
            s.name: s.parent
            for s in (await session.execute(select(Stage).where(Stage.branch_id == branch.id))).scalars()
        }
        parents[name] = schema.get("parent", "root")
        check_stage_graph(parents)
    except StageSchemaError as err:
        raise schema_error(err) from err
    return schema


@router.get("/branches/{branch_id}/stages", response_model=list[StageOut], dependencies=[viewer("branch_id")])
async def list_stages(branch_id: Id, session: SessionDep, _: UserDep) -> list[Stage]:
    rows = await session.execute(select(Stage).where(Stage.branch_id == branch_id).order_by(col(Stage.id)))
    return list(rows.scalars())


@router.post(
    "/branches/{branch_id}/stages", response_model=StageOut, status_code=status.HTTP_201_CREATED,
    dependencies=[maintainer("branch_id")],
)
async def create_stage(branch_id: Id, body: StageIn, state: StateDep, _: UserDep) -> Stage:
    async with state.write() as (session, effects):
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        same = select(Stage.id).where(Stage.branch_id == branch_id, Stage.name == body.name)
        if (await session.execute(same)).first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"the branch has a stage named '{body.name}'")
        schema = await _checked_schema(session, branch, body.name, body.schema_code)
        stage = Stage(
            branch_id=branch_id,
            name=body.name,
            description=body.description,
            enabled=body.enabled,
            schema_code=body.schema_code,
            schema_=schema,
            parent=schema.get("parent", "root"),
            triggers=schema.get("triggers", {}),
        )
        session.add(stage)
        await session.flush()
        effects.publish.append(("planner", {}))  # its triggers may need planning
    return stage


@router.get("/stages/{stage_id}", response_model=StageOut, dependencies=[viewer("stage_id")])
async def get_stage(stage_id: Id, session: SessionDep, _: UserDep) -> Stage:
    stage = await session.get(Stage, stage_id)
    if stage is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"stage {stage_id} not found")
    return stage


@router.put("/stages/{stage_id}", response_model=StageOut, dependencies=[maintainer("stage_id")])
async def update_stage(stage_id: Id, body: StageUpdate, state: StateDep, _: UserDep) -> Stage:
    async with state.write() as (session, effects):
        stage = await session.get(Stage, stage_id)
        if stage is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"stage {stage_id} not found")
        branch = await session.get(Branch, stage.branch_id)
        assert branch is not None
        name = body.name or stage.name
        if name != stage.name:
            taken = await session.execute(select(Stage.id).where(Stage.branch_id == branch.id, Stage.name == name))
            if taken.first():
                raise HTTPException(status.HTTP_409_CONFLICT, f"the branch has a stage named '{name}'")
        if body.schema_code is not None or name != stage.name:
            code = body.schema_code if body.schema_code is not None else stage.schema_code
            schema = await _checked_schema(session, branch, name, code)
            stage.schema_code = code
            stage.schema_ = schema
            stage.parent = schema.get("parent", "root")
            stage.triggers = schema.get("triggers", {})
        stage.name = name
        if body.description is not None:
            stage.description = body.description
        if body.enabled is not None:
            stage.enabled = body.enabled
        stage.updated = utcnow()
        effects.publish.append(("planner", {}))
    return stage


@router.post("/stages/check", response_model=StageCheckOut, dependencies=[LoggedInOnly])
async def check_stage(body: StageCheckIn, _: UserDep) -> dict[str, Any]:
    """Evaluate schema code without saving it (the stage editor's checker)."""
    try:
        return {"schema": await check_stage_code(body.schema_code, StageContext())}
    except StageSchemaError as err:
        raise schema_error(err) from err
