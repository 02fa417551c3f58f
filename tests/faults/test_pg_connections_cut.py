"""PostgreSQL drops every connection of the server (``pg_terminate_backend``) while an agent
streams a job's output and while it is idle: the agent's websocket stays (the hub runs a
transaction once more on a fresh connection), the job completes with every line once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PG_ADMIN_DSN, create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

LINES = 150
STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell",
        "cmd": "for i in $(seq 1 LINES); do echo line-$i; sleep 0.02; done; while [ ! -e GATE ]; do sleep 0.05; done"}],
        "environments": [{"system": "any"}]}]}
"""


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def cut_connections(db_name: str) -> int:
    """Terminate every backend of ``db_name`` (the server's connections); how many."""
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                db_name,
            )
        )
    finally:
        await conn.close()


async def test_cut_database_connections_keep_the_agent_connected(tmp_path: Path, pg_url: str) -> None:
    db_name = pg_url.rsplit("/", 1)[1]
    gate = Path(f"/tmp/kraken-test-gate-{uuid.uuid4().hex}")
    server = Server(tmp_path, database_url=pg_url)
    agent_name = f"pgcut-{uuid.uuid4().hex[:6]}"
    agent = start_agent(tmp_path, server.url, agent_name)
    api = Api(server.url)
    try:
        wait_agent_connected(agent)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE.replace("LINES", str(LINES)).replace("GATE", str(gate)))
        flow = await api.flow(branch_id)

        async def streaming() -> int | None:
            f = await api.get(f"/flows/{flow['id']}")
            jobs = await api.jobs(f["runs"][0]["id"]) if f["runs"] else []
            return jobs[0]["id"] if jobs and "line-1\n" in await api.log(jobs[0]["id"]) + "\n" else None

        job_id = await api.wait_until(streaming, 60, "the job's first line")
        cut = 0
        for _ in range(6):  # while the agent sends its output (and heartbeats) non-stop
            cut += await cut_connections(db_name)
            await asyncio.sleep(0.3)  # spread over the job's output: the cuts are the fault, not a wait
        assert cut > 0  # the fault happened; whether a retry or an idle ping met it first varies
        await asyncio.to_thread(gate.touch)
        done = await api.wait_flow(flow["id"], timeout=60)
        assert done["result"] == "passed", done
        log = await api.log(job_id)
        for i in range(1, LINES + 1):
            assert log.count(f"line-{i}\n") + log.endswith(f"line-{i}") == 1, (i, log[-2000:])

        # idle: heartbeats only; the agent is heard from again after the cut, on the same connection
        before = max(a["last_seen"] for a in await api.get("/agents"))
        assert await cut_connections(db_name) > 0

        async def heard_again() -> bool | None:
            seen = [a["last_seen"] for a in await api.get("/agents") if a["name"] == agent_name]
            return True if seen and seen[0] > before else None

        await api.wait_until(heard_again, 15, "a heartbeat after the cut")
        assert agent.output.count("connected to") == 1, agent.output[-3000:]
        assert "disconnected" not in server.proc.output, server.proc.output[-3000:]
    finally:
        await asyncio.to_thread(gate.unlink, missing_ok=True)
        await api.close()
        agent.stop()
        server.stop()
