"""SIGTERM to ``kraken agent`` while it runs a job (a service stop, a reboot): the agent stops the
step (its processes do not outlive the agent) and exits within seconds; the server ends the job
``error`` ("agent lost") once ``agent_timeout`` has passed without a heartbeat; the agent, started
again, takes the next job; the stored log holds each line once, in order, and the job ran once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent

pytestmark = pytest.mark.e2e

AGENT_TIMEOUT = 4.0  # the tests' KRAKEN_AGENT_TIMEOUT (tests/support/procs.py)
STEP = """
def stage(ctx):
    n = ctx.args.get("lines", 0)
    loop = "for i in $(seq 1 %d); do echo line-$i; sleep 0.05; done" % n
    cmd = "echo $$ > %s; %s" % (ctx.args["pidfile"], loop) if n else "echo short"
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": cmd}], "environments": [{"system": "any"}]}]}
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


async def test_sigterm_of_the_agent_mid_job(tmp_path: Path) -> None:
    server = Server(tmp_path)
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "term-agent")
    pidfile = tmp_path / "step.pid"
    try:
        await agent_connected(agent)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STEP)
        flow = await api.flow(branch_id, args={"lines": 600, "pidfile": str(pidfile)})
        run_id = flow["runs"][0]["id"]

        async def streaming() -> bool:
            [job] = await api.jobs(run_id)
            return bool(job["log_lines"] > 10)

        await api.wait_until(streaming, 60, "first lines")
        step_pid = int(pidfile.read_text())
        termed = time.monotonic()
        agent.kill(signal.SIGTERM)  # waits for the exit
        exited_after = time.monotonic() - termed

        async def ended() -> dict[str, Any] | None:
            [job] = await api.jobs(run_id)
            return job if job["state"] == "completed" else None

        assert exited_after < 10, exited_after
        assert not alive(step_pid), "the step outlived its agent"
        job = await api.wait_until(ended, 60, "the job ended")
        ended_after = time.monotonic() - termed
        print(f"[figure] SIGTERM of the agent: job ended {ended_after:.1f} s after (exit: {exited_after:.1f} s)")
        assert job["result"] == "error" and job["reason"].startswith("agent lost"), job
        assert ended_after < exited_after + AGENT_TIMEOUT + 4, ended_after
        lines = [ln for ln in (await api.log(job["id"])).splitlines() if ln.startswith("line-")]
        assert lines == [f"line-{i}" for i in range(1, len(lines) + 1)], lines

        again = start_agent(tmp_path, server.url, "term-agent")
        await agent_connected(again)
        second = await api.flow(branch_id)
        done = await api.wait_flow(second["id"], timeout=30)
        assert done["result"] == "passed", done
        assert (agent.output + again.output).count(f"running job {job['id']} ") == 1
        again.stop()
    finally:
        await api.close()
        agent.stop()
        server.stop()
