"""The durations a job split by timing is balanced with (``"parallel": N``, ``kraken.agent.tools.split``).

When a run's jobs are made, each part of a split job records its history: the analysed jobs of
the branch's latest CI flow where the job (any of its parts, or the job before it was split:
all share the results key ``stage/job``) has results. With its assignment a part gets the
durations of those jobs' tests: per test, its longest result there (reruns included), at most
MAX_TESTS tests, the longest first (the others count as tests without a history, spread by
count). Every part of a run, and a rerun of one, so sees the same durations."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.models import Job
from kraken.results.statuses import KIND_CI

MAX_TESTS = 100_000


def results_key(stage_name: str, job: Job) -> str:
    """Whose results a job's results compare with: its stage and job name (a split job's name
    without its part, so that every part and the unsplit job share one history)."""
    name = str(job.split["group"]) if job.split and job.split.get("group") else job.name
    return f"{stage_name}/{name}"[:420]


async def history_jobs(session: AsyncSession, branch_id: int, job_key: str) -> list[list[int]]:
    """The analysed jobs (``[run_id, job_id]``) of ``job_key`` in the branch's latest CI flow that has
    some: pinned in every part when the run's jobs are made, so that all parts (and their reruns)
    balance with the same durations whenever they start."""
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
        return []
    rows = (
        await session.execute(
            sa.text(
                "SELECT run_id, job_id FROM results_job WHERE branch_id = :b AND job_key = :k AND flow_kind = :ci "
                "AND flow_seq = :s AND analysed > 0 ORDER BY job_id"
            ),
            {**params, "s": int(seq)},
        )
    ).all()
    return [[int(r), int(j)] for r, j in rows]


async def durations_of(session: AsyncSession, jobs: list[list[int]]) -> dict[str, float]:
    """Per test, its longest result in these jobs (at most MAX_TESTS, the longest first)."""
    if not jobs:
        return {}
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


async def pin_history(session: AsyncSession, branch_id: int, stage_name: str, splits: list[dict[str, Any]]) -> None:
    """Record in each part's split the history it balances by (``history_jobs``), once per job."""
    found: dict[str, list[list[int]]] = {}
    for split in splits:
        key = f"{stage_name}/{split['group']}"[:420]
        if key not in found:
            found[key] = await history_jobs(session, branch_id, key)
        split["history"] = found[key]


async def split_payload(session: AsyncSession, job: Job) -> dict[str, Any]:
    """``JobSpec.split`` of a part of a split job: its place and the durations to balance by."""
    assert job.split is not None
    return {
        "part": int(job.split["part"]),
        "parts": int(job.split["parts"]),
        "tests_list": job.split.get("tests_list"),
        "durations": await durations_of(session, job.split.get("history") or []),
    }
