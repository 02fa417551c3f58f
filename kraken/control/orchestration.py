"""Every state change of flows, runs, jobs and steps happens here, and only here.

Each function works inside the caller's write transaction (``Database.transaction()``)
and records what must follow the commit (bus messages, background tasks, a
scheduler wake-up) in an ``Effects``.  Lock order, to keep PostgreSQL free of
deadlocks: flow, then run, then job, then agent (``lock_job`` takes the first three);
a branch is locked for its sequence counters, after its flow or before a new one.

States: queued -> running -> completed; once completed a result is set:
passed, failed, error, cancelled or timeout.  A run is ``error`` if any job
errored, else ``failed`` if any job failed or any test failed, else ``passed``
(cancelled/timeout jobs make the run cancelled/timeout); a flow takes the worst
of its runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from kraken.control.effects import Effects
from kraken.models import Agent, Branch, Flow, Job, Project, Run, Stage, Step
from kraken.models.base import utcnow
from kraken.models.enums import FlowKind, Result, State, StepResult, StepState, worst
from kraken.observability import metrics
from kraken.secrets import store as secrets_store
from kraken.secrets.refs import substitute
from kraken.stage import StageContext, StageSchemaError, evaluate_stage, expand_jobs, resolve_args
from kraken.triggers import commits

log = logging.getLogger(__name__)
M = TypeVar("M", bound=SQLModel)

ROOT = "root"
STEP_FINISHED_TYPE = sa.inspect(Step).columns["finished"].type  # binds a timestamp like the ORM does


# ---------------------------------------------------------------- flows and runs


def _locked(session: AsyncSession) -> dict[tuple[type, int], Any]:
    """The rows this transaction has locked (each is locked, and read, once; held here so that
    the session's weak identity map keeps them)."""
    locked: dict[tuple[type, int], Any] = session.info.setdefault("kraken_locked", {})
    return locked


# What locking a row does not load: a run's evaluated schema can be large (all its jobs) and
# is only read where a run starts.
LOCK_OPTIONS: dict[type, list[Any]] = {Run: [sa.orm.defer(Run.schema_, raiseload=True)]}  # type: ignore[arg-type]


def _is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


async def lock_row(session: AsyncSession, model: type[M], row_id: int) -> M:
    """Row ``row_id`` of ``model``, locked for this transaction and read fresh.

    PostgreSQL: ``SELECT ... FOR UPDATE`` the first time (refreshing what the session had
    read before the lock); after that, and on SQLite (whose write transactions hold the
    database's single write lock from their start), the session's copy when it has one."""
    key = (model, row_id)
    locked = _locked(session)
    if key in locked:
        return locked[key]  # type: ignore[no-any-return]
    options = LOCK_OPTIONS.get(model, [])
    if _is_sqlite(session):
        obj = await session.get(model, row_id, options=options)
        if obj is None:
            raise sa.exc.NoResultFound(f"{model.__name__} {row_id} not found")
    else:
        stmt = select(model).where(model.id == row_id).with_for_update()  # type: ignore[attr-defined]
        stmt = stmt.options(*options).execution_options(populate_existing=True)
        obj = (await session.execute(stmt)).scalar_one()
    locked[key] = obj
    return obj


async def lock_branch(session: AsyncSession, branch_id: int) -> Branch:
    """The branch, locked: its sequence counters are incremented in this transaction."""
    return await lock_row(session, Branch, branch_id)


def next_seq(branch: Branch, column: str) -> int:
    value = int(getattr(branch, column)) + 1
    setattr(branch, column, value)
    return value


async def create_flow(
    session: AsyncSession,
    branch: Branch,
    kind: FlowKind,
    args: dict[str, Any],
    effects: Effects,
    trigger: dict[str, Any] | None = None,
    start_stages: Sequence[Stage] | None = None,
) -> Flow:
    """Create a flow and start the runs of its root stages (or of ``start_stages``: a trigger's)."""
    assert branch.id is not None
    branch_id = branch.id
    branch = await lock_branch(session, branch_id)
    seq = next_seq(branch, "ci_flow_seq" if kind == FlowKind.CI else "dev_flow_seq")
    flow = Flow(branch_id=branch_id, kind=kind.value, seq=seq, args=args, trigger=trigger or {"reason": "manual"})
    commits.set_commits(flow, commits.from_trigger(trigger))
    session.add(flow)
    await session.flush()
    effects.event("flow", id=flow.id, branch_id=branch_id, state=flow.state, result=None, created=True)
    stages = await branch_stages(session, branch_id)
    roots = list(start_stages) if start_stages is not None else [s for s in stages if s.parent == ROOT]
    for stage in roots:
        await start_run(session, flow, stage, args, effects)
    if not roots:
        await _finish_flow(session, flow, effects, Result.PASSED)
    return flow


async def branch_stages(session: AsyncSession, branch_id: int) -> Sequence[Stage]:
    rows = await session.execute(
        select(Stage).where(Stage.branch_id == branch_id, col(Stage.enabled).is_(True)).order_by(col(Stage.id))
    )
    return rows.scalars().all()


async def start_run(
    session: AsyncSession, flow: Flow, stage: Stage, flow_args: dict[str, Any], effects: Effects
) -> Run:
    """Create a run of a stage: evaluate its schema with the run's args and queue its jobs."""
    assert flow.id is not None and stage.id is not None
    branch = await lock_branch(session, flow.branch_id)
    run = Run(flow_id=flow.id, stage_id=stage.id, stage_name=stage.name, seq=next_seq(branch, "run_seq"))
    session.add(run)
    await session.flush()
    project = await session.get(Project, branch.project_id)
    try:
        args = resolve_args(stage.schema_, flow_args)
        ctx = StageContext(
            args=args,
            branch_name=branch.branch_name,
            flow_kind=flow.kind,
            project_name=project.name if project else "",
            flow_id=flow.id,
            flow_seq=flow.seq,
            run_id=run.id,
            stage_name=stage.name,
            trigger=flow.trigger,
        )
        schema = await evaluate_stage(stage.schema_code, ctx)
        args = resolve_args(schema, flow_args)
        specs = expand_jobs(schema, args)
        await _check_secret_references(session, branch.project_id, specs)
    except StageSchemaError as exc:
        run.reason = f"stage schema: {exc}"
        effects.event("run", id=run.id, flow_id=flow.id, state=run.state, result=None, created=True)
        await _finish_run(session, flow, run, effects, Result.ERROR)
        return run
    run.args = args
    run.schema_ = schema
    run.jobs_total = len(specs)
    for spec in specs:
        await _add_job(session, run, spec.name, spec, effects)
    effects.event("run", id=run.id, flow_id=flow.id, state=run.state, result=None, created=True)
    effects.wake_scheduler = True
    if (schema.get("notification") or {}).get("started"):
        effects.enqueue("notify_run_started", key=f"notify_run_started:{run.id}", run_id=run.id)
    return run


async def _check_secret_references(session: AsyncSession, project_id: int, specs: Sequence[Any]) -> None:
    """A step may only refer to secrets its project has."""
    names = secrets_store.names_in_steps((s.tool, s.fields) for spec in specs for s in spec.steps)
    if not names:
        return
    known = set(await secrets_store.project_secret_names(session, project_id))
    missing = sorted(names - known)
    if missing:
        raise StageSchemaError(
            f"unknown secret {', '.join(repr(m) for m in missing)} "
            f"(project secrets: {', '.join(sorted(known)) or 'none'})"
        )


async def _add_job(session: AsyncSession, run: Run, name: str, spec: Any, effects: Effects) -> Job:
    assert run.id is not None
    job = Job(
        run_id=run.id,
        name=name,
        agents_group=spec.agents_group,
        executor=spec.executor,
        system=spec.system,
        config_name=spec.config_name,
        config=spec.config,
        limits=spec.limits,
        timeout=spec.timeout,
    )
    session.add(job)
    await session.flush()
    assert job.id is not None
    session.add_all(
        Step(job_id=job.id, index=s.index, tool=s.tool, name=s.name, fields=s.fields, timeout=s.timeout, when=s.when)
        for s in spec.steps
    )
    effects.event("job", id=job.id, run_id=run.id, state=job.state, result=None, created=True)
    return job


# ---------------------------------------------------------------- assignment


async def assign_job(session: AsyncSession, job_id: int, agent_id: int, effects: Effects) -> bool:
    """Give a queued job to an idle agent; False when either changed meanwhile."""
    flow, run, job = await lock_job(session, job_id)
    if job.state != State.QUEUED or job.covered:
        return False
    # claim the agent in one statement (it locks the agent's row, last in the lock order)
    claim = (
        sa.update(Agent)
        .where(col(Agent.id) == agent_id, col(Agent.current_job_id).is_(None), col(Agent.enabled).is_(True))
        .values(current_job_id=job_id)
        .returning(col(Agent.name))
        .execution_options(synchronize_session="evaluate")
    )
    agent_name = (await session.execute(claim)).scalar_one_or_none()
    if agent_name is None:
        return False  # busy or disabled meanwhile
    now = utcnow()
    job.state = State.RUNNING
    job.agent_id = agent_id
    job.agent_name = agent_name
    job.assigned = now
    job.reason = None
    metrics.job_assigned(job.agents_group, job.created, now)
    if run.state == State.QUEUED:
        run.state = State.RUNNING
        run.started = now
        effects.event("run", id=run.id, flow_id=run.flow_id, state=run.state, result=None)
    if flow.state == State.QUEUED:
        flow.state = State.RUNNING
        flow.started = now
        effects.event("flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=None)
    effects.event("job", id=job.id, run_id=job.run_id, state=job.state, result=None, agent_name=agent_name)
    effects.to_agent(agent_id, {"type": "assign", "job": await job_payload(session, job, flow)})
    return True


async def job_payload(session: AsyncSession, job: Job, flow: Flow | None = None) -> dict[str, Any]:
    """What the agent needs to run the job."""
    if flow is None:
        flow = (
            await session.execute(select(Flow).join(Run, col(Run.flow_id) == Flow.id).where(Run.id == job.run_id))
        ).scalar_one_or_none()
    steps = (
        (await session.execute(select(Step).where(Step.job_id == job.id).order_by(col(Step.index)))).scalars().all()
    )
    assert job.id is not None
    secrets = await secrets_store.job_secrets(session, job.id, steps)  # only those its steps refer to
    secrets_store.remember_job_secrets(job.id, secrets)
    return {
        "id": job.id,
        "name": job.name,
        "executor": job.executor,
        "system": job.system,
        "timeout": job.timeout,
        "limits": job.limits,
        "config": job.config,
        "flow_kind": flow.kind if flow else "ci",
        "last_seq": job.last_seq,
        "steps": [
            {
                "index": s.index,
                "tool": s.tool,
                "name": s.name,
                "fields": substitute(s.fields, secrets) if secrets else s.fields,
                "timeout": s.timeout,
                "when": s.when,
            }
            for s in steps
        ],
        "secrets": secrets,
    }


# ---------------------------------------------------------------- steps (agent messages)


async def step_started(session: AsyncSession, job: Job, index: int, effects: Effects) -> None:
    now = utcnow()
    if job.started is None:
        job.started = now
    await session.execute(
        sa.update(Step)
        .where(col(Step.job_id) == job.id, col(Step.index) == index)
        .values(state=StepState.RUNNING, started=now)
    )
    effects.event("step", job_id=job.id, index=index, state=StepState.RUNNING, result=None)


async def record_checkout(session: AsyncSession, job: Job, info: dict[str, Any], effects: Effects) -> None:
    """A git step's checkout becomes the flow's commits when the flow has none yet."""
    assert job.id is not None
    flow, _, _ = await lock_job(session, job.id)
    if commits.record_checkout(flow, info):
        effects.event("flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=flow.result)


async def step_completed(
    session: AsyncSession,
    job: Job,
    index: int,
    result: StepResult,
    effects: Effects,
    message: str | None = None,
    exit_code: int | None = None,
) -> None:
    await session.execute(
        sa.update(Step)
        .where(col(Step.job_id) == job.id, col(Step.index) == index)
        .values(state=StepState.COMPLETED, result=result, message=message, exit_code=exit_code, finished=utcnow())
    )
    effects.event("step", job_id=job.id, index=index, state=StepState.COMPLETED, result=result)


# ---------------------------------------------------------------- completion


def job_result_from_steps(step_results: Sequence[str | None]) -> Result:
    rs = set(step_results)
    for bad, res in (
        (StepResult.ERROR, Result.ERROR),
        (StepResult.TIMEOUT, Result.TIMEOUT),
        (StepResult.CANCELLED, Result.CANCELLED),
        (StepResult.FAILED, Result.FAILED),
    ):
        if bad in rs:
            return res
    return Result.PASSED


async def lock_run(session: AsyncSession, run_id: int) -> tuple[Flow, Run]:
    """Lock a run and its flow, in the documented order (flow first)."""
    if (Run, run_id) in _locked(session):
        run = await lock_row(session, Run, run_id)
        return await lock_row(session, Flow, run.flow_id), run
    flow_id = (await session.execute(select(Run.flow_id).where(Run.id == run_id))).scalar_one()
    flow = await lock_row(session, Flow, flow_id)
    return flow, await lock_row(session, Run, run_id)


async def lock_job(session: AsyncSession, job_id: int) -> tuple[Flow, Run, Job]:
    """Lock a job with its run and flow (flow, run, job)."""
    locked = _locked(session)
    if (Job, job_id) in locked:
        job = await lock_row(session, Job, job_id)
        flow, run = await lock_run(session, job.run_id)
        return flow, run, job
    if _is_sqlite(session):  # one writer at a time: one query, no row locks
        row = (
            await session.execute(
                select(Flow, Run, Job)
                .join(Run, col(Run.flow_id) == Flow.id)
                .join(Job, col(Job.run_id) == Run.id)
                .where(Job.id == job_id)
                .options(*LOCK_OPTIONS[Run])
            )
        ).one()
        flow, run, job = row[0], row[1], row[2]
        assert flow.id is not None and run.id is not None
        locked.update({(Flow, flow.id): flow, (Run, run.id): run, (Job, job_id): job})
        return flow, run, job
    ids = sa.select(col(Job.run_id), col(Run.flow_id)).join(Run, col(Run.id) == Job.run_id)
    run_id, flow_id = (await session.execute(ids.where(col(Job.id) == job_id))).one()
    flow = await lock_row(session, Flow, flow_id)
    run = await lock_row(session, Run, run_id)
    return flow, run, await lock_row(session, Job, job_id)


async def complete_job(
    session: AsyncSession, job_id: int, result: Result, effects: Effects, reason: str | None = None
) -> bool:
    """Finish a job (from the agent's report, the watchdog or a cancel).  False if already completed."""
    flow, run, job = await lock_job(session, job_id)
    if job.state == State.COMPLETED:
        return False
    now = utcnow()
    job.state = State.COMPLETED
    job.result = result
    job.finished = now
    metrics.job_completed(result)
    if reason:
        job.reason = reason
    # Steps that never finished end with the job.
    open_result = {Result.CANCELLED: StepResult.CANCELLED, Result.TIMEOUT: StepResult.TIMEOUT}.get(
        result, StepResult.ERROR
    )
    # running steps end with the job's result, steps that never started are skipped
    was_running = col(Step.state) == StepState.RUNNING
    await session.execute(
        sa.update(Step)
        .where(col(Step.job_id) == job_id, col(Step.state) != StepState.COMPLETED)
        .values(
            state=StepState.COMPLETED,
            result=sa.case((was_running, open_result.value), else_=StepResult.SKIPPED.value),
            finished=sa.case((was_running, sa.literal(now, STEP_FINISHED_TYPE)), else_=col(Step.finished)),
        )
    )
    if job.agent_id is not None:
        await session.execute(
            sa.update(Agent)
            .where(col(Agent.id) == job.agent_id, col(Agent.current_job_id) == job_id)
            .values(current_job_id=None)
        )
        effects.freed_agents.add(job.agent_id)
    effects.event("job", id=job.id, run_id=job.run_id, state=job.state, result=result, reason=job.reason)
    effects.enqueue("job_completed", key=f"job_completed:{job_id}", job_id=job_id)
    await _maybe_finish_run(session, flow, run, effects)
    return True


async def _maybe_finish_run(session: AsyncSession, flow: Flow, run: Run, effects: Effects) -> None:
    if run.state == State.COMPLETED:
        return
    await session.flush()  # the jobs' changes of this transaction count (callers may turn autoflush off)
    # one row per distinct (state, result): a few rows however large the run
    rows = (
        await session.execute(
            sa.select(col(Job.state), col(Job.result), sa.func.count(), sa.func.sum(col(Job.tests_failed)))
            .where(col(Job.run_id) == run.id, col(Job.covered).is_(False))
            .group_by(col(Job.state), col(Job.result))
        )
    ).all()
    if any(state != State.COMPLETED for state, _, _, _ in rows):
        return
    results = {r for _, r, _, _ in rows}
    tests_failed = sum(t or 0 for _, _, _, t in rows)
    run.jobs_error = sum(n for _, r, n, _ in rows if r == Result.ERROR)
    if Result.ERROR in results:
        result = Result.ERROR
    elif Result.TIMEOUT in results:
        result = Result.TIMEOUT
    elif Result.CANCELLED in results:
        result = Result.CANCELLED
    elif Result.FAILED in results or tests_failed > 0:
        result = Result.FAILED
    else:
        result = Result.PASSED
    await _finish_run(session, flow, run, effects, result)


async def _finish_run(session: AsyncSession, flow: Flow, run: Run, effects: Effects, result: Result) -> None:
    now = utcnow()
    run.state = State.COMPLETED
    run.result = result
    run.finished = now
    if run.started is None:
        run.started = now
    effects.event("run", id=run.id, flow_id=run.flow_id, state=run.state, result=result)
    effects.enqueue("run_completed", key=f"run_completed:{run.id}", run_id=run.id)
    if result in (Result.PASSED, Result.FAILED) and flow.state != State.COMPLETED:
        await _start_children(session, flow, run, effects)
    await _maybe_finish_flow(session, flow, effects)


async def _start_children(session: AsyncSession, flow: Flow, parent: Run, effects: Effects) -> None:
    """Stages whose parent is this run's stage (and that trigger on their parent) start now."""
    children = [
        s for s in await branch_stages(session, flow.branch_id)
        if s.parent == parent.stage_name and s.triggers.get("parent", True)
    ]
    if not children:
        return
    existing = set((await session.execute(select(Run.stage_name).where(Run.flow_id == flow.id))).scalars())
    for stage in children:
        if stage.name not in existing:
            await start_run(session, flow, stage, flow.args, effects)


async def _maybe_finish_flow(session: AsyncSession, flow: Flow, effects: Effects) -> None:
    if flow.state == State.COMPLETED:
        return
    await session.flush()
    rows = (await session.execute(select(Run.state, Run.result).where(Run.flow_id == flow.id))).all()
    if any(state != State.COMPLETED for state, _ in rows):
        return
    await _finish_flow(session, flow, effects, worst([Result(r) for _, r in rows if r]))


async def _finish_flow(session: AsyncSession, flow: Flow, effects: Effects, result: Result) -> None:
    now = utcnow()
    flow.state = State.COMPLETED
    flow.result = result
    flow.finished = now
    metrics.flow_completed(result, flow.created, now)
    if flow.started is None:
        flow.started = now
    effects.event("flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=result)
    effects.enqueue("flow_completed", key=f"flow_completed:{flow.id}", flow_id=flow.id)


# ---------------------------------------------------------------- cancel and rerun


async def cancel_job(session: AsyncSession, job_id: int, effects: Effects, reason: str = "cancelled by user") -> bool:
    job = await session.get(Job, job_id)
    if job is None or job.state == State.COMPLETED:
        return False
    agent_id = job.agent_id
    done = await complete_job(session, job_id, Result.CANCELLED, effects, reason)
    if done and agent_id is not None:
        effects.to_agent(agent_id, {"type": "cancel", "job_id": job_id})
    return done


async def cancel_run(session: AsyncSession, run_id: int, effects: Effects, reason: str = "cancelled by user") -> None:
    job_ids = (
        await session.execute(select(Job.id).where(Job.run_id == run_id, col(Job.state) != State.COMPLETED))
    ).scalars().all()
    for job_id in job_ids:
        assert job_id is not None
        await cancel_job(session, job_id, effects, reason)
    flow, run = await lock_run(session, run_id)
    if run.state != State.COMPLETED:
        await _finish_run(session, flow, run, effects, Result.CANCELLED)


async def cancel_flow(session: AsyncSession, flow_id: int, effects: Effects, reason: str = "cancelled by user") -> None:
    flow = await lock_row(session, Flow, flow_id)
    if flow.state == State.COMPLETED:
        return
    # Completing runs must not start their children: mark the flow first.
    run_ids = (
        await session.execute(select(Run.id).where(Run.flow_id == flow_id, col(Run.state) != State.COMPLETED))
    ).scalars().all()
    for run_id in run_ids:
        assert run_id is not None
        await cancel_run(session, run_id, effects, reason)
    await session.refresh(flow)
    if flow.state != State.COMPLETED:
        await _finish_flow(session, flow, effects, Result.CANCELLED)


async def rerun_job(session: AsyncSession, job_id: int, effects: Effects) -> Job:
    """Queue a copy of a completed job; the copy replaces it in the run's result."""
    old = await session.get(Job, job_id)
    if old is None:
        raise LookupError(job_id)
    if old.state != State.COMPLETED:
        raise ValueError("only a completed job can be rerun")
    flow, run = await lock_run(session, old.run_id)
    old.covered = True
    new = Job(
        run_id=old.run_id,
        name=old.name,
        agents_group=old.agents_group,
        executor=old.executor,
        system=old.system,
        config_name=old.config_name,
        config=old.config,
        limits=old.limits,
        timeout=old.timeout,
        rerun_of=old.id,
    )
    session.add(new)
    await session.flush()
    steps = (await session.execute(select(Step).where(Step.job_id == old.id).order_by(col(Step.index)))).scalars()
    session.add_all(
        Step(
            job_id=new.id,  # type: ignore[arg-type]
            index=s.index, tool=s.tool, name=s.name, fields=s.fields, timeout=s.timeout, when=s.when,
        )
        for s in steps
    )
    if run.state == State.COMPLETED:
        run.state = State.RUNNING
        run.result = None
        run.finished = None
        effects.event("run", id=run.id, flow_id=run.flow_id, state=run.state, result=None)
    if flow.state == State.COMPLETED:
        flow.state = State.RUNNING
        flow.result = None
        flow.finished = None
        effects.event("flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=None)
    effects.event("job", id=new.id, run_id=new.run_id, state=new.state, result=None, created=True)
    effects.wake_scheduler = True
    return new
