"""Redis stopped and restarted under a running `kraken worker`: the worker waits it out and serves
the next tasks (it used to exit for good, rc 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Server, kraken, start_agent, wait_agent_connected
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

REPORT = (
    "<testsuite name='s' tests='2'><testcase classname='m' name='ok'/>"
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
async def pg_url() -> Any:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_worker_survives_a_redis_outage_and_serves_the_next_tasks(tmp_path: Path, pg_url: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    common = {"database_url": pg_url, "redis_url": redis_server.url}
    server = Server(tmp_path, role="server", **common)
    controller = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_server.url], tmp_path, "ctl")
    worker = kraken(["worker", "--database-url", pg_url, "--redis-url", redis_server.url], tmp_path, "worker")
    agent = start_agent(tmp_path, server.url, "a1")
    api = Api(server.url)
    try:
        controller.wait_line(lambda line: "kraken controller: running" in line)
        worker.wait_line(lambda line: "connected to Redis, serving tasks" in line)
        wait_agent_connected(agent)
        await api.login()

        mark = len(worker.lines)
        redis_server.stop()
        worker.wait_line(lambda line: "Redis unavailable" in line, timeout=30, start=mark)
        worker.wait_line(lambda line: "reconnecting in" in line, timeout=30, start=len(worker.lines))
        assert worker.proc.poll() is None, worker.output[-3000:]

        mark = len(worker.lines)
        redis_server.start()  # same port
        worker.wait_line(lambda line: "connected to Redis, serving tasks" in line, timeout=30, start=mark)
        assert worker.proc.poll() is None

        # the next flow's results are analysed: the worker serves tasks again
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)
        flow = await api.flow(branch_id)
        flow = await api.wait_flow(flow["id"], timeout=90)
        [run] = flow["runs"]

        async def analysed() -> dict[str, Any] | None:
            summary = await api.get(f"/runs/{run['id']}/summary")
            return summary if summary["analysis"] == "done" else None

        summary = await api.wait_until(analysed, 60, "results analysed by the worker")
        assert summary["total"] == 2 and summary["failed"] == 1, summary
    finally:
        await api.close()
        agent.stop()
        worker.stop()
        controller.stop()
        server.stop()
        redis_server.stop()
    assert worker.proc.returncode == 0, worker.output[-3000:]  # a clean stop on SIGTERM
