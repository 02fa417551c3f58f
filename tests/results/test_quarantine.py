"""Quarantine and reruns on the results side (SQLite and PostgreSQL): what counts against a job,
auto-quarantine of flaky tests and auto-release after K passing CI jobs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kraken.control.effects import Effects
from kraken.models import Branch, Job
from kraken.protocol import TestResults
from kraken.results import quarantine
from kraken.results.ingest import on_test_results
from tests.results.conftest import World


async def send(world: World, job_id: int, results: list[list[Any]], attempt: int = 1, clears: bool = True) -> None:
    async with world.db.transaction() as s:
        job = await s.get(Job, job_id)
        assert job is not None
        msg = TestResults(job_id=job_id, seq=1, step_index=0, results=results, attempt=attempt, rerun_clears=clears)
        await on_test_results(s, job, msg, Effects())


async def counts(world: World, job_id: int) -> tuple[int, int, int]:
    async with world.db.session() as s:
        job = await s.get(Job, job_id)
        assert job is not None
        return job.tests_total, job.tests_failed, job.tests_quarantined


async def case_id(world: World, name: str) -> int:
    async with world.db.session() as s:
        return int((await s.execute(sa.text("SELECT id FROM test_case WHERE name = :n"), {"n": name})).scalar_one())


async def quarantined(world: World) -> dict[str, tuple[str, int]]:
    async with world.db.session() as s:
        return {name: (q.created_by, q.passes) for q, name in await quarantine.listing(s, world.branch_id)}


async def settings(world: World, flaky: bool, release_after: int | None) -> None:
    async with world.db.transaction() as s:
        b = await s.get(Branch, world.branch_id)
        assert b is not None
        b.quarantine_flaky, b.quarantine_release_after = flaky, release_after
        s.add(b)


async def test_quarantined_failures_count_apart(world: World) -> None:
    _, job = await world.ci_flow([["t.a", "passed"], ["t.b", "failed", 0.1, "boom"]])
    assert await counts(world, job) == (2, 1, 0)
    async with world.db.transaction() as s:
        await quarantine.add(s, world.branch_id, await case_id(world, "t.b"), "known bug", "alice")
    assert await quarantined(world) == {"t.b": ("alice", 0)}

    flow = await world.flow()
    job = await world.job(flow)
    await send(world, job, [["t.a", "failed", 0.1, "x"], ["t.b", "failed", 0.1, "boom"], ["t.c", "error"]])
    assert await counts(world, job) == (3, 2, 1)
    await world.finish_job(job)
    results = await world.results(job)
    assert results["t.b"]["status"] == "failed"  # still recorded and analysed

    async with world.db.transaction() as s:
        assert await quarantine.remove(s, world.branch_id, await case_id(world, "t.b"))
        assert not await quarantine.remove(s, world.branch_id, await case_id(world, "t.b"))
    flow = await world.flow()
    job = await world.job(flow)
    await send(world, job, [["t.b", "failed", 0.1, "boom"]])
    assert await counts(world, job) == (1, 1, 0)


async def test_a_rerun_that_passes_clears_the_failure_and_marks_flaky(world: World) -> None:
    flow = await world.flow()
    job = await world.job(flow)
    await send(world, job, [["t.a", "passed"], ["t.flaky", "failed", 0.1, "once"], ["t.bad", "failed", 0.1, "always"]])
    assert await counts(world, job) == (3, 2, 0)
    await send(world, job, [["t.flaky", "passed"], ["t.bad", "failed", 0.1, "always"]], attempt=2)
    assert await counts(world, job) == (3, 1, 0)  # t.bad failed every time
    await world.finish_job(job)
    async with world.db.session() as s:
        rows = (
            await s.execute(
                sa.text(
                    "SELECT t.name, r.status, r.flaky FROM test_result r JOIN test_case t ON t.id = r.test_case_id "
                    "WHERE r.job_id = :j ORDER BY r.ord"
                ),
                {"j": job},
            )
        ).all()
    # every attempt is recorded; failed-then-passed is flaky (same_commit)
    assert [(n, st, bool(f)) for n, st, f in rows] == [
        ("t.a", 0, False),
        ("t.flaky", 1, True),
        ("t.bad", 1, False),
        ("t.flaky", 0, True),
        ("t.bad", 1, False),
    ]

    flow = await world.flow()
    job = await world.job(flow)
    await send(world, job, [["t.flaky", "failed", 0.1, "once"]])
    await send(world, job, [["t.flaky", "passed"]], attempt=2, clears=False)  # "flaky_fails_run": true
    assert await counts(world, job) == (1, 1, 0)


async def test_flaky_tests_are_quarantined_and_released_after_k_passes(world: World) -> None:
    await settings(world, flaky=True, release_after=2)

    async def ci_job(*attempts: list[list[Any]]) -> None:
        flow = await world.flow()
        job = await world.job(flow)
        for n, results in enumerate(attempts, 1):
            await send(world, job, results, attempt=n)
        await world.finish_job(job)
        await world.finish_flow(flow)

    await ci_job([["t.a", "passed"], ["t.f", "failed", 0.1, "once"]], [["t.f", "passed"]])
    assert await quarantined(world) == {"t.f": ("kraken", 0)}
    async with world.db.session() as s:
        reason = (await quarantine.listing(s, world.branch_id))[0][0].reason
    assert reason == "flaky (same_commit) in CI flow 1"

    await ci_job([["t.a", "passed"], ["t.f", "passed"]])
    assert await quarantined(world) == {"t.f": ("kraken", 1)}
    await ci_job([["t.a", "passed"], ["t.f", "failed", 0.1, "again"]])  # a failure starts the count again
    assert await quarantined(world) == {"t.f": ("kraken", 0)}
    await ci_job([["t.a", "passed"], ["t.f", "passed"]])
    assert await quarantined(world) == {"t.f": ("kraken", 1)}
    await ci_job([["t.a", "passed"], ["t.f", "passed"]])
    assert await quarantined(world) == {}  # released after 2 passing CI jobs in a row


async def test_dev_flows_and_disabled_settings_quarantine_nothing(world: World) -> None:
    flow = await world.flow("dev")
    job = await world.job(flow)
    await settings(world, flaky=True, release_after=1)
    await send(world, job, [["t.f", "failed", 0.1, "once"]])
    await send(world, job, [["t.f", "passed"]], attempt=2)
    await world.finish_job(job)
    assert await quarantined(world) == {}  # code under review does not quarantine

    await settings(world, flaky=False, release_after=None)
    flow = await world.flow()
    job = await world.job(flow)
    await send(world, job, [["t.f", "failed", 0.1, "once"]])
    await send(world, job, [["t.f", "passed"]], attempt=2)
    await world.finish_job(job)
    await world.finish_flow(flow)
    assert await quarantined(world) == {}
