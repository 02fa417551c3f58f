"""Quarantine of tests per branch (``kraken.models.quarantine``): what ingestion and analysis need.

- Ingestion counts the failures of quarantined tests apart (``count_failures``), so they never
  make a run ``failed``; the results themselves are recorded and analysed as any other.
- After a CI job's analysis (``after_analysis``): with the branch's ``quarantine_flaky`` the tests
  the job found flaky are quarantined (by "kraken"); each quarantined test that ran in the job
  counts a passing job (all its results passed) or starts again from 0 (one failed), and with
  ``quarantine_release_after`` = K it is released after K passing jobs in a row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kraken.models import Branch
from kraken.models.base import utcnow
from kraken.models.quarantine import TestQuarantine
from kraken.models.results import ResultsJob, TestCase
from kraken.results.statuses import ERROR, FAILED, KIND_CI, PASSED, flaky_rules

log = logging.getLogger(__name__)

AUTO_BY = "kraken"


async def names(session: AsyncSession, branch_id: int) -> set[str]:
    """The names of the branch's quarantined tests (a handful: one indexed read)."""
    rows = await session.execute(
        sa.select(col(TestCase.name))
        .join(TestQuarantine, col(TestQuarantine.test_case_id) == TestCase.id)
        .where(col(TestQuarantine.branch_id) == branch_id)
    )
    return set(rows.scalars())


async def among(session: AsyncSession, branch_id: int, test_case_ids: set[int]) -> set[int]:
    """Which of these tests are quarantined on the branch (a page of results: one indexed read)."""
    if not test_case_ids:
        return set()
    rows = await session.execute(
        sa.select(col(TestQuarantine.test_case_id)).where(
            col(TestQuarantine.branch_id) == branch_id, col(TestQuarantine.test_case_id).in_(sorted(test_case_ids))
        )
    )
    return set(rows.scalars())


async def count_failures(
    session: AsyncSession, branch_id: int, rows: Sequence[tuple[Any, ...]], attempt: int, rerun_clears: bool
) -> tuple[int, int]:
    """(change of the job's failed count, change of its quarantined count) for staged ``rows``
    (``(ord, step_index, name, status, ...)``) of one ``test_results`` message.

    A first run counts each failure, apart when its test is quarantined. A rerun's failures were
    counted by the run before; with ``rerun_clears`` each of its passes takes its test's failure
    back (failed, then passed: flaky)."""
    if attempt == 1:
        failed = [r[2] for r in rows if r[3] in (FAILED, ERROR)]
        if not failed:
            return 0, 0
        quarantined = await names(session, branch_id)
        q = sum(1 for n in failed if n in quarantined)
        return len(failed) - q, q
    if not rerun_clears:
        return 0, 0
    passed = [r[2] for r in rows if r[3] == PASSED]
    if not passed:
        return 0, 0
    quarantined = await names(session, branch_id)
    q = sum(1 for n in passed if n in quarantined)
    return -(len(passed) - q), -q


async def _insert_ignore(session: AsyncSession, values: list[dict[str, Any]]) -> None:
    table = TestQuarantine.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await session.execute(pg_insert(table).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        await session.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())


async def add(session: AsyncSession, branch_id: int, test_case_id: int, reason: str, by: str) -> TestQuarantine:
    """Quarantine a test on a branch (again: its reason and who are updated, its passes restart)."""
    stmt = sa.select(TestQuarantine).where(
        col(TestQuarantine.branch_id) == branch_id,
        col(TestQuarantine.test_case_id) == test_case_id,
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        row = TestQuarantine(branch_id=branch_id, test_case_id=test_case_id, reason=reason, created_by=by)
    else:
        row.reason, row.created_by, row.passes = reason, by, 0
    session.add(row)
    await session.flush()
    return row


async def remove(session: AsyncSession, branch_id: int, test_case_id: int) -> bool:
    res = await session.execute(
        sa.delete(TestQuarantine).where(
            col(TestQuarantine.branch_id) == branch_id,
            col(TestQuarantine.test_case_id) == test_case_id,
        )
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def listing(session: AsyncSession, branch_id: int) -> list[tuple[TestQuarantine, str]]:
    rows = await session.execute(
        sa.select(TestQuarantine, col(TestCase.name))
        .join(TestCase, col(TestCase.id) == TestQuarantine.test_case_id)
        .where(col(TestQuarantine.branch_id) == branch_id)
        .order_by(col(TestCase.name))
    )
    return [(q, name) for q, name in rows.all()]


async def after_analysis(session: AsyncSession, rj: ResultsJob) -> None:
    """Auto-quarantine and auto-release after a CI job's results were analysed (branch locked)."""
    if rj.flow_kind != KIND_CI:
        return  # a dev flow runs code under review: it neither quarantines nor releases
    branch = await session.get(Branch, rj.branch_id)
    if branch is None:
        return
    if branch.quarantine_flaky and int((rj.summary or {}).get("flaky") or 0) > 0:
        await _quarantine_flaky(session, rj)
    await _count_passes(session, rj, branch.quarantine_release_after)


async def _quarantine_flaky(session: AsyncSession, rj: ResultsJob) -> None:
    rows = (
        await session.execute(
            sa.text(
                "SELECT test_case_id, max(flaky_rule) FROM test_result WHERE run_id = :r AND job_id = :j AND flaky "
                "GROUP BY test_case_id"
            ),
            {"r": rj.run_id, "j": rj.job_id},
        )
    ).all()
    if rows:
        now = utcnow()
        values = [
            {
                "branch_id": rj.branch_id,
                "test_case_id": int(tc),
                "reason": f"flaky ({', '.join(flaky_rules(int(rule))) or 'flaky'}) in CI flow {rj.flow_seq}",
                "created_by": AUTO_BY,
                "passes": 0,
                "created": now,
            }
            for tc, rule in rows
        ]
        await _insert_ignore(session, values)
        log.info("branch %s: %d flaky test(s) quarantined", rj.branch_id, len(rows))


async def _count_passes(session: AsyncSession, rj: ResultsJob, release_after: int | None) -> None:
    rows = (
        await session.execute(
            sa.text(
                "SELECT q.id, q.passes, max(CASE WHEN r.status IN (1, 2) THEN 1 ELSE 0 END), "
                "max(CASE WHEN r.status = 0 THEN 1 ELSE 0 END) "
                "FROM test_quarantine q JOIN test_result r ON r.test_case_id = q.test_case_id "
                "AND r.branch_id = q.branch_id AND r.run_id = :r AND r.job_id = :j "
                "WHERE q.branch_id = :b GROUP BY q.id, q.passes"
            ),
            {"r": rj.run_id, "j": rj.job_id, "b": rj.branch_id},
        )
    ).all()
    released: list[int] = []
    for qid, passes, failed, passed in rows:
        if failed:
            new = 0
        elif passed:
            new = int(passes) + 1
        else:
            continue  # skipped: says nothing
        if release_after is not None and new >= release_after:
            released.append(int(qid))
        elif new != passes:
            await session.execute(sa.update(TestQuarantine).where(col(TestQuarantine.id) == qid).values(passes=new))
    if released:
        await session.execute(sa.delete(TestQuarantine).where(col(TestQuarantine.id).in_(released)))
        log.info("branch %s: %d test(s) released from quarantine", rj.branch_id, len(released))
