"""The sandbox stops runaway code (time, memory), keeps working afterwards, and serves concurrent calls."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator

import pytest

from kraken.stage import StageContext, StageSchemaError, evaluate_stage
from kraken.stage.sandbox import SandboxCrash, SandboxLimits, SandboxPool

OK_CODE = (
    "def stage(ctx):\n"
    "    steps = [{'tool': 'shell', 'cmd': 'x'}]\n"
    "    jobs = [{'name': 'j', 'steps': steps, 'environments': [{}]}]\n"
    "    return {'description': ctx.branch_name, 'jobs': jobs}\n"
)
ENDLESS = (
    "def stage(ctx):\n"
    "    n = 0\n"
    "    for i in range(1000000000):\n"
    "        for j in range(1000000000):\n"
    "            n += 1\n"
    "    return {}\n"
)
BIG_STRING = "def stage(ctx):\n    return {'jobs': 'x' * 2000000000}\n"
BIG_LIST = "def stage(ctx):\n    l = [0]\n    for i in range(40):\n        l = l + l\n    return {}\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _description(branch: str) -> str:
    schema = await evaluate_stage(OK_CODE, StageContext(branch_name=branch))
    return str(schema["description"])


async def test_endless_loop_is_stopped_and_the_pool_still_works() -> None:
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(ENDLESS, StageContext())
    assert info.value.message == "stage evaluation took longer than 2 s"
    assert await _description("after-timeout") == "after-timeout"


@pytest.mark.parametrize("code", [BIG_STRING, BIG_LIST], ids=["string", "list"])
async def test_memory_hog_is_stopped_and_the_pool_still_works(code: str) -> None:
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(code, StageContext())
    assert info.value.message == "stage evaluation exceeded the memory limit (256 MB)"
    assert await _description("after-oom") == "after-oom"


@pytest.fixture
async def hard_pool() -> AsyncIterator[SandboxPool]:
    """A pool whose workers do not cancel themselves: the parent must kill them."""
    pool = SandboxPool(SandboxLimits(timeout=0.3, grace=0.2, pool_size=1, max_workers=1, cooperative=False))
    pool.warm_up()
    yield pool
    pool.close()


async def test_unresponsive_worker_is_killed_and_replaced(hard_pool: SandboxPool) -> None:
    [first_pid] = hard_pool.idle_pids()
    with pytest.raises(SandboxCrash) as info:
        await hard_pool.run(ENDLESS, StageContext().to_fields())
    assert info.value.reason == "timeout"
    assert not _alive(first_pid)
    [second_pid] = hard_pool.idle_pids()
    assert second_pid != first_pid
    reply = await hard_pool.run(OK_CODE, StageContext(branch_name="b").to_fields())
    assert reply["ok"] is True and reply["value"]["description"] == "b"


async def test_waiters_get_a_worker_when_the_pool_is_full() -> None:
    pool = SandboxPool(SandboxLimits(pool_size=1, max_workers=1))
    try:
        replies = await asyncio.gather(
            *(pool.run(OK_CODE, StageContext(branch_name=f"b{i}").to_fields()) for i in range(5))
        )
        assert [reply["value"]["description"] for reply in replies] == [f"b{i}" for i in range(5)]
        assert len(pool.idle_pids()) == 1
    finally:
        pool.close()


async def test_concurrent_evaluations_keep_their_own_context() -> None:
    results = await asyncio.gather(*(_description(f"branch-{i}") for i in range(30)))
    assert results == [f"branch-{i}" for i in range(30)]


def test_the_pool_serves_event_loops_in_other_threads() -> None:
    results: dict[int, str] = {}

    def in_thread(i: int) -> None:
        results[i] = asyncio.run(_description(f"thread-{i}"))

    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {i: f"thread-{i}" for i in range(3)}


async def test_closed_pool_stops_its_workers_and_refuses_work() -> None:
    pool = SandboxPool(SandboxLimits(pool_size=2))
    pool.warm_up()
    pids = pool.idle_pids()
    assert len(pids) == 2
    pool.close()
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="shut down"):
        await pool.run(OK_CODE, StageContext().to_fields())


async def test_a_crashing_worker_is_an_error_and_is_replaced() -> None:
    deeply_nested = "def stage(ctx):\n    return " + "[" * 5000 + "]" * 5000 + "\n"  # overflows the parser's stack
    with pytest.raises(StageSchemaError) as info:
        await evaluate_stage(deeply_nested, StageContext())
    assert info.value.message.startswith("stage evaluation crashed")
    assert await _description("after-crash") == "after-crash"
