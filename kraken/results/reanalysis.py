"""Forced re-analysis of a run's results (``POST /runs/{id}/reanalyze``), a background task.

A request (:func:`request`) records the run's re-analysis as ``queued`` in ``results_reanalysis``
and enqueues the task ``reanalyze_run_results`` (in-process for ``serve``, arq for scale-out); a
request while one is queued or running answers with that one (no concurrent duplicate), unless
it showed no sign of life for ``STALE`` (its process died): then a new one starts. The task marks
it ``running``, re-analyses the jobs (touching the row after each), and ends ``done`` (``version``
+ 1) or ``failed`` (``error``); each change is the live event ``reanalysis``
``{run_id, state, generation, version}``.

Analysis consumes a job's staging table, so re-running it means staging the job's stored results
again: within one transaction that holds the branch lock, the job's ``test_result`` rows are
copied back into its staging table and deleted, and the ordinary analysis
(:func:`kraken.results.analysis.analyse_job_tx`) inserts them anew. Each job's results are
therefore replaced, never duplicated, however often this runs; a failure rolls the job back.

The history a job is compared with is what it was the first time: for a CI job the CI flows
before its own, for a dev job the branch's sealed CI history. Later flows keep their figures
(they are not re-analysed), and quarantine counters are not advanced a second time. Jobs whose
results still wait for their first analysis are left to it; issues are not re-analysed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.control.effects import Effects
from kraken.core.clock import utcnow
from kraken.core.db import Database
from kraken.core.sql import insert_ignore
from kraken.core.transient import is_transient
from kraken.models.results import ResultsBranch, ResultsJob, ResultsReanalysis
from kraken.results.analysis import analyse_job_tx
from kraken.results.ingest import PERF_MIN_DURATION, create_stage, is_postgres, stage_table
from kraken.results.locks import lock_branch
from kraken.results.statuses import KIND_CI
from kraken.workers.registry import TaskContext, task

log = logging.getLogger(__name__)

TASK = "reanalyze_run_results"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (QUEUED, RUNNING)
STALE = timedelta(minutes=10)  # a queued or running re-analysis silent this long is lost (its process died)


async def _locked(session: AsyncSession, run_id: int) -> ResultsReanalysis | None:
    stmt = sa.select(ResultsReanalysis).where(ResultsReanalysis.run_id == run_id)  # type: ignore[arg-type]
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def _announce(row: ResultsReanalysis, effects: Effects) -> None:
    effects.event("reanalysis", run_id=row.run_id, state=row.state, generation=row.generation, version=row.version)


async def request(session: AsyncSession, run_id: int, effects: Effects) -> tuple[ResultsReanalysis, bool]:
    """Inside a write transaction: the run's queued or running re-analysis (False), else a new one
    queued, its task recorded in ``effects`` (True)."""
    now = utcnow()
    await insert_ignore(
        session,
        ResultsReanalysis,
        {"run_id": run_id, "state": DONE, "generation": 0, "version": 0, "requested": now, "touched": now, "jobs": []},
    )
    row = await _locked(session, run_id)
    assert row is not None
    if row.state in ACTIVE and now - row.touched < STALE:
        return row, False
    row.state, row.generation, row.requested, row.touched = QUEUED, row.generation + 1, now, now
    row.started = row.finished = row.error = None
    session.add(row)
    await session.flush()
    effects.enqueue(TASK, key=f"{TASK}:{run_id}:{row.generation}", run_id=run_id, generation=row.generation)
    _announce(row, effects)
    return row, True


async def state_of(session: AsyncSession, run_id: int) -> ResultsReanalysis | None:
    return await session.get(ResultsReanalysis, run_id)


async def _update(ctx: TaskContext, run_id: int, generation: int, **values: object) -> bool:
    """Change the run's re-analysis row if it is still this generation's and active; announce it."""
    effects = Effects()
    async with ctx.db.transaction(quick=True) as s:
        row = await _locked(s, run_id)
        if row is None or row.generation != generation or row.state not in ACTIVE:
            return False
        for name, value in values.items():
            setattr(row, name, value)
        row.touched = utcnow()
        s.add(row)
        if "state" in values:
            _announce(row, effects)
    await effects.apply(ctx.bus, ctx.queue)
    return True


@task
async def reanalyze_run_results(ctx: TaskContext, run_id: int, generation: int) -> None:
    """Re-analyse the run's results for the request of ``generation`` (idempotent: a re-run
    re-analyses again, replacing the same rows; a superseded generation does nothing)."""
    if not await _update(ctx, run_id, generation, state=RUNNING, started=utcnow()):
        return

    async def touch() -> None:
        await _update(ctx, run_id, generation)

    try:
        jobs = await reanalyze_run(ctx.db, run_id, touch)
    except Exception as exc:
        if is_transient(exc):
            raise  # the queue runs it again; the row stays running, the same generation
        log.exception("re-analysis of run %d failed", run_id)
        await _update(
            ctx, run_id, generation, state=FAILED, finished=utcnow(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return
    async with ctx.db.session(quick=True) as s:
        row = await s.get(ResultsReanalysis, run_id)
        version = (row.version if row else 0) + 1
    await _update(ctx, run_id, generation, state=DONE, finished=utcnow(), jobs=jobs, version=version)


async def reanalyze_run(db: Database, run_id: int, after_job: Callable[[], Awaitable[None]] | None = None) -> list[int]:
    """Re-analyse every analysed job of the run; returns the jobs re-analysed. ``after_job`` is
    awaited after each job (the task's sign of life)."""
    async with db.session() as s:
        jobs = [
            (int(r[0]), int(r[1]))
            for r in (
                await s.execute(
                    sa.text("SELECT job_id, branch_id FROM results_job WHERE run_id = :r ORDER BY job_id"),
                    {"r": run_id},
                )
            ).all()
        ]
    done = []
    for job_id, branch_id in jobs:
        async with db.transaction() as s:
            await lock_branch(s, branch_id)
            if await _reanalyze_job(s, job_id):
                done.append(job_id)
        if after_job is not None:
            await after_job()
    return done


async def _reanalyze_job(session: AsyncSession, job_id: int) -> bool:
    stmt = sa.select(ResultsJob).where(ResultsJob.job_id == job_id)  # type: ignore[arg-type]
    if is_postgres(session):
        stmt = stmt.with_for_update()
    rj = (await session.execute(stmt)).scalar_one_or_none()
    if rj is None or rj.staged > 0 or rj.analysed == 0:
        return False  # nothing analysed yet, or its first analysis is pending
    vals = "CAST(r.values_json AS TEXT)"
    await create_stage(session, job_id)
    where = {"r": rj.run_id, "j": job_id}
    res = await session.execute(
        sa.text(
            f"INSERT INTO {stage_table(job_id)} (ord, step_index, name, status, duration, message, vals) "
            f"SELECT r.ord, r.step_index, t.name, r.status, r.duration, r.message, {vals} "
            "FROM test_result r JOIN test_case t ON t.id = r.test_case_id WHERE r.run_id = :r AND r.job_id = :j"
        ),
        where,
    )
    staged = int(res.rowcount)  # type: ignore[attr-defined]
    perf = int(
        (
            await session.execute(
                sa.text(
                    "SELECT count(*) FROM test_result r WHERE r.run_id = :r AND r.job_id = :j "
                    "AND (r.values_json IS NOT NULL OR r.duration >= :d)"
                ),
                {**where, "d": PERF_MIN_DURATION},
            )
        ).scalar()
        or 0
    )
    await session.execute(sa.text("DELETE FROM test_result WHERE run_id = :r AND job_id = :j"), where)
    rj.staged, rj.analysed, rj.perf_candidates = staged, 0, perf
    session.add(rj)
    await session.flush()
    rb = await session.get(ResultsBranch, rj.branch_id)
    sealed = rb.sealed_seq if rb is not None else 0
    if rj.flow_kind == KIND_CI:
        sealed = min(sealed, int(rj.flow_seq) - 1)
    await analyse_job_tx(session, job_id, sealed, after_quarantine=False)
    return True
