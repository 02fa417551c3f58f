"""Handlers for the job messages every agent sends: step progress, log lines, job end."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from kraken.control import orchestration
from kraken.control.agent_messages import handles
from kraken.control.effects import Effects
from kraken.models import Job, LogChunk, Step
from kraken.models.enums import Result, StepResult
from kraken.observability import metrics
from kraken.secrets.store import job_masker

MAX_LINE = 10_000  # characters kept of one output line


@handles("step_started", quick=True)
async def on_step_started(session: AsyncSession, job: Job, msg: dict[str, Any], effects: Effects) -> None:
    await orchestration.step_started(session, job, int(msg["step_index"]), effects)


@handles("log", quick=True)
async def on_log(session: AsyncSession, job: Job, msg: dict[str, Any], effects: Effects) -> None:
    lines = [ln if len(ln) <= MAX_LINE else ln[:MAX_LINE] + " …[line truncated]" for ln in msg["lines"]]
    if not lines:
        return
    masker = await job_masker(session, job.id)  # type: ignore[arg-type]
    if masker:  # the values of the secrets the job was given never reach the stored log
        lines = [masker.text(ln) for ln in lines]
    first = job.log_lines
    job.log_lines = first + len(lines)
    metrics.log_lines(len(lines))
    session.add(
        LogChunk(
            job_id=job.id,  # type: ignore[arg-type]
            seq=int(msg["seq"]),
            step_index=msg.get("step_index"),
            first_line=first,
            line_count=len(lines),
            text="\n".join(lines),
        )
    )
    effects.publish.append(
        (f"log:{job.id}", {"first_line": first, "step_index": msg.get("step_index"), "lines": lines})
    )


@handles("step_done", quick=True)
async def on_step_done(session: AsyncSession, job: Job, msg: dict[str, Any], effects: Effects) -> None:
    await orchestration.step_completed(
        session,
        job,
        int(msg["step_index"]),
        StepResult(msg["result"]),
        effects,
        message=(await job_masker(session, job.id)).value(msg.get("message")),  # type: ignore[arg-type]
        exit_code=msg.get("exit_code"),
    )


@handles("step_info", quick=True)
async def on_step_info(session: AsyncSession, job: Job, msg: dict[str, Any], effects: Effects) -> None:
    step = (
        await session.execute(select(Step).where(Step.job_id == job.id, Step.index == int(msg["step_index"])))
    ).scalar_one_or_none()
    if step is not None:
        data = (await job_masker(session, job.id)).value(msg.get("data") or {})  # type: ignore[arg-type]
        step.info = {**step.info, **data}
        if step.tool == "git" and data.get("commit"):
            await orchestration.record_checkout(session, job, data, effects)


@handles("job_done", quick=True)
async def on_job_done(session: AsyncSession, job: Job, msg: dict[str, Any], effects: Effects) -> None:
    result = Result(msg.get("result", Result.PASSED))
    reason = (await job_masker(session, job.id)).value(msg.get("reason"))  # type: ignore[arg-type]
    await orchestration.complete_job(session, job.id, result, effects, reason)  # type: ignore[arg-type]
