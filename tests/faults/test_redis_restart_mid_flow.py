"""Redis stopped and started again (empty: no persistence) while a job streams its log, in a
scale-out Kraken (``kraken server``, controller, worker, agent): the agent's lines go on to the
database, the worker and the server reconnect, the job's completion and its result analysis are
queued once Redis is back; the flow ends, the log holds every line exactly once, the job ran
once and its results are analysed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.faults.scale_out import analysed, pg_url, scale_out

__all__ = ["pg_url"]  # the fixture

pytestmark = pytest.mark.e2e

LINES = 150
REPORT = (
    "<testsuite name='s' tests='2'><testcase classname='m' name='a'/><testcase classname='m' name='b'/></testsuite>"
)
STAGE = f"""
def stage(ctx):
    return {{"jobs": [{{"name": "j", "steps": [
        {{"tool": "shell", "cmd": "for i in $(seq 1 {LINES}); do echo line-$i; sleep 0.05; done"}},
        {{"tool": "shell", "cmd": "echo \\"{REPORT}\\" > report.xml"}},
        {{"tool": "junit_collect", "file_glob": "report.xml"}}],
        "environments": [{{"system": "any"}}]}}]}}
"""


async def test_redis_restarted_mid_flow(tmp_path: Path, pg_url: str) -> None:
    async with scale_out(tmp_path, pg_url) as env:
        assert env.server is not None and env.agent is not None
        worker = env.worker("w")
        await env.api.stage(env.branch_id, "s", STAGE)
        flow = await env.api.flow(env.branch_id)
        run_id = flow["runs"][0]["id"]

        async def streaming() -> bool:
            [job] = await env.api.jobs(run_id)
            return bool(job["log_lines"] >= 10)

        await env.api.wait_until(streaming, 60, "the first lines")
        server_mark, worker_mark = len(env.server.proc.lines), len(worker.lines)
        env.redis.stop()
        stopped = time.monotonic()
        env.server.proc.wait_line(lambda line: "bus: Redis unavailable" in line, timeout=30, start=server_mark)
        worker.wait_line(lambda line: "Redis unavailable" in line, timeout=30, start=worker_mark)
        [job] = await env.api.jobs(run_id)
        assert job["state"] == "running", job  # the outage falls mid-job

        async def stored_meanwhile(at: int = job["log_lines"] + 20) -> None:
            [job] = await env.api.jobs(run_id)  # the database, read without the bus: poll
            while job["log_lines"] < at:
                assert time.monotonic() - stopped < 60, job
                await asyncio.sleep(0.2)
                [job] = await env.api.jobs(run_id)

        await stored_meanwhile()  # the job goes on while Redis is away
        env.redis.start()
        outage = time.monotonic() - stopped
        worker.wait_line(lambda line: "serving tasks" in line, timeout=30, start=worker_mark)

        done = await env.api.wait_flow(flow["id"], timeout=90)
        assert done["result"] == "passed", done
        [job] = await env.api.jobs(run_id)
        log = await env.api.log(job["id"]) + "\n"
        for i in range(1, LINES + 1):
            assert log.count(f"line-{i}\n") == 1, (i, log[-1500:])
        assert env.agent.output.count(f"running job {job['id']} ") == 1, env.agent.output[-3000:]
        summary = await analysed(env, run_id, 60)
        assert (summary["total"], summary["failed"]) == (2, 0), summary
        rows = await env.conn.fetchval("SELECT count(*) FROM test_result WHERE job_id = $1", job["id"])
        assert rows == 2, rows
        after = time.monotonic() - stopped
        print(f"[figure] Redis restart mid-flow: analysed {after:.1f} s after it stopped ({outage:.1f} s away)")
