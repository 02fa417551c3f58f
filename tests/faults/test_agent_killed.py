"""``kill -9`` of an agent mid-step: its next start kills what the job left running (the step's
process group, a child that left it with ``setsid``) and removes the job's work directory; the
new agent then runs jobs, and a finished job's directory is removed (default retention)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent

pytestmark = pytest.mark.e2e

HANG = """
def stage(ctx):
    return {"jobs": [{"name": "hang", "steps": [{"tool": "shell",
        "cmd": "sleep 300 & a=$!; setsid sleep 301 & b=$!; echo PIDS $$ $a $b; sleep 302"}],
        "environments": [{"system": "any"}]}]}
"""
QUICK = """
def stage(ctx):
    return {"jobs": [{"name": "quick", "steps": [{"tool": "shell", "cmd": "echo hello > f.txt; cat f.txt"}],
        "environments": [{"system": "any"}]}]}
"""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent (in a container, PID 1 may
    not reap the orphans quickly)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return False
    return text[text.rfind(")") + 2] != "Z"


async def test_a_restarted_agent_kills_what_its_killed_self_left_and_removes_the_workdir(tmp_path: Path) -> None:
    server = Server(tmp_path)
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "a1")
    agent_dir = tmp_path / "a1"
    pids: list[int] = []
    try:
        await agent_connected(agent)
        await api.login()
        _, hang_branch = await api.project_with_branch("hang")
        await api.stage(hang_branch, "s", HANG)
        flow = await api.flow(hang_branch)
        run_id = flow["runs"][0]["id"]

        async def started() -> list[int] | None:
            [job] = await api.jobs(run_id)
            m = re.search(r"PIDS ([\d ]+)", await api.log(job["id"]))
            return [int(p) for p in m.group(1).split()] if m else None

        pids = await api.wait_until(started, 60, "the step's processes started")
        [job] = await api.jobs(run_id)
        workdir = agent_dir / "jobs" / str(job["id"])
        assert len(pids) >= 3, pids  # the shell, sleep 300 (in its group), setsid sleep 301 (not)
        assert workdir.is_dir()

        agent.kill()  # SIGKILL of the agent alone: the steps run in their own sessions
        assert all(alive(p) for p in pids), "the step died with the agent: nothing to clean up"

        async def job_error() -> bool:
            [j] = await api.jobs(run_id)
            return bool(j["state"] == "completed")

        await api.wait_until(job_error, 30, "the lost job ended")
        [j] = await api.jobs(run_id)
        assert j["result"] == "error", j

        agent = start_agent(tmp_path, server.url, "a1")
        await agent_connected(agent)
        assert not [p for p in pids if alive(p)], "processes of the killed agent's job still run"
        assert not workdir.exists()
        assert "cleaned up after an earlier run of the agent" in agent.output
        assert not list((agent_dir / "job-records").iterdir())

        _, quick_branch = await api.project_with_branch("quick")
        await api.stage(quick_branch, "s", QUICK)
        flow = await api.wait_flow((await api.flow(quick_branch))["id"], timeout=60)
        assert flow["result"] == "passed", flow
        [quick] = await api.jobs(flow["runs"][0]["id"])
        assert "hello" in await api.log(quick["id"])
        assert not (agent_dir / "jobs" / str(quick["id"])).exists(), "a finished job's directory is kept"
    finally:
        for pid in pids:  # never leave sleeps behind, even when the test fails
            if alive(pid):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        agent.stop()
        await api.close()
        server.stop()
