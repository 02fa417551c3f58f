"""The scheduler's planning (``plan_assignments``): which idle agent takes which job, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kraken.control.scheduler import QueuedJob, plan_assignments
from kraken.models import Agent

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SINCE = NOW - timedelta(seconds=20)
CAPS = {"executors": {"direct": {}}, "systems": ["debian-12", "linux"]}


def agent(id: int, *, seen: datetime | None = NOW, busy: int | None = None, caps: dict[str, object] = CAPS) -> Agent:
    return Agent(
        id=id,
        name=f"a{id}",
        connected_to="r1" if seen else None,
        last_seen=seen,
        current_job_id=busy,
        capabilities=caps,
        approved=True,
    )


def job(id: int, *, group: str = "all", executor: str = "direct", system: str = "any") -> QueuedJob:
    return QueuedJob(id, group, executor, system, None)


def groups(*agents: Agent, extra: dict[int, list[str]] | None = None) -> dict[int, list[str]]:
    return {a.id or 0: ["all", *(extra or {}).get(a.id or 0, [])] for a in agents}


def test_jobs_go_in_order_to_the_first_idle_capable_agents() -> None:
    agents = [agent(1), agent(2, busy=7), agent(3)]
    plan = plan_assignments([job(10), job(11), job(12)], agents, groups(*agents), SINCE)
    assert plan.assignments == [(10, 1), (11, 3)]
    assert plan.reasons == {10: None, 11: None, 12: None}  # job 12 waits for a busy agent: nothing to say


def test_group_and_system_decide_who_can_run_a_job() -> None:
    agents = [agent(1), agent(2)]
    plan = plan_assignments(
        [job(10, group="gpu"), job(11, system="debian-12")], agents, groups(*agents, extra={2: ["gpu"]}), SINCE
    )
    assert plan.assignments == [(10, 2), (11, 1)]


def test_a_job_no_agent_can_run_gets_the_reason() -> None:
    agents = [agent(1)]
    plan = plan_assignments([job(10, executor="lxd"), job(11)], agents, groups(*agents), SINCE)
    assert plan.assignments == [(11, 1)]
    assert plan.reasons[10] == "no enabled agent in group 'all' has executor 'lxd'"


def test_offline_agents_take_nothing_and_the_job_says_so() -> None:
    agents = [agent(1, seen=NOW - timedelta(seconds=21)), agent(2, seen=None)]
    plan = plan_assignments([job(10)], agents, groups(*agents), SINCE)
    assert plan.assignments == []
    assert plan.reasons[10] == "waiting: every capable agent is offline (2)"
