"""Stages: create, update (schema code is checked first), list, check without saving.

A stage holds its code (``schema_code``) or names a file of a git repository
(``schema_from_repo``, ``repo_url``, ``repo_branch``, ``schema_file``, ``repo_access_token``:
``kraken.stage.from_repo``); saving such a stage reads the file once and checks it like inline code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.audit import not_audited
from kraken.api.authz import LoggedInOnly, maintainer, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.api.state import ServerState
from kraken.models import Branch, Project, Stage
from kraken.models.base import utcnow
from kraken.schemas.api import StageCheckIn, StageIn, StageOut, StageRepoFields, StageUpdate
from kraken.schemas.ints import Id
from kraken.schemas.responses import StageCheckOut
from kraken.stage import StageContext, StageSchemaError, check_stage_code, check_stage_graph, from_repo
from kraken.tools_registry import store as tool_store

router = APIRouter(tags=["stages"])


def schema_error(err: StageSchemaError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, {**err.to_dict(), "message": str(err)})


def field_error(path: str, message: str) -> HTTPException:
    return schema_error(StageSchemaError(message, path=path))


REPO_FIELDS = ("repo_url", "repo_branch", "schema_file", "repo_access_token")


@dataclass
class StageCode:
    """A stage's code as saved: inline, or where in a repository (then ``code`` is what was read)."""

    code: str
    use_repo: bool = False
    repo: dict[str, str | None] | None = None  # REPO_FIELDS' values
    source: from_repo.RepoSource | None = None
    commit: str | None = None

    def store(self, stage: Stage) -> None:
        stage.schema_from_repo = self.use_repo
        stage.schema_code = "" if self.use_repo else self.code
        for key in REPO_FIELDS:
            setattr(stage, key, (self.repo or {}).get(key))
        stage.schema_commit = self.commit


def _wanted_code(body: StageRepoFields, code: str | None, stage: Stage | None) -> StageCode:
    """The code a create or update asks for, its fields merged over the stage's; 422 naming the
    field when one is missing, or when both code and a repository are given."""
    use_repo = body.schema_from_repo if body.schema_from_repo is not None else bool(stage and stage.schema_from_repo)
    if not use_repo:
        for key in REPO_FIELDS:
            if getattr(body, key):
                raise field_error(key, "names a repository: set schema_from_repo to true (or leave it out)")
        if code is None:
            code = stage.schema_code if stage is not None and not stage.schema_from_repo else None
        if code is None:
            raise field_error("schema_code", "is required (or schema_from_repo, repo_url, repo_branch, schema_file)")
        return StageCode(code=code)
    if code:
        raise field_error("schema_code", "give either schema_code or schema_from_repo, not both")
    repo: dict[str, str | None] = {}
    for key in REPO_FIELDS:
        value = getattr(body, key)
        repo[key] = value if value is not None else (getattr(stage, key) if stage is not None else None)
        if not repo[key] and key != "repo_access_token":
            raise field_error(key, "is required when schema_from_repo is true")
    problem = from_repo.check_source(repo["repo_url"] or "", repo["repo_branch"] or "", repo["schema_file"] or "")
    if problem:
        raise field_error(*problem)
    return StageCode(code="", use_repo=True, repo={k: v or None for k, v in repo.items()})


async def _read_from_repo(state: ServerState, wanted: StageCode, project_id: int) -> None:
    """Read a repository stage's file once (outside any write transaction); 422 saying what and where."""
    if not wanted.use_repo or wanted.repo is None:
        return
    async with state.runtime.db.session(quick=True) as session:
        try:
            token = await from_repo.access_token(session, project_id, wanted.repo["repo_access_token"])
        except from_repo.RepoError as err:
            raise field_error("repo_access_token", str(err)) from err
    wanted.source = from_repo.RepoSource(
        url=wanted.repo["repo_url"] or "", branch=wanted.repo["repo_branch"] or "",
        file=wanted.repo["schema_file"] or "", token=token,
    )  # fmt: skip
    try:
        wanted.code, wanted.commit = await from_repo.read_stage_code(wanted.source)
    except from_repo.RepoError as err:
        raise field_error("schema_file", str(err)) from err


async def _evaluated(
    state: ServerState, branch_id: int, name: str, code: str, wanted: StageCode | None = None
) -> dict[str, Any]:
    """Evaluate stage code as the branch's stage ``name`` would run it; 422 on an error, 404 for
    no branch. Outside any write transaction: slow stage code must not hold up other writers."""
    async with state.runtime.db.session(quick=True) as session:
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
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
        await tool_store.refresh_snapshot_in(session)  # the custom tools the steps may use
    try:
        return await check_stage_code(code, ctx)
    except StageSchemaError as err:
        if wanted is not None and wanted.source is not None and wanted.commit is not None:
            err = from_repo.code_error(err, wanted.source, wanted.commit)
        raise schema_error(err) from err


async def _check_graph(session: AsyncSession, branch_id: int, name: str, schema: dict[str, Any]) -> None:
    """The branch's stages with this one (under ``name``) form a tree; 422 otherwise."""
    parents: dict[str, str | None] = {
        s.name: s.parent for s in (await session.execute(select(Stage).where(Stage.branch_id == branch_id))).scalars()
    }
    parents[name] = schema.get("parent", "root")
    try:
        check_stage_graph(parents)
    except StageSchemaError as err:
        raise schema_error(err) from err


@router.get("/branches/{branch_id}/stages", response_model=list[StageOut], dependencies=[viewer("branch_id")])
async def list_stages(branch_id: Id, session: SessionDep, _: UserDep) -> list[Stage]:
    rows = await session.execute(select(Stage).where(Stage.branch_id == branch_id).order_by(col(Stage.id)))
    return list(rows.scalars())


@router.post(
    "/branches/{branch_id}/stages",
    response_model=StageOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[maintainer("branch_id")],
)
async def create_stage(branch_id: Id, body: StageIn, state: StateDep, _: UserDep) -> Stage:
    wanted = _wanted_code(body, body.schema_code, None)
    if wanted.use_repo:
        async with state.runtime.db.session(quick=True) as session:
            found = await session.get(Branch, branch_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        await _read_from_repo(state, wanted, found.project_id)
    schema = await _evaluated(state, branch_id, body.name, wanted.code, wanted)  # before the write transaction
    async with state.write() as (session, effects):
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        same = select(Stage.id).where(Stage.branch_id == branch_id, Stage.name == body.name)
        if (await session.execute(same)).first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"the branch has a stage named '{body.name}'")
        await _check_graph(session, branch_id, body.name, schema)
        stage = Stage(
            branch_id=branch_id,
            name=body.name,
            description=body.description,
            enabled=body.enabled,
            schema_code="",
            schema_=schema,
            parent=schema.get("parent", "root"),
            triggers=schema.get("triggers", {}),
        )
        wanted.store(stage)
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
@router.patch("/stages/{stage_id}", response_model=StageOut, dependencies=[maintainer("stage_id")])
async def update_stage(stage_id: Id, body: StageUpdate, state: StateDep, _: UserDep) -> Stage:
    code_given = body.schema_code is not None or any(
        getattr(body, key) is not None for key in ("schema_from_repo", *REPO_FIELDS)
    )
    wanted: StageCode | None = None
    evaluated: tuple[str, dict[str, Any]] = ("", {})
    if code_given or body.name is not None:  # read a repository's file before the write transaction
        async with state.runtime.db.session(quick=True) as session:
            current = await session.get(Stage, stage_id)
            branch = await session.get(Branch, current.branch_id) if current is not None else None
        if current is None or branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"stage {stage_id} not found")
        if code_given:
            wanted = _wanted_code(body, body.schema_code, current)
        elif current.schema_from_repo and body.name != current.name:  # renamed: the code sees its name
            wanted = StageCode(code="", use_repo=True, repo={k: getattr(current, k) for k in REPO_FIELDS})
        if wanted is not None:
            await _read_from_repo(state, wanted, branch.project_id)
        elif body.name is not None and body.name != current.name:  # renamed: the code sees its name
            wanted = StageCode(code=current.schema_code)
        if wanted is not None:  # evaluated before the write transaction
            assert branch.id is not None
            new_name = body.name or current.name
            evaluated = (new_name, await _evaluated(state, branch.id, new_name, wanted.code, wanted))
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
        if wanted is not None:
            if evaluated[0] != name:  # renamed by another request meanwhile: its code saw the other name
                raise HTTPException(status.HTTP_409_CONFLICT, "the stage changed meanwhile: send the change again")
            schema = evaluated[1]
            assert branch.id is not None
            await _check_graph(session, branch.id, name, schema)
            wanted.store(stage)
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
@not_audited
async def check_stage(body: StageCheckIn, _: UserDep, session: SessionDep) -> dict[str, Any]:
    """Evaluate schema code without saving it (the stage editor's checker)."""
    await tool_store.refresh_snapshot_in(session)
    try:
        return {"schema": await check_stage_code(body.schema_code, StageContext())}
    except StageSchemaError as err:
        raise schema_error(err) from err
