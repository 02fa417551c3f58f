"""``kill -9`` (and SIGTERM) of a ``kraken server`` replica and of the controller mid-flow
(PostgreSQL + Redis, two replicas, agents behind a TCP proxy acting as the load balancer): the
agents move to the other replica, a new controller takes over, every job runs once, every line is
stored once, the flow ends."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Proc, Server, agent_connected, kraken, start_agent
from tests.support.proxy import CuttableProxy
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

JOBS = 3
LINES = 40
STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j%d" % n, "steps": [{"tool": "shell",
        "cmd": "for i in $(seq 1 LINES); do echo line-$i; sleep 0.05; done"}],
        "environments": [{"system": "any"}]} for n in range(JOBS)]}
"""


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


def controller(tmp_path: Path, pg_url: str, redis_url: str, name: str) -> Proc:
    proc = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_url], tmp_path, name)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_a_replica_and_the_controller_stopped_mid_flow(tmp_path: Path, pg_url: str, sig: signal.Signals) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    procs: list[Any] = []
    proxy: CuttableProxy | None = None
    api: Api | None = None
    try:
        s1 = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_server.url, name="s1")
        s2 = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_server.url, name="s2")
        procs += [s1, s2]
        ctl = controller(tmp_path, pg_url, redis_server.url, "ctl1")
        procs.append(ctl)
        ctl.wait_line(lambda line: "kraken controller: running" in line)
        proxy = CuttableProxy(s1.port)  # the load balancer: every agent on s1 to begin with
        await proxy.start()
        lb = f"http://127.0.0.1:{proxy.port}"
        agents = [start_agent(tmp_path, lb, f"k9-{n}-{uuid.uuid4().hex[:6]}", api_url=s2.url) for n in range(JOBS)]
        procs += agents
        for agent in agents:
            await agent_connected(agent)  # the proxy runs on this loop: never block it
        api = Api(s2.url)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE.replace("LINES", str(LINES)).replace("JOBS", str(JOBS)))
        flow = await api.flow(branch_id)

        async def all_streaming() -> list[dict[str, Any]] | None:
            f = await api.get(f"/flows/{flow['id']}")  # type: ignore[union-attr]
            jobs = await api.jobs(f["runs"][0]["id"]) if f["runs"] else []  # type: ignore[union-attr]
            if len(jobs) < JOBS:
                return None
            logs = [await api.log(j["id"]) for j in jobs]  # type: ignore[union-attr]
            return jobs if all("line-3\n" in lg for lg in logs) else None

        jobs = await api.wait_until(all_streaming, 60, "every job's first lines")

        # the replica holding every agent dies (or stops); the load balancer sends them to the other one
        starts = [len(a.lines) for a in agents]
        proxy.target_port = s2.port  # a stopping replica closes its websockets: the agents come back at once
        s1.proc.kill(sig)
        proxy.cut()
        # the controller dies (or stops) too; a new one takes over
        ctl.kill(sig)
        procs.append(controller(tmp_path, pg_url, redis_server.url, "ctl2"))
        for agent, start in zip(agents, starts, strict=True):
            await agent_connected(agent, start=start)

        done = await api.wait_flow(flow["id"], timeout=60)
        assert done["result"] == "passed", done
        outputs = "\n".join(a.output for a in agents)
        for job in jobs:
            log = await api.log(job["id"]) + "\n"
            for i in range(1, LINES + 1):
                assert log.count(f"line-{i}\n") == 1, (job["id"], i, log[-1500:])
            assert outputs.count(f"running job {job['id']} ") == 1, outputs[-3000:]
    finally:
        if api is not None:
            await api.close()
        for p in reversed(procs):
            p.stop()
        if proxy is not None:
            await proxy.close()
        redis_server.stop()
