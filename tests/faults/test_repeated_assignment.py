"""The watchdog re-sends an assignment that has not been accepted; the agent runs each job once, however
many times its assignment arrives: while it runs, and after it ended (the copy crossed its end). An
assignment the server took back before acknowledging its acceptance never runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kraken.agent.client import Agent
from kraken.protocol import JobSpec, StepSpec


async def accepting(agent: Agent) -> None:
    """The job's runner task has put its ``job_accepted`` (the only message before it runs)."""
    for _ in range(100):
        if agent.outbox.pending == 1:
            return
        await asyncio.sleep(0)  # let the runner's task run up to its wait
    raise AssertionError("no job_accepted put")


async def test_a_repeated_assignment_runs_the_job_once(tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    agent = Agent("http://127.0.0.1:9", "token", name="a", data_dir=tmp_path / "agent", executors=["direct"])
    spec = JobSpec(id=5, name="j", steps=[StepSpec(index=0, tool="shell", fields={"cmd": f"echo ran >> {marker}"})])

    await agent._assigned(spec)
    runner = agent.runner
    assert runner is not None and runner.task is not None
    await agent._assigned(spec)  # while it waits for the server to acknowledge its acceptance
    await accepting(agent)
    agent.outbox.ack(5, 1)
    await agent._assigned(spec)  # while it runs
    await runner.task
    assert agent.runner is None
    await agent._assigned(spec)  # after it ended
    assert agent.runner is None, "the job started again"
    await asyncio.sleep(0)
    assert marker.read_text().count("ran") == 1


async def test_an_assignment_taken_back_before_its_acceptance_is_acknowledged_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    agent = Agent("http://127.0.0.1:9", "token", name="a", data_dir=tmp_path / "agent", executors=["direct"])
    spec = JobSpec(id=6, name="j", steps=[StepSpec(index=0, tool="shell", fields={"cmd": f"echo ran >> {marker}"})])

    await agent._assigned(spec)
    runner = agent.runner
    assert runner is not None and runner.task is not None
    await accepting(agent)
    # what the server sends when it re-queued the job meanwhile: cancel, then the acknowledgement
    await runner.cancel()
    agent.outbox.ack(6, 1)
    await runner.task
    assert not marker.exists(), "a job taken back ran"
    assert agent.runner is None
    # assigned here again later: it runs (the agent did not remember it as taken)
    await agent._assigned(spec)
    runner = agent.runner
    assert runner is not None and runner.task is not None
    await accepting(agent)
    agent.outbox.ack(6, 2)
    await runner.task
    assert marker.read_text().count("ran") == 1
