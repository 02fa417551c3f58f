"""Forced re-analysis of a run's results (``POST /runs/{id}/reanalyze``).

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

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.core.db import Database
from kraken.models.results import ResultsBranch, ResultsJob
from kraken.results.analysis import analyse_job_tx
from kraken.results.ingest import PERF_MIN_DURATION, create_stage, is_postgres, stage_table
from kraken.results.locks import lock_branch
from kraken.results.statuses import KIND_CI


async def reanalyze_run(db: Database, run_id: int) -> list[int]:
    """Re-analyse every analysed job of the run; returns the jobs re-analysed."""
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
