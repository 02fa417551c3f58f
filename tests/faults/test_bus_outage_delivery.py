"""Redis stopped while a flow is triggered and its job assigned (PostgreSQL + Redis, real
`kraken server`, controller and agent): the trigger answers 201, the assignment that could not be
published once committed reaches the agent when Redis is back, and live clients get `resync`; a live log
stream gets the lines the bus lost."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
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


LOG_STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [
        {"tool": "shell", "cmd": "echo one; while [ ! -e GATE ]; do sleep 0.1; done; echo two; sleep 60"}],
        "environments": [{"system": "any"}]}]}
"""


async def test_a_live_log_stream_gets_the_lines_the_bus_lost(tmp_path: Path, pg_url: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_server.url)
    controller = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_server.url], tmp_path, "ctl")
    agent = start_agent(tmp_path, server.url, "a1")
    api = Api(server.url)
    streamed: list[str] = []
    got = asyncio.Event()

    async def read_stream(job_id: int) -> None:
        async with httpx.AsyncClient(base_url=server.url + "/api", timeout=None) as client:
            headers = {"Authorization": f"Bearer {api.token}"}
            async with client.stream("GET", f"/jobs/{job_id}/log/stream", headers=headers) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        streamed.extend(orjson.loads(line[6:]).get("lines", []))
                        got.set()

    reader: asyncio.Task[None] | None = None
    # the step waits for this file (in /tmp itself: the job's user may not enter the test's directory)
    gate = Path(f"/tmp/kraken-test-gate-{uuid.uuid4().hex}")
    try:
        controller.wait_line(lambda line: "kraken controller: running" in line)
        wait_agent_connected(agent)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", LOG_STAGE.replace("GATE", str(gate)))
        flow = await api.flow(branch_id)

        async def running_job() -> int | None:
            f = await api.get(f"/flows/{flow['id']}")
            jobs = await api.jobs(f["runs"][0]["id"]) if f["runs"] else []
            return jobs[0]["id"] if jobs and "one" in await api.log(jobs[0]["id"]) else None

        job_id = await api.wait_until(running_job, 60, "the job's first line")
        reader = asyncio.create_task(read_stream(job_id))
        await asyncio.wait_for(got.wait(), 15)
        assert "two" not in streamed  # it waits for the gate

        redis_server.stop()
        server.proc.wait_line(lambda line: "bus: Redis unavailable" in line, timeout=30)
        await asyncio.to_thread(gate.touch)  # 'two' now comes while the bus is down
        deadline = asyncio.get_running_loop().time() + 20
        while "two" not in await api.log(job_id):  # stored while no live line can travel: poll
            assert asyncio.get_running_loop().time() < deadline, "'two' never stored"
            await asyncio.sleep(0.3)
        redis_server.start()

        deadline = asyncio.get_running_loop().time() + 30
        while "two" not in streamed:
            got.clear()
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"the stream never caught up: {streamed}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(got.wait(), left)
        assert streamed.count("one") == 1 and streamed.count("two") == 1, streamed
    finally:
        await asyncio.to_thread(gate.unlink, missing_ok=True)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        await api.close()
        agent.stop()
        controller.stop()
        server.stop()
        redis_server.stop()
