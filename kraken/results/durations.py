"""The durations a job split by timing is balanced with (``"parallel": N``, ``kraken.agent.tools.split``).

A part of a split job gets, with its assignment, the durations of the job's tests in the
branch's latest CI flow where the job (any of its parts, or the job before it was split: all
share the results key ``stage/job``) has analysed results: per test, its longest result there
(reruns included). At most MAX_TESTS tests, the longest first; the others count as tests without
a history (spread by count)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.models import Flow, Job, Run
from kraken.results.statuses import KIND_CI

MAX_TESTS = 100_000


def results_key(stage_name: str, job: Job) -> str:
    """Whose results a job's results compare with: its stage and job name (a split job's name
    without its part, so that every part and the unsplit job share one history)."""
    name = str(job.split["group"]) if job.split and job.split.get("group") else job.name
    return f"{stage_name}/{name}"[:420]


async def recent_durations(session: AsyncSession, branch_id: int, job_key: str) -> dict[str, float]:
    params: dict[str, Any] = {"b": branch_id, "k": job_key, "ci": KIND_CI}
    seq = (
        await session.execute(
            sa.text(
                "SELECT max(flow_seq) FROM results_job WHERE branch_id = :b AND job_key = :k AND flow_kind = :ci "
                "AND analysed > 0"
            ),
            params,
        )
    ).scalar()
    if seq is None:
        return {}
    jobs = (
        await session.execute(
            sa.text(
                "SELECT run_id, job_id FROM results_job WHERE branch_id = :b AND job_key = :k AND flow_kind = :ci "
                "AND flow_seq = :s AND analysed > 0"
            ),
            {**params, "s": int(seq)},
        )
    ).all()
    runs = ", ".join(sorted({str(int(r)) for r, _ in jobs}))
    ids = ", ".join(str(int(j)) for _, j in jobs)
    rows = (
        await session.execute(
            sa.text(
                "SELECT t.name, max(r.duration) AS d FROM test_result r JOIN test_case t ON t.id = r.test_case_id "
                f"WHERE r.run_id IN ({runs}) AND r.job_id IN ({ids}) AND r.duration IS NOT NULL "
                "GROUP BY t.name ORDER BY d DESC, t.name LIMIT :n"
            ),
            {"n": MAX_TESTS},
        )
    ).all()
    return {str(name): float(d) for name, d in rows}


async def split_payload(session: AsyncSession, job: Job, flow: Flow | None) -> dict[str, Any]:
    """``JobSpec.split`` of a part of a split job: its place and the durations to balance by."""
    assert job.split is not None
    run = await session.get(Run, job.run_id)
    assert run is not None
    branch_id = flow.branch_id if flow is not None else None
    if branch_id is None:
        found = await session.get(Flow, run.flow_id)
        assert found is not None
        branch_id = found.branch_id
    return {
        "part": int(job.split["part"]),
        "parts": int(job.split["parts"]),
        "tests_list": job.split.get("tests_list"),
        "durations": await recent_durations(session, int(branch_id), results_key(run.stage_name, job)),
    }
