"""State changes through the orchestration module, against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.transitions import combine
from kraken.core.db import Database
from kraken.models import Agent, Branch, Flow, Job, Project, Run, Stage
from kraken.models.enums import FlowKind, Result
from kraken.stage import check_stage_code

TWO_JOBS = """
def stage(ctx):
    return {"parent": "PARENT", "jobs": [
        {"name": "a", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]},
        {"name": "b", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]},
    ]}
"""


async def make_branch(db: Database, stages: dict[str, str]) -> int:
    async with db.transaction() as s:
        p = Project(name="p")
        s.add(p)
        await s.flush()
        b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
        s.add(b)
        await s.flush()
        for name, parent in stages.items():
            code = TWO_JOBS.replace("PARENT", parent)
            schema = await check_stage_code(code)
            s.add(Stage(branch_id=b.id, name=name, schema_code=code, schema_=schema, parent=parent))  # type: ignore[arg-type]
    assert b.id is not None
    return b.id


async def start(db: Database, branch_id: int) -> tuple[int, Effects]:
    effects = Effects()
    async with db.transaction() as s:
        branch = await s.get(Branch, branch_id)
        assert branch is not None
        flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects)
    await orchestration.evaluate_pending(db, effects)  # the stage code, outside the transaction
    assert flow.id is not None
    return flow.id, effects


async def finish_jobs(db: Database, flow_id: int, results: dict[str, Result]) -> Effects:
    effects = Effects()
    async with db.transaction() as s:
        jobs = (
            (
                await s.execute(
                    select(Job).join(Run).where(Run.flow_id == flow_id, Job.state != "completed")  # type: ignore[arg-type]
                )
            )
            .scalars()
            .all()
        )
    for job in jobs:
        async with db.transaction() as s:
            await orchestration.complete_job(s, job.id, results.get(job.name, Result.PASSED), effects)  # type: ignore[arg-type]
    await orchestration.evaluate_pending(db, effects)  # the children's runs
    return effects


async def read(db: Database, model: Any, id_: int) -> Any:
    async with db.session() as s:
        return await s.get(model, id_)


async def runs_of(db: Database, flow_id: int) -> list[Run]:
    async with db.session() as s:
        return list((await s.execute(select(Run).where(Run.flow_id == flow_id).order_by(Run.id))).scalars())  # type: ignore[arg-type]


async def test_parent_success_starts_child_and_flow_takes_worst_result(db: Database) -> None:
    branch_id = await make_branch(db, {"build": "root", "test": "build"})
    flow_id, effects = await start(db, branch_id)
    assert effects.wake_scheduler
    [build] = await runs_of(db, flow_id)
    assert build.stage_name == "build" and build.jobs_total == 2 and build.seq == 1
    await finish_jobs(db, flow_id, {})
    build2, test = await runs_of(db, flow_id)
    assert build2.result == Result.PASSED and test.stage_name == "test" and test.state == "queued" and test.seq == 2
    effects = await finish_jobs(db, flow_id, {"a": Result.FAILED})
    flow = await read(db, Flow, flow_id)
    assert flow.state == "completed" and flow.result == Result.FAILED
    assert ("flow_completed", f"flow_completed:{flow_id}", {"flow_id": flow_id}) in effects.tasks


async def test_job_error_makes_run_error_and_stops_children(db: Database) -> None:
    branch_id = await make_branch(db, {"build": "root", "test": "build"})
    flow_id, _ = await start(db, branch_id)
    await finish_jobs(db, flow_id, {"a": Result.ERROR, "b": Result.FAILED})
    runs = await runs_of(db, flow_id)
    assert [(r.stage_name, r.result, r.jobs_error) for r in runs] == [("build", Result.ERROR, 1)]
    assert (await read(db, Flow, flow_id)).result == Result.ERROR


async def test_failed_tests_make_a_passed_job_run_failed(db: Database) -> None:
    branch_id = await make_branch(db, {"build": "root"})
    flow_id, _ = await start(db, branch_id)
    async with db.transaction() as s:
        job = (await s.execute(select(Job).where(Job.name == "a"))).scalar_one()
        job.tests_total, job.tests_failed = 10, 1
    await finish_jobs(db, flow_id, {})
    [run] = await runs_of(db, flow_id)
    assert run.result == Result.FAILED


async def test_completing_a_job_twice_changes_nothing(db: Database) -> None:
    branch_id = await make_branch(db, {"build": "root"})
    await start(db, branch_id)
    async with db.session() as s:
        job = (await s.execute(select(Job).where(Job.name == "a"))).scalar_one()
    assert job.id is not None
    async with db.transaction() as s:
        assert await orchestration.complete_job(s, job.id, Result.FAILED, Effects())
    async with db.transaction() as s:
        assert not await orchestration.complete_job(s, job.id, Result.PASSED, Effects())
    assert (await read(db, Job, job.id)).result == Result.FAILED


async def test_assignment_is_exclusive(db: Database) -> None:
    branch_id = await make_branch(db, {"build": "root"})
    flow_id, _ = await start(db, branch_id)
    async with db.transaction() as s:
        agent = Agent(name="x", approved=True, capabilities={"executors": {"direct": {}}})
        s.add(agent)
    async with db.session() as s:
        jobs = list((await s.execute(select(Job).order_by(Job.id))).scalars())  # type: ignore[arg-type]
    effects = Effects()
    async with db.transaction() as s:
        assert await orchestration.assign_job(s, jobs[0].id, agent.id, effects)  # type: ignore[arg-type]
        # the agent is busy now, and the job is taken
        assert not await orchestration.assign_job(s, jobs[1].id, agent.id, effects)  # type: ignore[arg-type]
    [(channel, msg)] = [(c, m) for c, m in effects.publish if c.startswith("agent:")]
    assert channel == f"agent:{agent.id}" and msg["type"] == "assign" and msg["job"]["id"] == jobs[0].id
    assert msg["job"]["steps"][0]["fields"] == {"cmd": "true"}
    run = (await runs_of(db, flow_id))[0]
    assert run.state == "running"
    assert (await read(db, Flow, flow_id)).state == "running"


@pytest.mark.parametrize("what", ["flow", "run", "job"])
async def test_cancel(db: Database, what: str) -> None:
    branch_id = await make_branch(db, {"build": "root", "test": "build"})
    flow_id, _ = await start(db, branch_id)
    [run] = await runs_of(db, flow_id)
    async with db.session() as s:
        job = (await s.execute(select(Job).where(Job.name == "a"))).scalar_one()
    effects = Effects()
    async with db.transaction() as s:
        if what == "flow":
            await orchestration.cancel_flow(s, flow_id, effects)
        elif what == "run":
            await orchestration.cancel_run(s, run.id, effects)  # type: ignore[arg-type]
        else:
            await orchestration.cancel_job(s, job.id, effects)  # type: ignore[arg-type]
    if what == "job":
        # the other job still runs; the run ends when it does, cancelled (no child starts)
        await finish_jobs(db, flow_id, {})
    runs = await runs_of(db, flow_id)
    assert [(r.stage_name, r.result) for r in runs] == [("build", Result.CANCELLED)]
    assert (await read(db, Flow, flow_id)).result == Result.CANCELLED


async def test_assign_next_gives_the_freed_agent_the_oldest_job_it_can_run(db: Database) -> None:
    from kraken.control.agents import set_agent_groups
    from kraken.control.scheduler import assign_next

    branch_id = await make_branch(db, {"build": "root"})
    await start(db, branch_id)
    async with db.transaction() as s:
        agent = Agent(name="x", approved=True, connected_to="here", capabilities={"executors": {"direct": {}}})
        s.add(agent)
        await s.flush()
        await set_agent_groups(s, agent, [], replace=False)
        # the oldest queued job needs docker: the agent can't take it and gets the next one
        first = (await s.execute(select(Job).where(Job.name == "a"))).scalar_one()
        first.executor = "docker"
    effects = Effects()
    async with db.transaction() as s:
        assert await assign_next(s, agent.id, effects)  # type: ignore[arg-type]
    async with db.session() as s:
        jobs = {j.name: j for j in (await s.execute(select(Job))).scalars()}
    assert jobs["a"].state == "queued" and jobs["b"].state == "running" and jobs["b"].agent_name == "x"
    async with db.transaction() as s:  # busy now: nothing more
        assert not await assign_next(s, agent.id, Effects())  # type: ignore[arg-type]


SLOW_CODE = """
def stage(ctx):
    n = 0
    for i in range(ITERATIONS):
        n += 1
    return {"jobs": [{"name": "a", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""


async def test_stage_code_is_evaluated_outside_the_write_transaction(db: Database) -> None:
    from kraken.stage import SandboxLimits, configure_sandbox

    configure_sandbox(SandboxLimits(timeout=60))
    try:
        code = SLOW_CODE.replace("ITERATIONS", "300000000")  # seconds of evaluation, even on a fast machine
        async with db.transaction() as s:
            p = Project(name="p")
            s.add(p)
            await s.flush()
            b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
            s.add(b)
            await s.flush()
            s.add(Stage(branch_id=b.id, name="slow", schema_code=code, schema_={}, parent="root"))  # type: ignore[arg-type]
        effects = Effects()
        async with db.transaction() as s:
            branch = await s.get(Branch, b.id)
            assert branch is not None
            flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects)
        [run] = await runs_of(db, flow.id)  # type: ignore[arg-type]
        assert not run.evaluated and run.jobs_total == 0
        evaluation = asyncio.create_task(orchestration.evaluate_pending(db, effects))
        await asyncio.sleep(0.2)  # the evaluation has begun
        async with db.transaction() as s:  # another writer is not held up by the stage code
            (await s.get(Project, p.id)).description = "written meanwhile"  # type: ignore[union-attr]
        assert not evaluation.done(), "the write waited for the stage code"
        await evaluation
        [run] = await runs_of(db, flow.id)  # type: ignore[arg-type]
        assert run.evaluated and run.jobs_total == 1 and run.state == "queued"
    finally:
        configure_sandbox(SandboxLimits())


async def test_manual_stages_wait_and_children_of_a_failed_run_are_skipped_with_a_reason(db: Database) -> None:
    branch_id = await make_branch(db, {"build": "root", "deploy": "build", "test": "build"})
    async with db.transaction() as s:
        deploy = (await s.execute(select(Stage).where(Stage.name == "deploy"))).scalar_one()
        deploy.triggers = {"manual": True}
    flow_id, _ = await start(db, branch_id)
    await finish_jobs(db, flow_id, {"a": Result.FAILED})
    flow = await read(db, Flow, flow_id)
    assert flow.state == "completed" and flow.result == Result.FAILED and flow.manual_stages == []
    assert {s["stage_name"]: s["reason"] for s in flow.skipped_stages} == {
        name: "stage 'build' had jobs that did not pass: 'a' failed" for name in ("deploy", "test")
    }
    # a rerun that passes starts the automatic child and makes the manual one ready
    async with db.session() as s:
        a = (await s.execute(select(Job).where(Job.name == "a"))).scalar_one()
    effects = Effects()
    async with db.transaction() as s:
        await orchestration.rerun_job(s, a.id, effects)  # type: ignore[arg-type]
    assert (await read(db, Flow, flow_id)).state == "running"
    await finish_jobs(db, flow_id, {})
    flow = await read(db, Flow, flow_id)
    assert [r.stage_name for r in await runs_of(db, flow_id)] == ["build", "test"]
    assert flow.manual_stages == ["deploy"] and flow.skipped_stages == []
    await finish_jobs(db, flow_id, {})
    flow = await read(db, Flow, flow_id)
    assert flow.state == "completed" and flow.result == Result.PASSED  # a waiting manual stage keeps nothing open
    effects = Effects()
    async with db.transaction() as s:
        await orchestration.start_stage(s, flow_id, "deploy", effects)
        with pytest.raises(orchestration.StartRefused) as refused:
            await orchestration.start_stage(s, flow_id, "deploy", effects)
        assert refused.value.status == 409
    await orchestration.evaluate_pending(db, effects)
    flow = await read(db, Flow, flow_id)
    assert flow.state == "running" and flow.result is None and flow.manual_stages == []
    await finish_jobs(db, flow_id, {"b": Result.ERROR})
    flow = await read(db, Flow, flow_id)
    assert flow.state == "completed" and flow.result == Result.ERROR


async def test_watchdog_ends_a_run_past_its_time_limit_and_starts_a_lost_evaluation(
    db: Database, tmp_path: Any
) -> None:
    from datetime import timedelta

    import sqlalchemy as sa

    from kraken.control.watchdog import Watchdog
    from kraken.core.bus import MemoryBus
    from kraken.core.config import Settings
    from kraken.models.base import utcnow
    from kraken.workers.queue import InProcessQueue

    branch_id = await make_branch(db, {"build": "root"})
    effects = Effects()
    async with db.transaction() as s:
        branch = await s.get(Branch, branch_id)
        assert branch is not None
        flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects)
    # the start_run task is lost: the watchdog starts the run once it has waited too long
    [run] = await runs_of(db, flow.id)  # type: ignore[arg-type]
    assert not run.evaluated
    async with db.transaction() as s:
        await s.execute(sa.update(Run).values(created=utcnow() - timedelta(minutes=5)))
    from kraken.workers.registry import TaskContext

    settings, bus, queue = Settings(data_dir=tmp_path), MemoryBus(), InProcessQueue()
    queue.bind(TaskContext(db=db, bus=bus, queue=queue, settings=settings))
    watchdog = Watchdog(db, bus, queue, settings)
    await watchdog.tick()
    [run] = await runs_of(db, flow.id)  # type: ignore[arg-type]
    assert run.evaluated and run.jobs_total == 2 and run.deadline is None
    # a time limit that has passed ends the run's open jobs with 'timeout'
    async with db.transaction() as s:
        await s.execute(sa.update(Run).values(timeout=5.0, deadline=utcnow() - timedelta(seconds=1)))
    await watchdog.tick()
    async with db.session() as s:
        jobs = list((await s.execute(select(Job))).scalars())
    assert [(j.result, j.reason) for j in jobs] == [("timeout", "the run's time limit of 5 s passed")] * 2
    assert (await read(db, Flow, flow.id)).result == Result.TIMEOUT  # type: ignore[arg-type]
    await queue.drain()


async def agent_ends(db: Database, job: Job, agent: Agent, result: Result, effects: Effects) -> None:
    """The agent's ``job_accepted`` and ``job_done``, as the agent hub applies them."""
    from kraken.control.job_message_dispatch import IncomingMessage, apply_job_messages
    from kraken.protocol import JobAccepted, JobDone

    assert job.id is not None and agent.id is not None
    msgs: list[IncomingMessage] = [JobAccepted(job_id=job.id, seq=1), JobDone(job_id=job.id, seq=2, result=result)]
    applied = await apply_job_messages(db, agent.id, agent.name, job.id, msgs, effects)
    assert applied.held and applied.seq == 2


async def server_ends(db: Database, job: Job, result: Result, effects: Effects) -> None:
    """The server ends the job (a cancel, a time limit): flow, run and job locked."""
    assert job.id is not None
    async with db.transaction() as s:
        assert await orchestration.end_job(s, job.id, result, effects, "ended by the server")


async def test_jobs_of_a_run_ending_at_once_finish_the_run_and_the_flow_once(db: Database) -> None:
    """Both jobs of a run end at the same moment: through the agents' messages (their run settled
    after the commit, no flow lock) or one of them from the server's side (cancel, time limit: flow
    and run locked). Every time the run and the flow finish once, with the result that wins."""
    branch_id = await make_branch(db, {"build": "root"})
    async with db.transaction() as s:
        agents = [Agent(name=f"x{i}", approved=True, capabilities={"executors": {"direct": {}}}) for i in range(2)]
        s.add_all(agents)
    cases = [
        (Result.PASSED, Result.PASSED, False),
        (Result.PASSED, Result.FAILED, False),
        (Result.ERROR, Result.FAILED, False),
        (Result.PASSED, Result.TIMEOUT, True),  # the second ended by the server (end_job) meanwhile
        (Result.PASSED, Result.PASSED, False),
        (Result.FAILED, Result.CANCELLED, True),
    ]
    for first, second, by_server in cases:
        flow_id, _ = await start(db, branch_id)
        async with db.session() as s:
            in_flow = select(Job).join(Run).where(Run.flow_id == flow_id).order_by(Job.id)  # type: ignore[arg-type]
            jobs = list((await s.execute(in_flow)).scalars())
        async with db.transaction() as s:
            for job, agent in zip(jobs, agents, strict=True):
                assert await orchestration.assign_job(s, job.id, agent.id, Effects())  # type: ignore[arg-type]
        effects = [Effects(), Effects()]
        if by_server:
            other = server_ends(db, jobs[1], second, effects[1])
        else:
            other = agent_ends(db, jobs[1], agents[1], second, effects[1])
        await asyncio.gather(agent_ends(db, jobs[0], agents[0], first, effects[0]), other)
        tasks = [name for e in effects for name, _, _ in e.tasks]
        assert tasks.count("run_completed") == 1 and tasks.count("flow_completed") == 1, (first, second, tasks)
        assert not any(e.settle_runs for e in effects)  # settled after each commit
        expected = combine([first, second])
        [run] = await runs_of(db, flow_id)
        flow = await read(db, Flow, flow_id)
        assert (run.state, run.result, flow.state, flow.result) == ("completed", expected, "completed", expected)


async def test_a_run_whose_settling_was_lost_is_found_and_finished(db: Database) -> None:
    """The process died between the commit of a run's last job (ended under ``lock_job_shared``)
    and the run's settling: the watchdog's query finds the run, ``settle_runs`` finishes it once."""
    from datetime import timedelta

    from kraken.models.base import utcnow

    branch_id = await make_branch(db, {"build": "root"})
    flow_id, _ = await start(db, branch_id)
    async with db.transaction() as s:
        agent = Agent(name="x", approved=True, capabilities={"executors": {"direct": {}}})
        s.add(agent)
    async with db.session() as s:
        jobs = list((await s.execute(select(Job).order_by(Job.id))).scalars())  # type: ignore[arg-type]
    for job in jobs:
        async with db.transaction() as s:
            assert await orchestration.assign_job(s, job.id, agent.id, Effects())  # type: ignore[arg-type]
        lost = Effects()
        async with db.transaction() as s:
            await orchestration.lock_job_shared(s, job.id)  # type: ignore[arg-type]
            assert await orchestration.complete_job(s, job.id, Result.PASSED, lost)  # type: ignore[arg-type]
    [run] = await runs_of(db, flow_id)
    if db.is_sqlite:  # one writer at a time: the run finished in place, nothing to settle
        assert run.state == "completed" and not lost.settle_runs
        return
    assert run.state == "running" and lost.settle_runs == {run.id}  # never settled
    async with db.session() as s:
        assert await orchestration.unsettled_runs(s, utcnow() - timedelta(seconds=60)) == []  # ended just now
        found = await orchestration.unsettled_runs(s, utcnow() + timedelta(seconds=1))
    assert found == [run.id]
    effects = Effects()
    await orchestration.settle_runs(db, found, effects)
    await orchestration.settle_runs(db, found, effects)  # again: nothing more
    assert [name for name, _, _ in effects.tasks].count("flow_completed") == 1
    flow = await read(db, Flow, flow_id)
    assert (flow.state, flow.result) == ("completed", Result.PASSED)


async def test_the_jobs_of_a_run_end_without_waiting_for_each_other(db: Database) -> None:
    """PostgreSQL: while a transaction ends one job of a run (its run held ``FOR KEY SHARE``, not
    locked), another ends the other job of the run at once; one that locks the run (to finish it
    in place) waits for the first."""
    branch_id = await make_branch(db, {"build": "root"})
    flow_id, _ = await start(db, branch_id)
    async with db.session() as s:
        a, b = list((await s.execute(select(Job.id).order_by(Job.id))).scalars())  # type: ignore[arg-type]
    [run] = await runs_of(db, flow_id)
    if db.is_sqlite:  # one writer at a time: nothing to overlap
        return
    async with db.transaction() as first:
        await orchestration.lock_job_shared(first, a)
        async with db.transaction() as second:  # not blocked by the first
            await asyncio.wait_for(orchestration.lock_job_shared(second, b), 10)
        locking = asyncio.ensure_future(_lock_run_alone(db, run.id))  # type: ignore[arg-type]
        done, _ = await asyncio.wait({locking}, timeout=1)
        assert not done  # FOR UPDATE waits for the shared holder
    await asyncio.wait_for(locking, 10)


async def _lock_run_alone(db: Database, run_id: int) -> None:
    async with db.transaction() as s:
        await orchestration.lock_run(s, run_id)
