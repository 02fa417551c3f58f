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
from kraken.models import Job, LogChunk, Run, Step
from kraken.models.enums import State
from kraken.protocol import EVENTS_CHANNEL, log_channel
from kraken.schemas.api import JobOut, RunOut, StepOut
from kraken.schemas.ints import Id, Int32

router = APIRouter(tags=["runs"])


async def jobs_out(session: AsyncSession, jobs: list[Job]) -> list[JobOut]:
    ids = [j.id for j in jobs]
    steps = (
        await session.execute(select(Step).where(col(Step.job_id).in_(ids)).order_by(col(Step.job_id), col(Step.index)))
    ).scalars().all()
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
    "/jobs/{job_id}/rerun", response_model=JobOut, status_code=status.HTTP_201_CREATED,
    dependencies=[member("job_id")],
)
async def rerun_job(
    job_id: Id, state: StateDep, user: UserDep, idempotency_key: IdempotencyKeyHeader = None
) -> JobOut:
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


async def _chunks(session: AsyncSession, job_id: int, after_line: int = -1) -> AsyncIterator[LogChunk]:
    result = await session.stream_scalars(
        select(LogChunk)
        .where(LogChunk.job_id == job_id, col(LogChunk.first_line) + col(LogChunk.line_count) > after_line + 1)
        .order_by(col(LogChunk.first_line))
        .execution_options(yield_per=500)
    )
    async for chunk in result:
        yield chunk


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse, dependencies=[viewer("job_id")])
@query_token("download")
async def job_log(job_id: Id, state: StateDep, _: UserDep) -> StreamingResponse:
    """The job's whole output as text, streamed from the database."""
    async with state.runtime.db.session() as session:
        if await session.get(Job, job_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")

    async def body() -> AsyncIterator[bytes]:
        async with state.runtime.db.session() as session:
            async for chunk in _chunks(session, job_id):
                yield chunk.text.encode() + b"\n"

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
        sent = after  # last line number sent
        done = False

        async def stored() -> AsyncIterator[bytes]:
            """The stored lines after ``sent``; ``done`` once the job is completed."""
            nonlocal sent, done
            async with state.runtime.db.session() as session:
                async for chunk in _chunks(session, job_id, sent):
                    skip = max(0, sent + 1 - chunk.first_line)
                    lines = chunk.text.split("\n")[skip:]
                    yield sse_event(
                        "lines",
                        {"first_line": chunk.first_line + skip, "step_index": chunk.step_index, "lines": lines},
                    )
                    sent = chunk.first_line + chunk.line_count - 1
                job = await session.get(Job, job_id)
                done = job is not None and job.state == State.COMPLETED

        async with state.runtime.bus.listening(log_channel(job_id), EVENTS_CHANNEL) as sub:
            async for event in stored():
                yield event
            if done:
                yield sse_event("end", {"lines": sent + 1})
                return
            while not await request.is_disconnected():
                channel, msg = await sub.get()
                if channel == EVENTS_CHANNEL:
                    if msg.get("kind") == "resync":  # the bus lost messages: catch up from the database
                        async for event in stored():
                            yield event
                        if done:
                            yield sse_event("end", {"lines": sent + 1})
                            return
                    elif msg.get("kind") == "job" and msg.get("id") == job_id and msg.get("state") == State.COMPLETED:
                        yield sse_event("end", {"lines": sent + 1})
                        return
                    continue
                first = int(msg["first_line"])
                lines = msg["lines"][max(0, sent + 1 - first):]
                if lines:
                    data = {"first_line": max(first, sent + 1), "step_index": msg.get("step_index"), "lines": lines}
                    yield sse_event("lines", data)
                    sent = first + len(msg["lines"]) - 1

    return sse_response(events())


