"""The analysis tasks tell live pages when results are in (event ``results``), in CI flow order."""

from __future__ import annotations

from kraken.core.bus import MemoryBus
from kraken.core.config import Settings
from kraken.models import Run
from kraken.results.analysis import analyze_flow_results, analyze_job_results
from kraken.workers.queue import InProcessQueue
from kraken.workers.registry import TaskContext
from tests.results.conftest import World


async def test_results_events_follow_analysis_order(world: World) -> None:
    bus = MemoryBus()
    ctx = TaskContext(db=world.db, bus=bus, queue=InProcessQueue(), settings=Settings())
    sub = await bus.subscribe("events")
    first = await world.flow("ci")
    job1 = await world.job(first)
    second = await world.flow("ci")
    job2 = await world.job(second)
    await world.send(job1, [["t::a", "passed", 0.1, None, None]])
    await world.send(job2, [["t::a", "failed", 0.1, "boom", None]])

    # the later CI flow ends first: its results must wait for the earlier flow
    await world.complete_job(job2)
    await analyze_job_results(ctx, job2)
    assert sub.queue.empty()

    await world.complete_job(job1)
    await analyze_job_results(ctx, job1)
    await world.complete_flow(first)
    await analyze_flow_results(ctx, first)
    events = [sub.queue.get_nowait()[1] for _ in range(sub.queue.qsize())]
    assert [e["job_id"] for e in events] == [job1, job2]
    async with world.db.session() as s:
        run2 = await s.get(Run, await world.run_of(job2))
    assert events[1] == {"kind": "results", "job_id": job2, "run_id": run2.id, "flow_id": second}  # type: ignore[union-attr]
    assert (await world.results(job2))["t::a"]["change"] == "regression"


async def test_flows_without_results_take_no_lock_and_are_sealed_when_needed(world: World) -> None:
    from kraken.models.results import ResultsBranch

    await world.ci_flow([["t::a", "passed", 0.1, None, None]])
    # a CI flow whose job reports no results: nothing to analyse, nothing sealed for it
    empty = await world.flow("ci")
    await world.finish_job(await world.job(empty))
    async with world.db.session() as s:
        sealed_before = (await s.get(ResultsBranch, world.branch_id)).sealed_seq  # type: ignore[union-attr]
    await world.finish_flow(empty)
    async with world.db.session() as s:
        assert (await s.get(ResultsBranch, world.branch_id)).sealed_seq == sealed_before  # type: ignore[union-attr]
    # the next flow with results seals the empty one first and compares with the first flow
    _, job = await world.ci_flow([["t::a", "failed", 0.1, "boom", None]])
    assert (await world.results(job))["t::a"]["change"] == "regression"
    async with world.db.session() as s:
        assert (await s.get(ResultsBranch, world.branch_id)).sealed_seq == sealed_before + 2  # type: ignore[union-attr]
