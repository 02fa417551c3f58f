"""SIGTERM to ``kraken agent`` while it runs a job (a service stop, a reboot): the agent stops the
step (its processes do not outlive the agent), tells the server that the job ended (``cancelled``,
"the agent was stopped (SIGTERM) while the job ran") through its outbox, waits for the
acknowledgement and exits 0, all within ``STOP_WAIT``; the job ends long before the server's
``agent_timeout`` (60 s here, so its watchdog cannot be what ended it); the agent, started again,
takes the next job; the stored log holds each line once, in order, and the job ran once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kraken.agent.client import STOP_WAIT
from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent

pytestmark = pytest.mark.e2e

AGENT_TIMEOUT = 60  # the server's: far longer than the test waits for the job's end
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


def group_members(pgid: int) -> list[str]:
    """The processes (zombies aside) of process group ``pgid``: ``pid state command`` each."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        state, _, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            found.append(f"{stat.parent.name} {state} {text[: text.rindex(')') + 1]}")
    return found


async def test_sigterm_of_the_agent_mid_job(tmp_path: Path, database_url: str) -> None:
    server = Server(tmp_path, database_url=database_url, KRAKEN_AGENT_TIMEOUT=str(AGENT_TIMEOUT))
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

        async def step_lines(job_id: int) -> list[str]:
            return [ln for ln in (await api.log(job_id)).splitlines() if ln.startswith("line-")]

        async def streaming() -> int | None:
            [job] = await api.jobs(run_id)
            return int(job["id"]) if job["log_lines"] > 10 else None

        job_id = await api.wait_until(streaming, 60, "first lines")
        stored_before = len(await step_lines(job_id))
        step_pid = int(pidfile.read_text())
        termed = time.monotonic()
        agent.kill(signal.SIGTERM)  # waits for the exit
        exited_after = time.monotonic() - termed
        assert agent.proc.returncode == 0, agent.output[-3000:]
        assert exited_after < STOP_WAIT + 3, exited_after  # the step's stop, then at most STOP_WAIT
        assert not alive(step_pid), "the step outlived its agent"
        assert not group_members(step_pid), "processes of the step's group outlived its agent"

        # told by the agent before its exit (no watchdog within AGENT_TIMEOUT): ended already
        [job] = await api.jobs(run_id)
        print(f"[figure] SIGTERM of the agent: exit and job ended {exited_after:.1f} s after the signal")
        assert job["state"] == "completed", job
        assert job["result"] == "cancelled", job
        assert job["reason"] == "the agent was stopped (SIGTERM) while the job ran", job
        assert "not acknowledged" not in agent.output, agent.output[-3000:]
        lines = await step_lines(job_id)
        assert lines == [f"line-{i}" for i in range(1, len(lines) + 1)], lines
        assert len(lines) >= stored_before, (len(lines), stored_before)

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


async def test_sigterm_of_the_agent_with_its_link_down(tmp_path: Path) -> None:
    """The server gone (killed) when the agent gets SIGTERM: the agent stops the step and exits
    0 without waiting for a link that cannot come back within ``STOP_WAIT``."""
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
        mark = len(agent.lines)
        server.proc.kill()
        agent.wait_line(lambda line: "lost" in line, timeout=30, start=mark)
        termed = time.monotonic()
        agent.kill(signal.SIGTERM)
        exited_after = time.monotonic() - termed
        print(f"[figure] SIGTERM of the agent, its link down: exit {exited_after:.1f} s after the signal")
        assert agent.proc.returncode == 0, agent.output[-3000:]
        assert exited_after < STOP_WAIT, exited_after  # not the whole bound: no link to wait for
        assert not group_members(step_pid), "processes of the step's group outlived its agent"
        assert "its end was not acknowledged by the server" in agent.output, agent.output[-3000:]
    finally:
        await api.close()
        agent.stop()
        server.stop()
