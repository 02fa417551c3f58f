"""A half-open agent connection *longer* than the server's window (``agent_timeout``): the proxy
stops forwarding without closing, and refuses new connections, for longer than the window. The
server ends the job ``error`` ("agent lost") within the window and a watchdog tick; when the link
is back the agent reconnects, is told the job is over and stops it (it is not run again, nor
resumed), every line the server stored is stored once, and the agent takes the next job.
(The partition *shorter* than the window loses no job: tests/e2e/test_agent_link.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.e2e

AGENT_TIMEOUT = 4.0  # the tests' KRAKEN_AGENT_TIMEOUT (tests/support/procs.py)
STEP = """
def stage(ctx):
    n = ctx.args.get("lines", 0)
    cmd = "for i in $(seq 1 %d); do echo line-$i; sleep 0.05; done" % n if n else "echo short"
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": cmd}], "environments": [{"system": "any"}]}]}
"""


async def test_half_open_link_longer_than_the_window_ends_the_job_once(tmp_path: Path) -> None:
    server = Server(tmp_path)
    proxy = CuttableProxy(server.port)
    await proxy.start()
    api = Api(server.url)
    agent = start_agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "long-halfopen", api_url=server.url)
    try:
        await agent_connected(agent)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STEP)
        flow = await api.flow(branch_id, args={"lines": 400})
        run_id = flow["runs"][0]["id"]

        async def streaming() -> bool:
            [job] = await api.jobs(run_id)
            return bool(job["log_lines"] > 10)

        await api.wait_until(streaming, 60, "first lines")
        start = len(agent.lines)
        proxy.refusing = True  # no way back to the server: the partition outlasts the window
        proxy.stall()
        stalled = time.monotonic()

        async def ended() -> dict[str, Any] | None:
            [job] = await api.jobs(run_id)
            return job if job["state"] == "completed" else None

        job = await api.wait_until(ended, 60, "the job ended by the watchdog")
        ended_after = time.monotonic() - stalled
        assert job["result"] == "error" and job["reason"].startswith("agent lost"), job
        proxy.refusing = False
        await agent_connected(agent, timeout=30, start=start)
        print(f"[figure] half-open link: job ended {ended_after:.1f} s after the silence began")
        assert ended_after < AGENT_TIMEOUT + 6, ended_after

        # the agent runs the next job: it stopped the lost one (else it would be busy for 20 s)
        second = await api.flow(branch_id)
        done = await api.wait_flow(second["id"], timeout=30)
        assert done["result"] == "passed", done
        again = await api.get(f"/jobs/{job['id']}")
        assert (again["state"], again["result"]) == ("completed", "error"), again
        lines = [ln for ln in (await api.log(job["id"])).splitlines() if ln.startswith("line-")]
        assert lines == [f"line-{i}" for i in range(1, len(lines) + 1)], lines  # in order, each once
        assert 10 < len(lines) < 400, len(lines)
        assert agent.output.count(f"running job {job['id']} ") == 1, agent.output[-3000:]
    finally:
        await api.close()
        agent.stop()
        await proxy.close()
        server.stop()
