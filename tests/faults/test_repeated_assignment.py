"""The watchdog re-sends an assignment that has not started; the agent runs each job once, however
many times its assignment arrives: while it runs, and after it ended (the copy crossed its end)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kraken.agent.client import Agent
from kraken.protocol import JobSpec, StepSpec


async def test_a_repeated_assignment_runs_the_job_once(tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    agent = Agent("http://127.0.0.1:9", "token", name="a", data_dir=tmp_path / "agent", executors=["direct"])
    spec = JobSpec(id=5, name="j", steps=[StepSpec(index=0, tool="shell", fields={"cmd": f"echo ran >> {marker}"})])

    await agent._assigned(spec)
    runner = agent.runner
    assert runner is not None and runner.task is not None
    await agent._assigned(spec)  # while it runs
    await runner.task
    assert agent.runner is None
    await agent._assigned(spec)  # after it ended
    assert agent.runner is None, "the job started again"
    await asyncio.sleep(0)
    assert marker.read_text().count("ran") == 1
