"""The regressions of a CI run, grouped by the range of commits that holds their cause.

A regressed test's range runs from the commit of the branch's last CI flow where the test
passed (in the same environment) to the commit of the run's flow.  Tests with the same range
are searched together.  A test flagged flaky in the run or in the branch's last FLAKY_WINDOW CI
flows is never bisected: its group gets state ``range``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.results.statuses import CHANGE_REGRESSION, KIND_CI, PASSED

FLAKY_WINDOW = 10  # CI flows back in which a flaky flag keeps a test from being bisected


@dataclass
class RegressionGroup:
    good_commit: str | None
    bad_commit: str | None
    flaky: bool
    tests: list[str] = field(default_factory=list)


_SQL = f"""
SELECT tc.name, f."commit",
       (SELECT gf."commit" FROM test_result g JOIN flow gf ON gf.id = g.flow_id
         WHERE g.branch_id = tr.branch_id AND g.test_case_id = tr.test_case_id AND g.env_id = tr.env_id
           AND g.flow_kind = {KIND_CI} AND g.flow_seq < tr.flow_seq AND g.status = {PASSED}
         ORDER BY g.flow_seq DESC LIMIT 1) AS good,
       CASE WHEN tr.flaky OR EXISTS (
         SELECT 1 FROM test_result h WHERE h.branch_id = tr.branch_id AND h.test_case_id = tr.test_case_id
           AND h.flow_kind = {KIND_CI} AND h.flow_seq > tr.flow_seq - {FLAKY_WINDOW} AND h.flaky
       ) THEN 1 ELSE 0 END AS flaky
FROM test_result tr
JOIN test_case tc ON tc.id = tr.test_case_id
JOIN flow f ON f.id = tr.flow_id
WHERE tr.run_id = :run AND tr.change = {CHANGE_REGRESSION} AND tr.flow_kind = {KIND_CI}
ORDER BY tc.name
"""


async def regression_groups(session: AsyncSession, run_id: int) -> list[RegressionGroup]:
    """The run's regressed tests grouped by (good commit, bad commit, flaky)."""
    groups: dict[tuple[str | None, str | None, bool], RegressionGroup] = {}
    for name, bad, good, flaky in (await session.execute(sa.text(_SQL), {"run": run_id})).all():
        key = (good, bad, bool(flaky))
        group = groups.setdefault(key, RegressionGroup(good, bad, bool(flaky)))
        if name not in group.tests:
            group.tests.append(str(name))
    return list(groups.values())


async def unanalysed_jobs(session: AsyncSession, run_id: int) -> int:
    """Jobs of the run whose results wait for analysis (their regressions are not known yet)."""
    row = await session.execute(
        sa.text("SELECT count(*) FROM results_job WHERE run_id = :r AND staged > 0"),
        {"r": run_id},
    )
    return int(row.scalar() or 0)


async def test_outcomes(session: AsyncSession, flow_id: int, tests: list[str]) -> dict[str, bool]:
    """For a bisection flow: whether each of ``tests`` passed (True) or not (False); a test
    without an executed result is absent."""
    rows = await session.execute(
        sa.text(
            "SELECT tc.name, tr.status FROM test_result tr JOIN test_case tc ON tc.id = tr.test_case_id "
            "WHERE tr.flow_id = :f AND tr.status IN (0, 1, 2)"
        ),
        {"f": flow_id},
    )
    wanted = set(tests)
    out: dict[str, bool] = {}
    for name, status in rows.all():
        if name in wanted:
            out[name] = out.get(name, True) and int(status) == PASSED
    return out
