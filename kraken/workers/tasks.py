"""The backbone's background tasks (later features register more in their own modules)."""

from __future__ import annotations

import logging

from kraken.workers.registry import TaskContext, task, tasks

log = logging.getLogger(__name__)

# Tasks run for every completed job when registered (e.g. test-result analysis).
JOB_COMPLETED_FOLLOWUPS = ["analyze_job_results"]
RUN_COMPLETED_FOLLOWUPS = ["notify_run_completed"]
FLOW_COMPLETED_FOLLOWUPS = ["analyze_flow_results", "notify_flow_completed", "culprit_flow_completed"]


async def _followups(ctx: TaskContext, names: list[str], key: str, **kwargs: int) -> None:
    known = tasks()
    for name in names:
        if name in known:
            await ctx.queue.enqueue(name, key=f"{name}:{key}", **kwargs)


@task
async def job_completed(ctx: TaskContext, job_id: int) -> None:
    await _followups(ctx, JOB_COMPLETED_FOLLOWUPS, str(job_id), job_id=job_id)


@task
async def run_completed(ctx: TaskContext, run_id: int) -> None:
    await _followups(ctx, RUN_COMPLETED_FOLLOWUPS, str(run_id), run_id=run_id)


@task
async def flow_completed(ctx: TaskContext, flow_id: int) -> None:
    await _followups(ctx, FLOW_COMPLETED_FOLLOWUPS, str(flow_id), flow_id=flow_id)


@task
async def start_run(ctx: TaskContext, run_id: int) -> None:
    """Evaluate a new run's stage code and create its jobs (outside the transaction that made the run)."""
    from kraken.control import orchestration
    from kraken.control.effects import Effects

    effects = Effects()
    await orchestration.start_run(ctx.db, run_id, effects)
    await effects.apply(ctx.bus, ctx.queue)
