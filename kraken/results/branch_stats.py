"""A branch's figures over its last CI flows (the branch page's charts): pass ratio, failures,
regressions, flaky tests and duration per flow, summed from the per-job summaries the analysis
stores, so that a chart of many flows costs two indexed reads whatever the number of results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.models import Flow
from kraken.models.results import ResultsJob
from kraken.results.summary import combine


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start is not None and end is not None else None


async def branch_stats(session: AsyncSession, branch_id: int, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` CI flows of the branch, oldest first, each with its figures (a flow
    without test results has ``total`` 0 and no ``pass_ratio``)."""
    flows = list(
        (
            await session.execute(
                sa.select(Flow)
                .where(Flow.branch_id == branch_id, Flow.kind == "ci")  # type: ignore[arg-type]
                .order_by(Flow.seq.desc())  # type: ignore[attr-defined]
                .limit(limit)
            )
        ).scalars()
    )
    ids = [f.id for f in flows]
    by_flow: dict[int, list[ResultsJob]] = {int(i): [] for i in ids if i is not None}
    if ids:
        jobs = (
            await session.execute(sa.select(ResultsJob).where(ResultsJob.flow_id.in_(ids)))  # type: ignore[attr-defined]
        ).scalars()
        for rj in jobs:
            by_flow[int(rj.flow_id)].append(rj)
    out = []
    for f in reversed(flows):
        c = combine(by_flow[int(f.id)])  # type: ignore[arg-type]
        total = int(c["total"])
        out.append(
            {
                "flow_id": f.id,
                "seq": f.seq,
                "label": f.label,
                "state": f.state,
                "created": f.created,
                "duration": _seconds(f.started or f.created, f.finished),
                "total": total,
                "passed": int(c["passed"]),
                "failed": int(c["failed"]) + int(c["error"]),
                "regressions": int(c["regressions"]),
                "fixes": int(c["fixes"]),
                "flaky": int(c["flaky"]),
                "pass_ratio": round(int(c["passed"]) / total, 4) if total else None,
                "analysis": c["analysis"],
            }
        )
    return out
