"""Scale-out mode: PostgreSQL + Redis, two server replicas, a controller, an arq worker, an agent on each replica."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Server, kraken, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {{
        "parent": "{parent}",
        "jobs": [{{
            "name": "{name}",
            "steps": [
                {{"tool": "git", "checkout": "{repo}", "destination": "r"}},
                {{"tool": "shell", "cmd": "cat r/f.txt; echo job={name}; hostname"}},
            ],
            "environments": [{{"system": "any", "agents_group": "all", "executor": "direct"}}],
        }}, {{
            "name": "{name}-2",
            "steps": [{{"tool": "shell", "cmd": "echo second job of {name}"}}],
            "environments": [{{"system": "any"}}],
        }}],
    }}
"""


@pytest.fixture
async def pg_url() -> object:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_two_replicas_controller_worker_and_two_agents(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"f.txt": "content of f\n"})
    common = {"database_url": pg_url, "redis_url": redis_url}
    s1 = Server(tmp_path, role="server", name="server1", **common)
    s2 = Server(tmp_path, role="server", name="server2", **common)
    controller = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_url], tmp_path, "controller")
    worker = kraken(["worker", "--database-url", pg_url, "--redis-url", redis_url], tmp_path, "worker")
    controller.wait_line(lambda line: "kraken controller: running" in line)
    worker.wait_line(lambda line: "kraken worker: running" in line)
    a1 = start_agent(tmp_path, s1.url, "agent-on-1")
    a2 = start_agent(tmp_path, s2.url, "agent-on-2")
    wait_agent_connected(a1)
    wait_agent_connected(a2)
    api1, api2 = Api(s1.url), Api(s2.url)
    try:
        await api1.login()
        await api2.login()
        agents = await api2.get("/agents")
        assert sorted(a["name"] for a in agents) == ["agent-on-1", "agent-on-2"]
        assert all(a["online"] for a in agents)

        # created through replica 1, watched through replica 2
        _, branch_id = await api1.project_with_branch()
        await api1.stage(branch_id, "first", STAGE.format(parent="root", name="first", repo=repo))
        await api2.stage(branch_id, "second", STAGE.format(parent="first", name="second", repo=repo))
        flows = [await api1.flow(branch_id) for _ in range(3)]
        done = [await api2.wait_flow(f["id"], timeout=90) for f in flows]
        used: set[str] = set()
        for flow in done:
            assert flow["result"] == "passed", flow
            assert [r["stage_name"] for r in flow["runs"]] == ["first", "second"]
            for run in flow["runs"]:
                for job in await api1.jobs(run["id"]):
                    assert job["result"] == "passed"
                    used.add(job["agent_name"])
                    log = await api2.log(job["id"])
                    if job["name"] in ("first", "second"):
                        assert "content of f" in log and f"job={job['name']}" in log
                    else:
                        assert "second job of" in log
        # both agents, one on each replica, took jobs
        assert used == {"agent-on-1", "agent-on-2"}
        # the worker ran the background tasks (job_completed) from Redis
        assert "job_completed" in worker.output
    finally:
        await api1.close()
        await api2.close()
        for p in (a1, a2, controller, worker):
            p.stop()
        s1.stop()
        s2.stop()
