"""Run and flow summaries of test results and issues, summed from the per-job summaries that
the analysis stores (a run has few jobs, so this is cheap whatever the number of results)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.models.results import ResultsJob
from kraken.results.statuses import STATUS_NAMES

COUNTERS = (
    "total",
    *STATUS_NAMES,
    "new",
    "fixes",
    "regressions",
    "no_change",
    "flaky",
    "perf_regressions",
    "perf_improvements",
    "issues",
    "new_issues",
)


def combine(jobs: list[ResultsJob]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    matrix: Counter[tuple[int, int, int]] = Counter()
    staged = 0
    for rj in jobs:
        summary = rj.summary or {}
        for key in COUNTERS:
            counts[key] += int(summary.get(key) or 0)
        for s, c, f, n in summary.get("matrix") or []:
            matrix[(s, c, f)] += n
        staged += rj.staged + rj.issues_pending
    out: dict[str, Any] = {key: counts[key] for key in COUNTERS}
    out["analysis"] = "pending" if staged else ("done" if jobs else "none")
    out["pending_results"] = sum(rj.staged for rj in jobs)
    out["received"] = sum(rj.received for rj in jobs)
    out["jobs"] = [
        {
            "job_id": rj.job_id,
            "analysis": "pending" if rj.staged or rj.issues_pending else "done",
            "analysis_seconds": rj.analysis_seconds,
            "total": int((rj.summary or {}).get("total") or 0),
            "failed": int((rj.summary or {}).get("failed") or 0) + int((rj.summary or {}).get("error") or 0),
            "regressions": int((rj.summary or {}).get("regressions") or 0),
        }
        for rj in jobs
    ]
    out["matrix"] = [[s, c, f, n] for (s, c, f), n in sorted(matrix.items())]
    return out


async def _jobs(session: AsyncSession, column: Any, value: int) -> list[ResultsJob]:
    stmt = sa.select(ResultsJob).where(column == value).order_by(ResultsJob.job_id)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def run_summary(session: AsyncSession, run_id: int) -> dict[str, Any]:
    return combine(await _jobs(session, ResultsJob.run_id, run_id))


async def flow_summary(session: AsyncSession, flow_id: int) -> dict[str, Any]:
    return combine(await _jobs(session, ResultsJob.flow_id, flow_id))


async def job_summaries(session: AsyncSession, run_id: int, job_id: int | None = None) -> list[ResultsJob]:
    jobs = await _jobs(session, ResultsJob.run_id, run_id)
    return [rj for rj in jobs if job_id is None or rj.job_id == job_id]
