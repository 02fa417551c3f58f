"""``kill -9`` of ``kraken serve`` (SQLite) twice while an agent runs a job that streams its log,
each time started again on the same data dir and port: the agent runs on meanwhile, reconnects and
sends again what the dead server had not acknowledged; the job runs once, the flow passes and the
log holds every line exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent

pytestmark = pytest.mark.e2e

LINES = 200
STAGE = f"""
def stage(ctx):
    return {{"jobs": [{{"name": "j", "steps": [{{"tool": "shell",
        "cmd": "for i in $(seq 1 {LINES}); do echo line-$i; sleep 0.05; done"}}],
        "environments": [{{"system": "any"}}]}}]}}
"""


async def test_kill_9_of_serve_mid_job_twice(tmp_path: Path) -> None:
    # the product's agent_timeout (20 s): a restart of the server must fit in it
    server = Server(tmp_path, name="serve", KRAKEN_AGENT_TIMEOUT="20")
    agent = start_agent(tmp_path, server.url, "k9-serve")
    api = Api(server.url)
    try:
        await agent_connected(agent)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)
        flow = await api.flow(branch_id)
        run_id = flow["runs"][0]["id"]
        backs: list[float] = []
        for at in (20, 80):

            async def streaming(at: int = at, api: Api = api) -> bool:
                [job] = await api.jobs(run_id)
                return bool(job["log_lines"] >= at)

            await api.wait_until(streaming, 60, f"{at} lines stored")
            start = len(agent.lines)
            server.proc.kill()  # kill -9
            killed = time.monotonic()
            await api.close()
            server = Server(tmp_path, name="serve", port=server.port, KRAKEN_AGENT_TIMEOUT="20")
            api = Api(server.url)
            await api.login()
            await agent_connected(agent, timeout=30, start=start)
            backs.append(time.monotonic() - killed)

        done = await api.wait_flow(flow["id"], timeout=90)
        [job] = await api.jobs(run_id)
        assert done["result"] == "passed", (done, job)
        log = await api.log(job["id"]) + "\n"
        for i in range(1, LINES + 1):
            assert log.count(f"line-{i}\n") == 1, (i, log[-1500:])
        assert agent.output.count(f"running job {job['id']} ") == 1, agent.output[-3000:]
        for n, back in enumerate(backs, 1):
            print(f"[figure] kill -9 of serve #{n}: agent back on the restarted server after {back:.1f} s")
    finally:
        await api.close()
        agent.stop()
        server.stop()
