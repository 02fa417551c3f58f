"""Handlers for the job messages every agent sends: step progress, log lines, job end."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.job_message_dispatch import handles
from kraken.logs.active import log_store
from kraken.models import Job, Step
from kraken.observability import metrics
from kraken.protocol import JobAccepted, JobDone, Log, StepDone, StepInfo, StepStarted, log_channel
from kraken.secrets.store import job_masker

MAX_LINE = 10_000  # characters kept of one output line


@handles(JobAccepted, quick=True)
async def on_job_accepted(session: AsyncSession, job: Job, msg: JobAccepted, effects: Effects) -> None:
    """Nothing to change but what the dispatcher does for every message: ``last_seq`` moves past
    0, which is what says "accepted" (the watchdog stops re-sending and never re-queues the job),
    in the same transaction, under the job's lock, as a re-queue would take it back."""


@handles(StepStarted, quick=True)
async def on_step_started(session: AsyncSession, job: Job, msg: StepStarted, effects: Effects) -> None:
    await orchestration.step_started(session, job, msg.step_index, effects)


@handles(Log, quick=True)
async def on_log(session: AsyncSession, job: Job, msg: Log, effects: Effects) -> None:
    lines = [ln if len(ln) <= MAX_LINE else ln[:MAX_LINE] + " …[line truncated]" for ln in msg.lines]
    if not lines:
        return
    masker = await job_masker(session, job.id)  # type: ignore[arg-type]
    if masker:  # the values of the secrets the job was given never reach the stored log
        lines = [masker.text(ln) for ln in lines]
    first = job.log_lines
    job.log_lines = first + len(lines)
    metrics.log_lines(len(lines))
    await log_store().append(session, job.id, msg.seq, msg.step_index, first, lines)  # type: ignore[arg-type]
    effects.publish.append(
        (log_channel(job.id), {"first_line": first, "step_index": msg.step_index, "lines": lines})  # type: ignore[arg-type]
    )


@handles(StepDone, quick=True)
async def on_step_done(session: AsyncSession, job: Job, msg: StepDone, effects: Effects) -> None:
    await orchestration.step_completed(
        session,
        job,
        msg.step_index,
        msg.result,
        effects,
        message=(await job_masker(session, job.id)).value(msg.message),  # type: ignore[arg-type]
        exit_code=msg.exit_code,
    )


@handles(StepInfo, quick=True)
async def on_step_info(session: AsyncSession, job: Job, msg: StepInfo, effects: Effects) -> None:
    step = (
        await session.execute(select(Step).where(Step.job_id == job.id, Step.index == msg.step_index))
    ).scalar_one_or_none()
    if step is not None:
        data = (await job_masker(session, job.id)).value(msg.data)  # type: ignore[arg-type]
        step.info = {**step.info, **data}
        if step.tool == "git" and data.get("commit"):
            await orchestration.record_checkout(session, job, data, effects)


@handles(JobDone, quick=True)
async def on_job_done(session: AsyncSession, job: Job, msg: JobDone, effects: Effects) -> None:
    reason = (await job_masker(session, job.id)).value(msg.reason)  # type: ignore[arg-type]
    await orchestration.complete_job(session, job.id, msg.result, effects, reason)  # type: ignore[arg-type]
