"""Redis stopped while a flow is triggered and its job assigned (PostgreSQL + Redis, real
`kraken server`, controller and agent): the trigger answers 201, the assignment that could not be
published once committed reaches the agent when Redis is back, and live clients get `resync`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Server, kraken, start_agent, wait_agent_connected
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo line-one; echo line-two"}],
                      "environments": [{"system": "any"}]}]}
"""


@pytest.fixture
async def pg_url() -> Any:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_assignment_committed_during_a_redis_outage_still_runs(tmp_path: Path, pg_url: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_server.url)
    controller = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_server.url], tmp_path, "ctl")
    agent = start_agent(tmp_path, server.url, "a1")
    api = Api(server.url)
    try:
        controller.wait_line(lambda line: "kraken controller: running" in line)
        wait_agent_connected(agent)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)

        async with api.events() as events:
            redis_server.stop()
            server.proc.wait_line(lambda line: "bus: Redis unavailable" in line, timeout=30)

            # committed while Redis is away: the answer says so (it used to be a 500)
            flow = await api.flow(branch_id)
            assert flow["state"] in ("queued", "running"), flow

            # the scheduler's sweep assigns the job in the database; publishing the assignment fails
            async def assigned() -> dict[str, Any] | None:
                got = await api.get(f"/flows/{flow['id']}")
                if not got["runs"]:
                    return None
                jobs = await api.jobs(got["runs"][0]["id"])
                return jobs[0] if jobs and jobs[0]["state"] == "running" else None

            deadline = asyncio.get_running_loop().time() + 30
            while (job := await assigned()) is None:  # no live events while the bus is down: poll
                assert asyncio.get_running_loop().time() < deadline, "the job was never assigned"
                await asyncio.sleep(0.5)
            assert job["agent_name"] == "a1", job

            redis_server.start()  # same port
            # live clients hear that they missed events
            while True:
                kind, _ = await asyncio.wait_for(events.get(), 30)
                if kind == "resync":
                    break

        done = await api.wait_flow(flow["id"], timeout=60)
        assert done["result"] == "passed", done
        [job] = await api.jobs(done["runs"][0]["id"])
        log = await api.log(job["id"])
        assert log.count("line-one") == 1 and log.count("line-two") == 1, log
        assert agent.output.count(f"running job {job['id']} ") == 1, agent.output[-3000:]
    finally:
        await api.close()
        agent.stop()
        controller.stop()
        server.stop()
        redis_server.stop()
