"""An assignment whose agent never accepts it (the agent is frozen right before the job is
assigned): the job is taken back within seconds and another agent runs it; the frozen agent,
once it thaws, never runs it (its acceptance comes too late: the server answers ``cancel``)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo ran >> MARKER; echo the-line"}],
                      "environments": [{"system": "any"}]}]}
"""


async def test_an_assignment_never_accepted_is_queued_again_and_runs_once(
    tmp_path: Path, server: Server, api: Api
) -> None:
    marker = Path(f"/tmp/kraken-test-runs-{uuid.uuid4().hex}")
    frozen = start_agent(tmp_path, server.url, f"frozen-{uuid.uuid4().hex[:6]}")
    other = None
    try:
        wait_agent_connected(frozen)
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE.replace("MARKER", str(marker)))
        os.killpg(frozen.proc.pid, signal.SIGSTOP)  # alive to the server for a few seconds, deaf to its assignment
        flow = await api.flow(branch_id)

        async def assigned() -> dict[str, Any] | None:
            got = await api.get(f"/flows/{flow['id']}")
            jobs = await api.jobs(got["runs"][0]["id"]) if got["runs"] else []
            return jobs[0] if jobs and jobs[0]["state"] == "running" else None

        job = await api.wait_until(assigned, 30, "the job assigned to the frozen agent")
        other = start_agent(tmp_path, server.url, f"other-{uuid.uuid4().hex[:6]}")

        done = await api.wait_flow(flow["id"], timeout=40)
        assert done["result"] == "passed", done
        [job] = await api.jobs(done["runs"][0]["id"])
        assert job["agent_name"].startswith("other-"), job
        server.proc.wait_line(lambda ln: f"job {job['id']}: " in ln and "queued again" in ln, timeout=5)

        start = len(frozen.lines)
        os.killpg(frozen.proc.pid, signal.SIGCONT)
        # the thawed agent hears it lost the job (a cancel, or its reconnect's reconciliation)
        frozen.wait_line(lambda ln: "taken back by the server" in ln or "connected to" in ln, timeout=30, start=start)
        assert f"running job {job['id']} " not in frozen.output, frozen.output[-3000:]
        assert (await asyncio.to_thread(marker.read_text)).count("ran") == 1
        assert (await api.log(job["id"])).count("the-line") == 1
    finally:
        os.killpg(frozen.proc.pid, signal.SIGCONT)
        frozen.stop()
        if other is not None:
            other.stop()
        await asyncio.to_thread(marker.unlink, missing_ok=True)
