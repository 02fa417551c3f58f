"""Runs and jobs: read, cancel, rerun, logs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api import idempotency
from kraken.api.authz import member, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep, query_token
from kraken.api.idempotency import IdempotencyKeyHeader
from kraken.api.sse import sse_event, sse_response
from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.logs.active import log_store
from kraken.logs.store import LogBatch
from kraken.models import Job, Run, Step
from kraken.schemas.api import JobOut, RunOut, StepOut
from kraken.schemas.ints import Id, Int32

router = APIRouter(tags=["runs"])


async def jobs_out(session: AsyncSession, jobs: list[Job]) -> list[JobOut]:
    ids = [j.id for j in jobs]
    steps = (
        (
            await session.execute(
                select(Step).where(col(Step.job_id).in_(ids)).order_by(col(Step.job_id), col(Step.index))
            )
        )
        .scalars()
        .all()
    )
    out = []
    for j in jobs:
        jo = JobOut.model_validate(j)
        jo.steps = [StepOut.model_validate(s) for s in steps if s.job_id == j.id]
        out.append(jo)
    return out


@router.get("/runs/{run_id}", response_model=RunOut, dependencies=[viewer("run_id")])
async def get_run(run_id: Id, session: SessionDep, _: UserDep) -> Run:
    run = await session.get(Run, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return run


@router.get("/runs/{run_id}/jobs", response_model=list[JobOut], dependencies=[viewer("run_id")])
async def list_jobs(run_id: Id, session: SessionDep, _: UserDep, include_covered: bool = False) -> list[JobOut]:
    if await session.get(Run, run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    q = select(Job).where(Job.run_id == run_id)
    if not include_covered:
        q = q.where(col(Job.covered).is_(False))
    jobs = list((await session.execute(q.order_by(col(Job.id)))).scalars())
    return await jobs_out(session, jobs)


@router.post("/runs/{run_id}/cancel", response_model=RunOut, dependencies=[member("run_id")])
async def cancel_run(run_id: Id, state: StateDep, _: UserDep) -> Run:
    async with state.write() as (session, effects):
        if await session.get(Run, run_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
        await orchestration.cancel_run(session, run_id, effects)
        run = await session.get(Run, run_id)
    assert run is not None
    return run


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[viewer("job_id")])
async def get_job(job_id: Id, session: SessionDep, _: UserDep) -> JobOut:
    job = await session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return (await jobs_out(session, [job]))[0]


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, dependencies=[member("job_id")])
async def cancel_job(job_id: Id, state: StateDep, _: UserDep) -> JobOut:
    async with state.write() as (session, effects):
        if await session.get(Job, job_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
        await orchestration.cancel_job(session, job_id, effects)
    async with state.runtime.db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return (await jobs_out(session, [job]))[0]


@router.post(
    "/jobs/{job_id}/rerun",
    response_model=JobOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[member("job_id")],
)
async def rerun_job(job_id: Id, state: StateDep, user: UserDep, idempotency_key: IdempotencyKeyHeader = None) -> JobOut:
    """Run the job again (a new job).  With an ``Idempotency-Key`` header, the same request sent
    again answers with the job the first one created."""

    async def create(session: AsyncSession, effects: Effects) -> int:
        try:
            new = await orchestration.rerun_job(session, job_id, effects)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found") from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        assert new.id is not None
        return new.id

    new_id = await idempotency.once(state, user, idempotency_key, f"POST /jobs/{job_id}/rerun", create)
    async with state.runtime.db.session() as session:
        new = await session.get(Job, new_id)
        assert new is not None
        return (await jobs_out(session, [new]))[0]


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse, dependencies=[viewer("job_id")])
@query_token("download")
async def job_log(job_id: Id, state: StateDep, _: UserDep) -> StreamingResponse:
    """The job's whole output as text, streamed from the database."""
    async with state.runtime.db.session() as session:
        if await session.get(Job, job_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")

    async def body() -> AsyncIterator[bytes]:
        async with state.runtime.db.session() as session:
            async for batch in log_store().read(session, job_id):
                yield "\n".join(batch.lines).encode() + b"\n"

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.get("/jobs/{job_id}/log/stream", dependencies=[viewer("job_id")])
@query_token("events")
async def job_log_stream(
    job_id: Id, request: Request, state: StateDep, _: UserDep, after: Int32 = -1
) -> StreamingResponse:
    """Server-sent events: ``lines`` events {first_line, step_index, lines} from line ``after``+1 on, live,
    then ``end`` once the job is completed and all its lines were sent.  Lines the bus lost (a
    Redis outage) are read from the database when the bus says ``resync``."""
    async with state.runtime.db.session() as session:
        if await session.get(Job, job_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")

    async def events() -> AsyncIterator[bytes]:
        async for item in log_store().follow(job_id, after, request.is_disconnected):
            if isinstance(item, LogBatch):
                data = {"first_line": item.first_line, "step_index": item.step_index, "lines": item.lines}
                yield sse_event("lines", data)
            else:
                yield sse_event("end", {"lines": item})

    return sse_response(events())
