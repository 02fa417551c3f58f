"""Background tasks of culprit finding (registered by ``kraken.workers.registry``)."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.culprits import search
from kraken.models import Flow, Run
from kraken.models.enums import FlowKind, State
from kraken.models.results import ResultsBranch
from kraken.results.analysis import advance_branch
from kraken.workers.registry import TaskContext, task

log = logging.getLogger(__name__)


async def _applied(ctx: TaskContext, effects: Effects) -> None:
    """Start the bisection flows the step created (their stage code is evaluated now) and apply its effects."""
    await orchestration.evaluate_pending(ctx.db, effects)
    await effects.apply(ctx.bus, ctx.queue)


@task
async def culprit_prepare(ctx: TaskContext, search_id: int) -> None:
    """Read a new search's range from the repository and start its bisection."""
    effects = Effects()
    await search.prepare(ctx.db, ctx.settings.data_dir, search_id, effects)
    await _applied(ctx, effects)


@task
async def culprit_flow_completed(ctx: TaskContext, flow_id: int) -> None:
    """After every flow: a bisection flow moves its search on; a CI flow of a branch with
    automatic culprit finding starts searches for its runs' regressions."""
    effects = Effects()
    async with ctx.db.session() as s:
        flow = await s.get(Flow, flow_id)
        auto = flow is not None and flow.kind == FlowKind.CI and await search.auto_enabled(s, flow.branch_id)
    if flow is None:
        return
    if auto:
        await advance_branch(ctx.db, flow.branch_id)  # its results analysed first (idempotent)
        await _start_for_flow(ctx, flow_id, effects)
    else:
        await search.flow_completed(ctx.db, flow_id, effects)
    await _applied(ctx, effects)


async def _start_for_flow(ctx: TaskContext, flow_id: int, effects: Effects) -> None:
    """Searches for the runs of this CI flow and of the later CI flows sealed with it: a later flow
    that completed first found its results waiting for this one (``start`` is idempotent)."""
    async with ctx.db.session() as s:
        flow = await s.get(Flow, flow_id)
        assert flow is not None
        sealed = await s.get(ResultsBranch, flow.branch_id)
        last = max(flow.seq, sealed.sealed_seq if sealed else 0)
        rows = await s.execute(
            select(Run.id)
            .join(Flow, col(Flow.id) == Run.flow_id)
            .where(
                Flow.branch_id == flow.branch_id,
                Flow.kind == FlowKind.CI,
                Flow.state == State.COMPLETED,
                col(Flow.seq) >= flow.seq,
                col(Flow.seq) <= last,
                col(Run.state) == State.COMPLETED,
            )
            .order_by(col(Run.id))
        )
        run_ids = [int(r) for r in rows.scalars() if r is not None]
    for run_id in run_ids:
        try:
            async with ctx.db.transaction(quick=True) as s:
                await search.start(s, run_id, effects)
        except search.NotSearchable as exc:
            log.info("culprit finding: %s", exc)
