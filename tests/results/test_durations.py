"""The durations a split job balances with: pinned when its jobs are made, read when a part starts
(SQLite and PostgreSQL)."""

from __future__ import annotations

from kraken.results.durations import durations_of, history_jobs, pin_history
from tests.results.conftest import World


async def test_history_is_the_latest_ci_flow_of_the_job_and_pinned(world: World) -> None:
    async with world.db.session() as s:
        assert await history_jobs(s, world.branch_id, "tests/tests") == []
    _, job1 = await world.ci_flow([["t.a", "passed", 2.0], ["t.b", "failed", 0.5, "x"], ["t.c", "skipped"]])
    run1 = await world.run_of(job1)
    async with world.db.session() as s:
        assert await history_jobs(s, world.branch_id, "tests/tests") == [[run1, job1]]
        assert await history_jobs(s, world.branch_id, "tests/other") == []
        assert await durations_of(s, [[run1, job1]]) == {"t.a": 2.0, "t.b": 0.5}

    # a later flow: the pinned history of parts made before it does not move
    splits = [{"part": p, "parts": 2, "group": "tests"} for p in (1, 2)]
    async with world.db.session() as s:
        await pin_history(s, world.branch_id, "tests", splits)
    assert [sp["history"] for sp in splits] == [[[run1, job1]], [[run1, job1]]]
    _, job2 = await world.ci_flow([["t.a", "passed", 3.0], ["t.a", "passed", 4.0]])  # a rerun: the longest counts
    run2 = await world.run_of(job2)
    async with world.db.session() as s:
        assert await durations_of(s, splits[0]["history"]) == {"t.a": 2.0, "t.b": 0.5}
        assert await history_jobs(s, world.branch_id, "tests/tests") == [[run2, job2]]
        assert await durations_of(s, [[run2, job2]]) == {"t.a": 4.0}
