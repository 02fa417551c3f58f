"""``kill -9`` of ``kraken worker``, with real processes (PostgreSQL, the test's own Redis):

* with a flow's result analysis to do: the analysis waits in the task queue while no worker runs,
  and a new worker does it, once;
* *while it runs* the analysis (and SIGTERM then): the tasks' leases (``task_lease``, renewed while they run) keep a
  second worker off them for as long as the first one lives, however long they take; once it is
  killed, the second worker runs them within the lease, once: every result analysed, statuses
  present, no result stored twice.

To hold the first worker inside the analysis without a hook in the product, the test takes the
branch's analysis lock (``kraken.results.locks``) itself: the worker's analysis transactions wait
on it, seen in ``pg_locks``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kraken.results.locks import LOCK_NAMESPACE
from tests.faults.scale_out import ScaleOut, analysed, pg_url, scale_out

__all__ = ["pg_url"]  # the fixture

pytestmark = pytest.mark.e2e

# KRAKEN_TASK_LEASE of the test's workers (15 s by default); bench/faults.py runs it with the default
LEASE = float(os.environ.get("KRAKEN_FAULTS_LEASE", "4"))
REPORT = (
    "<testsuite name='s' tests='3'><testcase classname='m' name='ok'/><testcase classname='m' name='ok2'/>"
    "<testcase classname='m' name='bad'><failure message='boom'/></testcase></testsuite>"
)
STAGE = f"""
def stage(ctx):
    return {{"jobs": [{{"name": "j", "steps": [
        {{"tool": "shell", "cmd": "echo \\"{REPORT}\\" > report.xml"}},
        {{"tool": "junit_collect", "file_glob": "report.xml"}}],
        "environments": [{{"system": "any"}}]}}]}}
"""


async def assert_analysed_once(env: ScaleOut, job_id: int, summary: dict[str, Any]) -> None:
    assert (summary["total"], summary["failed"]) == (3, 1), summary
    rows = await env.conn.fetch("SELECT test_case_id, status, change FROM test_result WHERE job_id = $1", job_id)
    assert len(rows) == 3 and len({r["test_case_id"] for r in rows}) == 3, rows  # each result once
    assert all(r["status"] is not None and r["change"] is not None for r in rows), rows
    done = await env.conn.fetchrow("SELECT staged, analysed FROM results_job WHERE job_id = $1", job_id)
    assert done is not None and (done["staged"], done["analysed"]) == (0, 3), done


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``check`` (a database state, which sends no event) every 0.1 s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.1)


async def test_kill_9_of_the_worker_with_analysis_to_do(tmp_path: Path, pg_url: str) -> None:
    async with scale_out(tmp_path, pg_url) as env:
        w1 = env.worker("w1", lease=LEASE)
        await env.api.stage(env.branch_id, "s", STAGE)

        w1.kill()  # kill -9: the flow's analysis is queued while no worker runs
        flow = await env.api.wait_flow((await env.api.flow(env.branch_id))["id"], timeout=90)
        [run] = flow["runs"]
        [job] = await env.api.jobs(run["id"])
        staged = await env.conn.fetchrow("SELECT staged, analysed FROM results_job WHERE job_id = $1", job["id"])
        assert staged is not None and (staged["staged"], staged["analysed"]) == (3, 0), staged

        env.worker("w2", lease=LEASE)
        await assert_analysed_once(env, job["id"], await analysed(env, run["id"], 60))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_the_worker_stopped_while_it_runs_the_analysis(tmp_path: Path, pg_url: str, sig: signal.Signals) -> None:
    async with scale_out(tmp_path, pg_url) as env:
        lock = (LOCK_NAMESPACE, env.branch_id)
        await env.conn.execute("SELECT pg_advisory_lock($1, $2)", *lock)  # the worker's analysis waits on it

        async def waiting() -> int:
            sql = (
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND NOT granted"
            )
            return int(await env.conn.fetchval(sql, *lock))

        w1 = env.worker("w1", lease=LEASE)
        await env.api.stage(env.branch_id, "s", STAGE)
        flow = await env.api.wait_flow((await env.api.flow(env.branch_id))["id"], timeout=90)
        [run] = flow["runs"]
        [job] = await env.api.jobs(run["id"])

        async def both_tasks_inside() -> bool:  # analyze_job_results and analyze_flow_results
            return await waiting() == 2

        await until(both_tasks_inside, 60, "w1's two analysis tasks waiting on the branch lock")
        w2 = env.worker("w2", lease=LEASE)
        # Longer than the lease, the first worker keeps its tasks (it renews their leases): the
        # second one, polling the same queue, does not start them.
        watch_until = time.monotonic() + 2.5 * LEASE
        while time.monotonic() < watch_until:
            n = await waiting()
            started = [line for line in w1.lines + w2.lines if re.search(r"→ \S+:analyze_", line)]
            assert n == 2, f"{n} tasks wait on the branch lock; analysis starts: {started}"
            await asyncio.sleep(0.1)
        assert not any(re.search(r"→ \S+:analyze_", line) for line in w2.lines), w2.output[-2000:]

        # kill -9 inside the analysis: PostgreSQL rolls its transactions back, the leases lapse.
        # SIGTERM: the worker cancels its tasks and gives them back to the queue (arq) at once.
        killed = time.monotonic()
        w1.kill(sig)
        await env.conn.execute("SELECT pg_advisory_unlock($1, $2)", *lock)
        summary = await analysed(env, run["id"], 60)
        recovery = time.monotonic() - killed
        print(f"[figure] recovery after {sig.name} of the worker mid-analysis: {recovery:.1f} s (lease {LEASE} s)")
        assert recovery <= LEASE + 5, recovery
        await assert_analysed_once(env, job["id"], summary)

        # w2 ran both tasks again (arq's try 2: the tasks w1 held, not new ones), once each.
        for name in ("analyze_job_results", "analyze_flow_results"):
            starts = [line for line in w2.lines if re.search(rf"→ \S+:{name}\(", line)]
            assert len(starts) == 1 and "try=2" in starts[0], w2.output[-3000:]
        assert sum(f"job {job['id']}: 3 results analysed" in line for line in w2.lines) == 1, w2.output[-3000:]
        assert not any("results analysed" in line for line in w1.lines), w1.output[-3000:]
