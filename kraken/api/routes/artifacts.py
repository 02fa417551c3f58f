"""Artifacts: agents upload and download them (streamed HTTP, job transfer token); users list and
download them (range requests); branch retention settings.

Agent side (``Authorization: Bearer <job transfer token>``, issued with the job's assignment and
bound to the job and its agent; the job must be running on that agent):
- ``PUT /api/agent/jobs/{job_id}/artifacts?path=P&public=B&report_entry=B``: the body is the file;
  ``report_entry``: it is the entry page of an HTML report (``kraken.api.routes.reports``);
- ``GET /api/agent/jobs/{job_id}/artifacts``: the artifacts of the job's flow so far;
- ``GET /api/agent/jobs/{job_id}/artifacts/{id}``: one of them (range requests work);
- ``GET /api/agent/jobs/{job_id}/storage``: the size limits.

An upload that meets a full data volume is refused with 507 and "no space left on the server's
data volume" (the agent's step and job say so); the partial file is removed.
"""

from __future__ import annotations

import posixpath
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from kraken.api.audit import audit_change
from kraken.api.authz import maintainer, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep, query_token
from kraken.api.state import ServerState
from kraken.api.transfer import AgentDep, JobTransfer, blob_response
from kraken.artifacts import service
from kraken.artifacts.paths import UnsafePath, clean_relative
from kraken.artifacts.retention import MAX_KEEP_DAYS, MAX_KEEP_FLOWS
from kraken.artifacts.store import TooLarge, blob_store
from kraken.core.diskspace import DISK_FULL_REASON
from kraken.models import Branch, Flow, Job, Run
from kraken.models.artifacts import Artifact, BranchRetention
from kraken.models.enums import State
from kraken.schemas.ints import Id

router = APIRouter(tags=["artifacts"])


class ArtifactOut(BaseModel):
    id: int
    flow_id: int
    run_id: int
    job_id: int
    stage_name: str
    path: str
    size: int
    sha256: str
    public: bool
    report_entry: bool = Field(description="the entry page of an HTML report: GET /api/runs/{run_id}/reports/{id}/...")
    created: datetime


class StorageLimits(BaseModel):
    artifacts_max_size: int
    cache_max_size: int


async def running_job(state: ServerState, job_id: int, agent: JobTransfer) -> tuple[Job, Run, Flow]:
    async with state.runtime.db.session() as session:
        found = await service.job_context(session, job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    job = found[0]
    if job.state != State.RUNNING:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is not running")
    if job.agent_id != agent.agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"job {job_id} is not assigned to the token's agent")
    return found


def check_length(request: Request, limit: int, what: str) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"the {what} has {int(length)} bytes, more than the limit of {limit} bytes",
        )


@router.get("/agent/jobs/{job_id}/storage", response_model=StorageLimits)
async def agent_storage(job_id: Id, state: StateDep, agent: AgentDep) -> StorageLimits:
    await running_job(state, job_id, agent)
    s = state.runtime.settings
    return StorageLimits(artifacts_max_size=s.artifacts_max_size, cache_max_size=s.cache_max_size)


@router.put("/agent/jobs/{job_id}/artifacts", response_model=ArtifactOut, status_code=status.HTTP_201_CREATED)
async def agent_upload(
    job_id: Id,
    request: Request,
    state: StateDep,
    agent: AgentDep,
    path: str,
    public: bool = False,
    report_entry: bool = False,
) -> Artifact:
    try:
        path = clean_relative(path, "artifact path")
    except UnsafePath as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    if path == ".":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the artifact path names no file")
    limit = state.runtime.settings.artifacts_max_size
    check_length(request, limit, f"artifact {path!r}")
    job, run, flow = await running_job(state, job_id, agent)
    store = blob_store(state.runtime.settings)
    try:
        sha, size = await store.put(request.stream(), limit)
        async with state.runtime.db.transaction() as session:
            art = await service.record_artifact(session, job, run, flow, path, sha, size, public, report_entry)
    except TooLarge as exc:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"artifact {path!r} is {exc} (artifacts_max_size)"
        ) from exc
    except Exception as exc:
        if not state.runtime.db.disk.note_error(exc):
            raise
        raise HTTPException(
            status.HTTP_507_INSUFFICIENT_STORAGE, f"artifact {path!r} not stored: {DISK_FULL_REASON}"
        ) from exc
    return art


@router.get("/agent/jobs/{job_id}/artifacts", response_model=list[ArtifactOut])
async def agent_list(job_id: Id, state: StateDep, agent: AgentDep) -> list[Artifact]:
    _, _, flow = await running_job(state, job_id, agent)
    async with state.runtime.db.session() as session:
        return await service.flow_artifacts(session, flow.id)  # type: ignore[arg-type]


@router.get("/agent/jobs/{job_id}/artifacts/{artifact_id}")
async def agent_download(
    job_id: Id, artifact_id: Id, request: Request, state: StateDep, agent: AgentDep
) -> StreamingResponse:
    _, _, flow = await running_job(state, job_id, agent)
    async with state.runtime.db.session() as session:
        art = await session.get(Artifact, artifact_id)
    if art is None or art.flow_id != flow.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the job's flow has no artifact {artifact_id}")
    return _content(state, art, request)


def _content(state: ServerState, art: Artifact, request: Request) -> StreamingResponse:
    store = blob_store(state.runtime.settings)
    return blob_response(store, art.sha256, art.size, posixpath.basename(art.path), request.headers.get("range"))


# ---------------------------------------------------------------- users


@router.get("/flows/{flow_id}/artifacts", response_model=list[ArtifactOut], dependencies=[viewer("flow_id")])
async def flow_artifacts(flow_id: Id, session: SessionDep, _: UserDep, public: bool | None = None) -> list[Artifact]:
    if await session.get(Flow, flow_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow {flow_id} not found")
    q = select(Artifact).where(Artifact.flow_id == flow_id)
    if public is not None:
        q = q.where(col(Artifact.public).is_(public))
    return list((await session.execute(q.order_by(col(Artifact.path), col(Artifact.id)))).scalars())


@router.get("/runs/{run_id}/artifacts", response_model=list[ArtifactOut], dependencies=[viewer("run_id")])
async def run_artifacts(run_id: Id, session: SessionDep, _: UserDep, public: bool | None = None) -> list[Artifact]:
    if await session.get(Run, run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    q = select(Artifact).where(Artifact.run_id == run_id)
    if public is not None:
        q = q.where(col(Artifact.public).is_(public))
    return list((await session.execute(q.order_by(col(Artifact.path), col(Artifact.id)))).scalars())


@router.get("/artifacts/{artifact_id}", response_model=ArtifactOut, dependencies=[viewer("artifact_id")])
async def get_artifact(artifact_id: Id, session: SessionDep, _: UserDep) -> Artifact:
    art = await session.get(Artifact, artifact_id)
    if art is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"artifact {artifact_id} not found")
    return art


@router.get("/artifacts/{artifact_id}/content", dependencies=[viewer("artifact_id")])
@query_token("download")
async def download_artifact(artifact_id: Id, request: Request, state: StateDep, _: UserDep) -> StreamingResponse:
    """The artifact's bytes; ``Range: bytes=a-b`` gets part of them (206)."""
    async with state.runtime.db.session() as session:
        art = await session.get(Artifact, artifact_id)
    if art is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"artifact {artifact_id} not found")
    return _content(state, art, request)


# ---------------------------------------------------------------- retention


class RetentionIn(BaseModel):
    keep_flows: int | None = Field(None, ge=1, le=MAX_KEEP_FLOWS)
    keep_days: float | None = Field(None, gt=0, le=MAX_KEEP_DAYS)


class RetentionOut(RetentionIn):
    branch_id: int
    effective_keep_flows: int | None
    effective_keep_days: float | None


async def _retention_out(state: ServerState, branch_id: int) -> RetentionOut:
    s = state.runtime.settings
    async with state.runtime.db.session() as session:
        if await session.get(Branch, branch_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        r = await session.get(BranchRetention, branch_id)
    keep_flows = r.keep_flows if r else None
    keep_days = r.keep_days if r else None
    explicit = r is not None and (keep_flows is not None or keep_days is not None)
    return RetentionOut(
        branch_id=branch_id,
        keep_flows=keep_flows,
        keep_days=keep_days,
        effective_keep_flows=keep_flows if explicit else s.retention_flows,
        effective_keep_days=keep_days if explicit else s.retention_days,
    )


@router.get("/branches/{branch_id}/retention", response_model=RetentionOut, dependencies=[viewer("branch_id")])
async def get_retention(branch_id: Id, state: StateDep, _: UserDep) -> RetentionOut:
    """How long the branch keeps artifacts and logs: the newest ``keep_flows`` flows and/or the
    flows of the last ``keep_days`` days (a flow is kept when either rule keeps it)."""
    return await _retention_out(state, branch_id)


@router.put("/branches/{branch_id}/retention", response_model=RetentionOut, dependencies=[maintainer("branch_id")])
async def set_retention(
    branch_id: Id, body: RetentionIn, request: Request, state: StateDep, _: UserDep
) -> RetentionOut:
    before = await _retention_out(state, branch_id)
    async with state.write() as (session, _effects):
        if await session.get(Branch, branch_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        r = await session.get(BranchRetention, branch_id)
        if r is None:
            r = BranchRetention(branch_id=branch_id)
            session.add(r)
        r.keep_flows, r.keep_days = body.keep_flows, body.keep_days
    after = await _retention_out(state, branch_id)
    audit_change(request, before.model_dump(), after.model_dump())
    return after
