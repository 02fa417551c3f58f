"""``kill -9`` of ``kraken worker`` with a flow's result analysis to do: the analysis waits in the
task queue (Redis) while no worker runs, and a new worker does it, once: every result analysed,
statuses present, no result stored twice.

(A worker killed while it *runs* a task leaves arq's in-progress lease on it: another worker runs
the task again once the lease expires, the longest task timeout + 10 s; see docs/reliability.md.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Proc, Server, kraken, start_agent, wait_agent_connected
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

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


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


def worker(tmp_path: Path, pg_url: str, redis_url: str, name: str) -> Proc:
    proc = kraken(["worker", "--database-url", pg_url, "--redis-url", redis_url], tmp_path, name)
    proc.wait_line(lambda line: "connected to Redis, serving tasks" in line)
    return proc


async def test_kill_9_of_the_worker_with_analysis_to_do(tmp_path: Path, pg_url: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    procs: list[Any] = []
    api: Api | None = None
    conn: asyncpg.Connection | None = None
    try:
        server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_server.url)
        procs.append(server)
        ctl = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_server.url], tmp_path, "ctl")
        procs.append(ctl)
        w1 = worker(tmp_path, pg_url, redis_server.url, "w1")
        procs.append(w1)
        agent = start_agent(tmp_path, server.url, "kw-agent")
        procs.append(agent)
        ctl.wait_line(lambda line: "kraken controller: running" in line)
        wait_agent_connected(agent)
        api = Api(server.url)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)

        w1.kill()  # kill -9: the flow's analysis is queued while no worker runs
        flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=90)
        [run] = flow["runs"]
        [job] = await api.jobs(run["id"])
        conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
        staged = await conn.fetchrow("SELECT staged, analysed FROM results_job WHERE job_id = $1", job["id"])
        assert staged is not None and (staged["staged"], staged["analysed"]) == (3, 0), staged

        procs.append(worker(tmp_path, pg_url, redis_server.url, "w2"))

        async def analysed() -> dict[str, Any] | None:
            assert api is not None
            summary = await api.get(f"/runs/{run['id']}/summary")
            return summary if summary["analysis"] == "done" else None

        summary = await api.wait_until(analysed, 60, "results analysed by the new worker")
        assert (summary["total"], summary["failed"]) == (3, 1), summary
        rows = await conn.fetch("SELECT test_case_id, status, change FROM test_result WHERE job_id = $1", job["id"])
        assert len(rows) == 3 and len({r["test_case_id"] for r in rows}) == 3, rows  # each result once
        assert all(r["status"] is not None and r["change"] is not None for r in rows), rows
        done = await conn.fetchrow("SELECT staged, analysed FROM results_job WHERE job_id = $1", job["id"])
        assert done is not None and (done["staged"], done["analysed"]) == (0, 3), done
    finally:
        if conn is not None:
            await conn.close()
        if api is not None:
            await api.close()
        for p in reversed(procs):
            p.stop()
        redis_server.stop()
