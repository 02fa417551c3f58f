"""Forced re-analysis as a background task (``POST /runs/{id}/reanalyze`` answers 202): in-process
(``kraken serve``) and through arq with a real worker (scale-out), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import sqlalchemy as sa

from kraken.api.routes.results import router
from kraken.core.bus import MemoryBus, Subscription
from kraken.core.config import Settings
from kraken.workers.queue import ArqQueue, InProcessQueue
from kraken.workers.registry import TaskContext
from tests.results.conftest import World, admin_client
from tests.results.test_api import res


async def next_event(
    sub: Subscription, wanted: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        while True:
            _, event = await sub.queue.get()
            if wanted(event):
                return event  # type: ignore[no-any-return]

    return await asyncio.wait_for(read(), timeout)


async def spoiled_run(world: World) -> tuple[int, int, int, dict[str, Any], dict[str, Any]]:
    """Three CI flows; the middle run's analysed figures are then spoiled. Returns (run, job,
    later job, the job's figures before, the later job's)."""
    await world.ci_flow(res(30))
    _, job = await world.ci_flow(res(30, failing={4, 5}))
    run = await world.run_of(job)
    _, later_job = await world.ci_flow(res(30, failing={5}))
    before, later_before = await world.results(job), await world.results(later_job)
    async with world.db.transaction() as s:  # spoil what the analysis computed
        await s.execute(
            sa.text("UPDATE test_result SET change = 0, age = 77, relevancy = 0 WHERE job_id = :j"), {"j": job}
        )
        await s.execute(sa.text("UPDATE results_hist SET change = 0, age = 77 WHERE job_id = :j"), {"j": job})
    return run, job, later_job, before, later_before


async def regressions(client: httpx.AsyncClient, run: int) -> set[str]:
    body = (await client.get(f"/api/runs/{run}/results?change=regression")).json()
    return {i["test"] for i in body["items"]}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v | {"id": 0} for k, v in a.items()} == {k: v | {"id": 0} for k, v in b.items()}


async def test_reanalysis_runs_in_the_background_and_replaces_the_figures(world: World) -> None:
    """The route answers 202 ``queued``; the task re-analyses from the history the run had, keeps
    one row per result however often it runs, leaves later flows alone, and says ``done``
    (version + 1) by the event ``reanalysis``."""
    run, job, later_job, before, later_before = await spoiled_run(world)
    bus, queue = MemoryBus(), InProcessQueue()
    settings = Settings()
    queue.bind(TaskContext(db=world.db, bus=bus, queue=queue, settings=settings))
    runtime = SimpleNamespace(db=world.db, bus=bus, queue=queue, settings=settings)
    sub = await bus.subscribe("events")
    async with admin_client(world.db, router, runtime) as client:
        summary = (await client.get(f"/api/runs/{run}/summary")).json()
        never = (await client.get(f"/api/runs/{run}/reanalysis")).json()
        assert never == {
            "run_id": run,
            "state": "none",
            "generation": 0,
            "version": 0,
            "requested": None,
            "started": None,
            "finished": None,
            "jobs": [],
            "error": None,
        }
        assert await regressions(client, run) == set()
        for version in (1, 2):
            r = await client.post(f"/api/runs/{run}/reanalyze")
            assert r.status_code == 202, r.text
            body = r.json()
            assert (body["state"], body["generation"], body["version"]) == ("queued", version, version - 1)
            assert body["requested"] is not None and body["finished"] is None
            done = await next_event(sub, lambda e: e["kind"] == "reanalysis" and e["state"] in ("done", "failed"))
            assert done == {
                "kind": "reanalysis",
                "run_id": run,
                "state": "done",
                "generation": version,
                "version": version,
            }
            got = (await client.get(f"/api/runs/{run}/reanalysis")).json()
            assert (got["state"], got["version"], got["jobs"], got["error"]) == ("done", version, [job], None)
            assert got["started"] is not None and got["finished"] is not None
            after = await world.results(job)
            assert len(after) == 30 and same(after, before)
            async with world.db.session() as s:
                n = (
                    await s.execute(sa.text("SELECT count(*) FROM test_result WHERE job_id = :j"), {"j": job})
                ).scalar()
            assert n == 30
        assert await regressions(client, run) == {"suite::test_0004", "suite::test_0005"}
        # the histogram the triage filters are counted from was written again too (no age 77 left)
        for query, total in (("age_min=77", 0), ("age_max=0", 2), ("age_min=0&instability_max=9", 30)):
            body = (await client.get(f"/api/runs/{run}/results?{query}")).json()
            assert body["total"] == total == len(body["items"]), (query, body["total"])

        def figures(sm: dict[str, Any]) -> dict[str, Any]:
            return sm | {"jobs": [j | {"analysis_seconds": 0} for j in sm["jobs"]]}

        assert figures((await client.get(f"/api/runs/{run}/summary")).json()) == figures(summary)
        assert await world.results(later_job) == later_before
        assert (await client.post("/api/runs/999999/reanalyze")).status_code == 404
        assert (await client.get("/api/runs/999999/reanalysis")).status_code == 404
        assert (await client.post("/api/runs/0/reanalyze")).status_code == 422
    await queue.drain()


async def test_a_request_while_one_is_queued_joins_it(world: World, redis_url: str) -> None:
    """Scale-out: the request only queues the task (no worker runs: the figures stay spoiled); a
    second request answers with the queued one and queues nothing; a real arq worker then runs
    the one task; a request after it is done starts the next one."""
    from arq.worker import Worker

    from kraken.workers.arq_settings import worker_settings

    run, job, _, before, _ = await spoiled_run(world)
    bus, queue = MemoryBus(), ArqQueue(redis_url)
    settings = Settings(redis_url=redis_url)
    runtime = SimpleNamespace(db=world.db, bus=bus, queue=queue, settings=settings)
    sub = await bus.subscribe("events")
    try:
        async with admin_client(world.db, router, runtime) as client:
            first = await client.post(f"/api/runs/{run}/reanalyze")
            second = await client.post(f"/api/runs/{run}/reanalyze")
            assert first.status_code == second.status_code == 202, (first.text, second.text)
            assert first.json()["state"] == "queued" and first.json()["generation"] == 1
            assert second.json() == first.json()  # the same re-analysis, not a second one
            assert len(await queue._pool.queued_jobs()) == 1
            assert await regressions(client, run) == set()  # answered without analysing
            queued = await next_event(sub, lambda e: e["kind"] == "reanalysis")
            assert queued["state"] == "queued" and sub.queue.empty()  # one announcement: one request started it

            ctx = TaskContext(db=world.db, bus=bus, queue=queue, settings=settings)
            worker = Worker(**{**worker_settings(settings, ctx, lambda: None), "burst": True})
            try:
                await worker.async_run()  # runs what is queued, then returns
            finally:
                await worker.close()
            got = (await client.get(f"/api/runs/{run}/reanalysis")).json()
            assert (got["state"], got["generation"], got["version"], got["jobs"]) == ("done", 1, 1, [job])
            assert same(await world.results(job), before)
            assert await regressions(client, run) == {"suite::test_0004", "suite::test_0005"}
            states = [e["state"] for _, e in [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]]
            assert states == ["running", "done"]

            third = (await client.post(f"/api/runs/{run}/reanalyze")).json()
            assert (third["state"], third["generation"], third["version"]) == ("queued", 2, 1)
    finally:
        await queue.close()
