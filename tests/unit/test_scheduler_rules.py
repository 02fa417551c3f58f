"""Which agent may take which job."""

from __future__ import annotations

from kraken.control.scheduler import agent_can_run, no_agent_reason
from kraken.models import Agent, Job

CAPS = {"executors": {"direct": {}, "docker": {}}, "systems": ["debian-12", "debian", "linux"]}


def job(**kw: str) -> Job:
    return Job(run_id=1, name="j", **kw)


def test_group_executor_and_system_must_match() -> None:
    agent = Agent(name="a", capabilities=CAPS)
    assert agent_can_run(job(), agent, ["all"]) is None
    assert agent_can_run(job(agents_group="gpu"), agent, ["all"]) == "not in group 'gpu'"
    assert agent_can_run(job(agents_group="gpu"), agent, ["all", "gpu"]) is None
    assert agent_can_run(job(executor="lxd"), agent, ["all"]) == "has no 'lxd' executor"
    assert agent_can_run(job(system="debian-12"), agent, ["all"]) is None
    assert agent_can_run(job(system="ubuntu-18.04"), agent, ["all"]) == "system is not 'ubuntu-18.04'"
    # for containers the system is the image: any agent with the engine can take it
    assert agent_can_run(job(executor="docker", system="ubuntu:18.04"), agent, ["all"]) is None


def test_reason_names_group_executor_and_system() -> None:
    reason = no_agent_reason(job(agents_group="gpu", executor="docker", system="x:1"))
    assert reason == "no enabled agent in group 'gpu' has executor 'docker' and system 'x:1'"
