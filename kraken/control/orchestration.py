"""Every state change of flows, runs, jobs and steps happens here, and only here.

Each function works inside the caller's write transaction (``Database.transaction()``)
and records what must follow the commit (bus messages, background tasks, a
scheduler wake-up) in an ``Effects``.  Lock order, to keep PostgreSQL free of
deadlocks: flow, then run, then job, then agent (``lock_job`` takes the first three);
a branch is locked for its sequence counters, after its flow or before a new one; the
jobs of one transaction in id order.

The hot paths of a busy fleet take no flow lock (every job of a flow would wait for it):

- assigning a job of a run and flow that already run locks the job alone (``assign_job``);
- an agent's messages that end its job lock the job and hold its run ``FOR KEY SHARE``
  (``lock_job_shared``): the run cannot finish meanwhile, the other jobs of the run go on.  The
  run is then settled after the commit, in a short transaction of its own that locks flow and
  run (``settle_runs``), only when an unlocked read shows that none of its jobs is open.  Of two
  jobs ending at once, the later commit sees the other's; a transaction that finishes the run
  in place (``lock_run``: ``FOR UPDATE``) waits for the shared holders, so it sees their jobs
  completed too.  The watchdog settles a run whose settling was lost (a crash after the commit).

States: queued -> running -> completed (``transitions.TRANSITIONS``); once completed a
result is set: passed, failed, error, cancelled or timeout.  A run takes the result that wins
among its jobs (``transitions.RESULT_ORDER``), ``failed`` when they all passed but tests
failed; a flow takes the one that wins among its runs.  A run's child stages start only when
every one of its jobs passed (``_follow_run``); manual stages wait to be started by hand.

A run's stage code is evaluated outside any write transaction: ``add_run`` creates the run,
``start_run`` (the ``start_run`` task, or ``evaluate_pending`` right after the commit)
evaluates the code and then creates its jobs in a short transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from kraken.control import job_policy
from kraken.control.effects import Effects
from kraken.control.transitions import combine, set_state
from kraken.core.db import Database
from kraken.culprits import pin as culprit_pin
from kraken.models import Agent, Branch, Flow, Job, Project, Run, Stage, Step
from kraken.models.base import utcnow
from kraken.models.enums import FlowKind, Result, State, StepResult, StepState
from kraken.observability import metrics
from kraken.protocol import DEFAULT_WHEN, Assign, Cancel
from kraken.protocol import JobSpec as AgentJob
from kraken.results.durations import pin_history, split_payload
from kraken.secrets import store as secrets_store
from kraken.secrets.refs import part_problem, references, substitute
from kraken.stage import JobSpec, StageContext, StageSchemaError, evaluate_stage, expand_jobs, from_repo, resolve_args
from kraken.stage.interpolate import interpolate_at
from kraken.tools_registry import store as tool_store
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


def is_manual(stage: Stage) -> bool:
    """A stage that waits for a person: it never starts by itself."""
    return bool(stage.triggers.get("manual"))


async def create_flow(
    session: AsyncSession,
    branch: Branch,
    kind: FlowKind,
    args: dict[str, Any],
    effects: Effects,
    trigger: dict[str, Any] | None = None,
    start_stages: Sequence[Stage] | None = None,
) -> Flow:
    """Create a flow and the runs of its root stages (or of ``start_stages``: a trigger's).

    The runs' stage code is evaluated after this transaction (``evaluate_pending`` or the
    ``start_run`` task); manual root stages are listed in ``manual_stages``."""
    assert branch.id is not None
    branch_id = branch.id
    branch = await lock_branch(session, branch_id)
    seq = next_seq(branch, "ci_flow_seq" if kind == FlowKind.CI else "dev_flow_seq")
    flow = Flow(branch_id=branch_id, kind=kind.value, seq=seq, args=args, trigger=trigger or {"reason": "manual"})
    commits.set_commits(flow, commits.from_trigger(trigger))
    flow.shared_seq = next_seq(branch, "flow_seq")  # flows of both kinds (KK_FLOW_SEQ)
    session.add(flow)
    await session.flush()
    effects.event("flow", id=flow.id, branch_id=branch_id, state=flow.state, result=None, created=True)
    if start_stages is not None:
        roots = list(start_stages)
    else:
        roots = [s for s in await branch_stages(session, branch_id) if s.parent == ROOT]
        flow.manual_stages = [s.name for s in roots if is_manual(s)]
        roots = [s for s in roots if not is_manual(s)]
    for stage in roots:
        await add_run(session, flow, stage, effects)
    if not roots:
        await _finish_flow(session, flow, effects, Result.PASSED)
    return flow


async def branch_stages(session: AsyncSession, branch_id: int) -> Sequence[Stage]:
    rows = await session.execute(
        select(Stage).where(Stage.branch_id == branch_id, col(Stage.enabled).is_(True)).order_by(col(Stage.id))
    )
    return rows.scalars().all()


async def add_run(session: AsyncSession, flow: Flow, stage: Stage, effects: Effects) -> Run:
    """A new run of ``stage`` in ``flow``, queued without jobs until its stage code is evaluated.

    Its evaluation is recorded as the ``start_run`` task; ``evaluate_pending`` runs it at once
    instead, after the commit.  A completed flow is reopened."""
    assert flow.id is not None and stage.id is not None
    branch = await lock_branch(session, flow.branch_id)
    run = Run(
        flow_id=flow.id,
        stage_id=stage.id,
        stage_name=stage.name,
        seq=next_seq(branch, "run_seq"),
        args=flow.args,
        evaluated=False,
    )
    session.add(run)
    await _count_stage_run(session, flow, stage, run)
    await session.flush()
    effects.event("run", id=run.id, flow_id=flow.id, state=run.state, result=None, created=True)
    effects.enqueue(START_RUN_TASK, key=f"{START_RUN_TASK}:{run.id}", run_id=run.id)
    if stage.name in flow.manual_stages:
        flow.manual_stages = [name for name in flow.manual_stages if name != stage.name]
    if any(s.get("stage_name") == stage.name for s in flow.skipped_stages):
        flow.skipped_stages = [s for s in flow.skipped_stages if s.get("stage_name") != stage.name]
    if flow.state == State.COMPLETED:
        set_state(flow, State.RUNNING, effects)
    return run


START_RUN_TASK = "start_run"


@dataclass
class _Evaluation:
    """What evaluating a run's stage code gave: its jobs, or the error that ends it."""

    args: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)
    specs: list[JobSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    commit: str | None = None  # the commit its stage code came from (stage code from a repository)


async def _evaluate(db: Database, run_id: int) -> _Evaluation | None:
    """Evaluate a pending run's stage code outside any write transaction (None: nothing to do)."""
    async with db.session(quick=True) as session:
        run = await session.get(Run, run_id, options=LOCK_OPTIONS[Run])
        if run is None or run.evaluated or run.state == State.COMPLETED:
            return None
        flow = await session.get(Flow, run.flow_id)
        stage = await session.get(Stage, run.stage_id) if run.stage_id is not None else None
        branch = await session.get(Branch, flow.branch_id) if flow is not None else None
        project = await session.get(Project, branch.project_id) if branch is not None else None
    if flow is None or branch is None:
        return None
    if stage is None:
        return _Evaluation(error=f"stage '{run.stage_name}' was deleted")
    await tool_store.refresh_snapshot(db)  # the custom tools the steps may use
    assert flow.id is not None
    code, source, commit = stage.schema_code, None, None
    if stage.schema_from_repo:
        try:
            code, source, commit = await from_repo.read_for_run(db, stage, branch.project_id)
        except from_repo.RepoError as exc:
            return _Evaluation(error=f"stage code from repository: {exc}")
    try:
        args = resolve_args(stage.schema_, run.args)
        ctx = StageContext(
            args=args,
            branch_name=branch.branch_name,
            flow_kind=flow.kind,
            project_name=project.name if project else "",
            flow_id=flow.id,
            flow_seq=flow.seq,
            run_id=run_id,
            stage_name=stage.name,
            trigger=flow.trigger,
            **_context_extras(project, branch, flow, stage, run),
        )
        schema = await evaluate_stage(code, ctx)
        if source is not None:
            from_repo.unsaved_change(stage, schema)
        args = resolve_args(schema, run.args)
        variables = ctx.variables()
        values = {**args, **variables, "args": args}
        labels = {key: interpolate_at(schema[key], values, key) for key in LABEL_KEYS if schema.get(key)}
        specs = expand_jobs(schema, args, variables)
        if culprit_pin.is_bisection(flow.trigger):  # one commit, only the regressed tests
            specs = culprit_pin.pin_specs(flow.trigger, specs)
            schema = culprit_pin.without_notifications(schema)
    except StageSchemaError as exc:
        if source is not None and commit is not None:
            exc = from_repo.code_error(exc, source, commit)
            return _Evaluation(error=f"stage schema: {exc.message}", commit=commit)
        return _Evaluation(error=f"stage schema: {exc}")
    return _Evaluation(args=args, schema=schema, specs=specs, labels=labels, commit=commit)


LABEL_KEYS = ("flow_label", "run_label")


async def start_run(db: Database, run_id: int, effects: Effects) -> None:
    """Evaluate a pending run's stage code (outside any write transaction), then commit its jobs.

    An evaluation error ends the run with ``error`` and the error as its reason.  A run that was
    cancelled or started meanwhile is left as it is."""
    evaluation = await _evaluate(db, run_id)
    if evaluation is None:
        return
    async with db.transaction(quick=True) as session:
        flow, run = await lock_run(session, run_id)
        if run.evaluated or run.state == State.COMPLETED:
            return
        run.evaluated = True
        run.schema_commit = evaluation.commit
        if evaluation.error is None:
            try:
                await _check_secret_references(session, flow.branch_id, evaluation.specs)
            except StageSchemaError as exc:
                evaluation.error = f"stage schema: {exc}"
        if evaluation.error is not None:
            run.reason = evaluation.error
            await _finish_run(session, flow, run, effects, Result.ERROR)
            return
        schema = evaluation.schema
        run.args = evaluation.args
        run.schema_ = schema
        run.jobs_total = len(evaluation.specs)
        run.label = evaluation.labels.get("run_label")
        if flow.label is None and evaluation.labels.get("flow_label"):
            flow.label = evaluation.labels["flow_label"]
            effects.event(
                "flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=flow.result, label=flow.label
            )
        if schema.get("timeout"):
            run.timeout = float(schema["timeout"])
            run.deadline = utcnow() + timedelta(seconds=run.timeout)
        splits = [spec.split for spec in evaluation.specs if spec.split]
        if splits:
            await pin_history(session, flow.branch_id, run.stage_name, splits)
        jobs = [await _add_job(session, run, spec.name, spec, effects) for spec in evaluation.specs]
        effects.event("run", id=run.id, flow_id=flow.id, state=run.state, result=None, label=run.label)
        effects.wake_scheduler = True
        if (schema.get("notification") or {}).get("started"):
            effects.enqueue("notify_run_started", key=f"notify_run_started:{run.id}", run_id=run.id)
        await apply_job_policy(session, None, flow, jobs, effects)


async def evaluate_pending(db: Database, effects: Effects) -> None:
    """Start now, outside the caller's (committed) transaction, the runs whose ``start_run``
    tasks ``effects`` holds, instead of leaving them to the task queue."""
    while True:
        pending = [t for t in effects.tasks if t[0] == START_RUN_TASK]
        if not pending:
            return
        effects.tasks = [t for t in effects.tasks if t[0] != START_RUN_TASK]
        for _, _, kwargs in pending:
            await start_run(db, int(kwargs["run_id"]), effects)


def _context_extras(project: Project | None, branch: Branch, flow: Flow, stage: Stage, run: Run) -> dict[str, Any]:
    """What a run's stage context has beside the basics: the branch's environment variables,
    ids, descriptions and the original Kraken's sequences (counted when the run was added)."""
    return {
        "env": dict(branch.env_vars or {}),
        "project_id": project.id if project else None,
        "project_description": project.description if project else "",
        "branch_id": branch.id,
        "branch_display_name": branch.name,
        "stage_id": stage.id,
        "flow_label": flow.label,
        "flow_shared_seq": flow.shared_seq,
        "run_seq": run.stage_seq,
        "run_shared_seq": run.stage_shared_seq,
    }


async def _count_stage_run(session: AsyncSession, flow: Flow, stage: Stage, run: Run) -> None:
    """This run in its stage's sequences: of every flow (``run.seq.shared``) and of its kind (``run.seq.own``)."""
    own = col(Stage.ci_run_seq) if flow.kind == FlowKind.CI else col(Stage.dev_run_seq)
    counted = await session.execute(
        sa.update(Stage)
        .where(col(Stage.id) == stage.id)
        .values({col(Stage.run_seq): col(Stage.run_seq) + 1, own: own + 1})
        .returning(col(Stage.run_seq), own)
        .execution_options(synchronize_session=False)
    )
    run.stage_shared_seq, run.stage_seq = counted.one()


async def _check_secret_references(session: AsyncSession, branch_id: int, specs: Sequence[Any]) -> None:
    """A step may only refer to secrets its project has, and to parts their kinds have."""
    names = secrets_store.names_in_steps((s.tool, s.fields) for spec in specs for s in spec.steps)
    if not names:
        return
    branch = await session.get(Branch, branch_id)
    assert branch is not None
    project_id = branch.project_id
    kinds = await secrets_store.project_secret_kinds(session, project_id)
    missing = sorted(names - set(kinds))
    if missing:
        raise StageSchemaError(
            f"unknown secret {', '.join(repr(m) for m in missing)} "
            f"(project secrets: {', '.join(sorted(kinds)) or 'none'})"
        )
    for spec in specs:
        for step in spec.steps:
            for path, name, part in references(step.fields):
                problem = part_problem(kinds[name], part)
                if problem is not None:
                    raise StageSchemaError(
                        f"job '{spec.name}' step {step.index} field '{path}': the secret '{name}' {problem}"
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
        split=spec.split,
    )
    session.add(job)
    await session.flush()
    assert job.id is not None
    session.add_all(
        Step(
            job_id=job.id,
            index=s.index,
            tool=s.tool,
            name=s.name,
            fields=s.fields,
            timeout=s.timeout,
            when=s.when or DEFAULT_WHEN,
            attempts=s.attempts,
            sleep_time_after_attempt=s.sleep_time_after_attempt,
        )
        for s in spec.steps
    )
    effects.event("job", id=job.id, run_id=run.id, state=job.state, result=None, created=True)
    return job


# ---------------------------------------------------------------- assignment


async def assign_job(session: AsyncSession, job_id: int, agent_id: int, effects: Effects) -> bool:
    """Give a queued job to an idle agent; False when either changed meanwhile.

    The job's flow and run are locked only when one of them is still queued (it starts now);
    a transaction that assigns several jobs takes those locks first (``lock_for_assignment``)."""
    flow, run, job = await _lock_for_assignment(session, job_id)
    if job.state != State.QUEUED or job.covered:
        return False
    # claim the agent in one statement (it locks the agent's row, last in the lock order)
    claim = (
        sa.update(Agent)
        .where(
            col(Agent.id) == agent_id,
            col(Agent.current_job_id).is_(None),
            col(Agent.enabled).is_(True),
            col(Agent.approved).is_(True),
        )
        .values(current_job_id=job_id)
        .returning(col(Agent.name))
        .execution_options(synchronize_session="evaluate")
    )
    agent_name = (await session.execute(claim)).scalar_one_or_none()
    if agent_name is None:
        return False  # busy, disabled or revoked meanwhile
    now = utcnow()
    job.agent_id = agent_id
    job.agent_name = agent_name
    job.reason = None
    set_state(job, State.RUNNING, effects, now=now, agent_name=agent_name)
    metrics.job_assigned(job.agents_group, job.created, now)
    if run is not None:  # locked: the run or the flow starts now
        if run.state == State.QUEUED:
            set_state(run, State.RUNNING, effects, now=now)
        if flow.state == State.QUEUED:
            set_state(flow, State.RUNNING, effects, now=now)
    effects.to_agent(agent_id, Assign(job=AgentJob.model_validate(await job_payload(session, job, flow))))
    return True


async def lock_for_assignment(session: AsyncSession, job_ids: Sequence[int]) -> None:
    """Before assigning several jobs in one transaction: lock (flow, run, job, in job order) those
    whose flow or run is still queued, so that no flow lock is taken after a job's."""
    if not job_ids or _is_sqlite(session):
        return
    starting = await session.execute(
        sa.select(col(Job.id))
        .join(Run, col(Run.id) == Job.run_id)
        .join(Flow, col(Flow.id) == Run.flow_id)
        .where(col(Job.id).in_(job_ids), sa.or_(col(Run.state) != State.RUNNING, col(Flow.state) != State.RUNNING))
        .order_by(col(Job.id))
    )
    for starting_id in starting.scalars().all():
        await lock_job(session, int(starting_id or 0))


async def _lock_for_assignment(session: AsyncSession, job_id: int) -> tuple[Flow, Run | None, Job]:
    """The job locked, with its flow; its run too (and the flow locked) when either is not running yet.

    A queued job keeps its run open (a run finishes only when all its jobs have), and a run never
    goes back to queued: once both run, the job's own lock is enough to assign it."""
    locked = _locked(session)
    if (Job, job_id) in locked or _is_sqlite(session):
        return await lock_job(session, job_id)
    row = (
        await session.execute(
            sa.select(col(Run.flow_id), col(Run.state), col(Flow.state))
            .join(Job, col(Job.run_id) == Run.id)
            .join(Flow, col(Flow.id) == Run.flow_id)
            .where(col(Job.id) == job_id)
        )
    ).one()
    flow_id, run_state, flow_state = row
    if run_state != State.RUNNING or flow_state != State.RUNNING:
        return await lock_job(session, job_id)
    job = await lock_row(session, Job, job_id)
    flow = locked.get((Flow, flow_id)) or await session.get(Flow, flow_id)
    assert flow is not None
    return flow, None, job


async def requeue_unaccepted(session: AsyncSession, job_id: int, effects: Effects, reason: str) -> bool:
    """Take back an assignment that its agent has not accepted (no message from it: ``last_seq`` 0)
    and queue the job again; False when the agent accepted it meanwhile or it ended.

    Its ``job_accepted`` is applied under the same job lock, so either the agent's acceptance wins
    and the job stays there, or this does and the agent, told ``cancel`` (before the
    acknowledgement of a late acceptance), never runs the job."""
    _, _, job = await lock_job(session, job_id)
    if job.state != State.RUNNING or job.last_seq != 0 or job.started is not None or job.agent_id is None:
        return False
    agent_id = job.agent_id
    await session.execute(
        sa.update(Agent)
        .where(col(Agent.id) == agent_id, col(Agent.current_job_id) == job_id)
        .values(current_job_id=None)
    )
    job.agent_id = None
    job.agent_name = None
    job.reason = reason
    set_state(job, State.QUEUED, effects, reason=reason)
    job.assigned = None
    effects.to_agent(agent_id, Cancel(job_id=job_id))
    effects.freed_agents.add(agent_id)
    effects.wake_scheduler = True
    return True


async def job_payload(session: AsyncSession, job: Job, flow: Flow | None = None) -> dict[str, Any]:
    """What the agent needs to run the job."""
    if flow is None:
        flow = (
            await session.execute(select(Flow).join(Run, col(Run.flow_id) == Flow.id).where(Run.id == job.run_id))
        ).scalar_one_or_none()
    steps = (await session.execute(select(Step).where(Step.job_id == job.id).order_by(col(Step.index)))).scalars().all()
    assert job.id is not None
    secrets = await secrets_store.job_secrets(session, job.id, steps)  # only those its steps refer to
    secrets_store.remember_job_secrets(job.id, secrets)
    digests = await tool_store.step_digests(session, {s.tool for s in steps})  # custom tools
    branch = await session.get(Branch, flow.branch_id) if flow is not None else None
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
                "when": s.when or DEFAULT_WHEN,
                "attempts": s.attempts,
                "sleep_time_after_attempt": s.sleep_time_after_attempt,
                **({"tool_digest": digests[s.tool]} if s.tool in digests else {}),
            }
            for s in steps
        ],
        "env": dict(branch.env_vars or {}) if branch is not None else {},
        "secrets": secrets,
        **({"split": await split_payload(session, job)} if job.split else {}),
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


def _shared_runs(session: AsyncSession) -> set[int]:
    """The runs this transaction holds ``FOR KEY SHARE`` (``lock_job_shared``) and not ``FOR UPDATE``."""
    shared: set[int] = session.info.setdefault("kraken_shared_runs", set())
    return shared


async def lock_job_shared(session: AsyncSession, job_id: int) -> Job:
    """Lock a job for its agent's messages, its run held ``FOR KEY SHARE`` and its flow not at all.

    Ending the job here (``complete_job``) does not finish its run: the caller settles the runs
    listed in ``Effects.settle_runs`` after the commit (``settle_runs``).  Only for handlers that
    lock nothing above the job.  On SQLite (one writer at a time) this is ``lock_job``."""
    locked = _locked(session)
    if (Job, job_id) in locked or _is_sqlite(session):
        return (await lock_job(session, job_id))[2]
    run_id = (await session.execute(sa.select(col(Job.run_id)).where(col(Job.id) == job_id))).scalar_one()
    if (Run, run_id) not in locked:
        await session.execute(
            sa.select(col(Run.id)).where(col(Run.id) == run_id).with_for_update(read=True, key_share=True)
        )
        _shared_runs(session).add(run_id)
    return await lock_row(session, Job, job_id)


async def settle_runs(db: Database, run_ids: Sequence[int], effects: Effects) -> None:
    """Finish the runs (and their flows) among ``run_ids`` whose jobs have all ended, each in a
    short transaction that locks its flow and run; after the commit of a transaction whose job
    ended under ``lock_job_shared``.  Safe to run again: a finished run is left as it is."""
    if not run_ids:
        return
    async with db.session(quick=True) as session:
        open_job = sa.exists().where(col(Job.run_id) == Run.id, col(Job.state) != State.COMPLETED, ~col(Job.covered))
        ready = (
            (
                await session.execute(
                    sa.select(col(Run.id))
                    .where(col(Run.id).in_(sorted(set(run_ids))), col(Run.state) != State.COMPLETED, ~open_job)
                    .order_by(col(Run.id))
                )
            )
            .scalars()
            .all()
        )
    for run_id in ready:
        settled = Effects()
        async with db.transaction(quick=True) as session:
            flow, run = await lock_run(session, int(run_id or 0))
            await _maybe_finish_run(session, flow, run, settled)
        effects.merge(settled)


async def unsettled_runs(session: AsyncSession, ended_before: datetime) -> list[int]:
    """Running runs none of whose jobs is open, the last one ended before ``ended_before``: their
    settling after the commit was lost (the process died between the two)."""
    open_or_recent = sa.exists().where(
        col(Job.run_id) == Run.id,
        ~col(Job.covered),
        sa.or_(col(Job.state) != State.COMPLETED, col(Job.finished) >= ended_before),
    )
    rows = await session.execute(
        sa.select(col(Run.id)).where(col(Run.state) == State.RUNNING, col(Run.evaluated).is_(True), ~open_or_recent)
    )
    return [int(r or 0) for r in rows.scalars()]


async def complete_job(
    session: AsyncSession, job_id: int, result: Result, effects: Effects, reason: str | None = None
) -> bool:
    """Finish a job (from the agent's report, the watchdog or a cancel).  False if already completed.

    Its run finishes here when this transaction holds the run's lock; under ``lock_job_shared``
    the run is listed in ``effects.settle_runs`` instead, for ``settle_runs`` after the commit."""
    locked = _locked(session)
    shared = locked.get((Job, job_id))
    if shared is not None and shared.run_id in _shared_runs(session) and (Run, shared.run_id) not in locked:
        flow, run, job = None, None, shared
    else:
        flow, run, job = await lock_job(session, job_id)
    if job.state == State.COMPLETED:
        return False
    now = utcnow()
    metrics.job_completed(result)
    if reason:
        job.reason = reason
    set_state(job, State.COMPLETED, effects, result=result, now=now, reason=job.reason)
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
    effects.enqueue("job_completed", key=f"job_completed:{job_id}", job_id=job_id)
    if flow is None or run is None:
        effects.settle_runs.add(job.run_id)
    else:
        await _maybe_finish_run(session, flow, run, effects)
    return True


async def _maybe_finish_run(session: AsyncSession, flow: Flow, run: Run, effects: Effects) -> None:
    if run.state == State.COMPLETED:
        return
    await session.flush()  # the jobs' changes of this transaction count (callers may turn autoflush off)
    # one row per distinct (state, result): a few rows however large the run
    rows = (
        await session.execute(
            sa.select(
                col(Job.state),
                col(Job.result),
                sa.func.count(),
                sa.func.sum(col(Job.tests_failed)),
                sa.func.sum(col(Job.tests_quarantined)),
            )
            .where(col(Job.run_id) == run.id, col(Job.covered).is_(False))
            .group_by(col(Job.state), col(Job.result))
        )
    ).all()
    if any(state != State.COMPLETED for state, *_ in rows):
        return
    # failures of quarantined tests are counted apart: they do not make the run fail
    tests_failed = sum(t or 0 for *_, t, _ in rows)
    run.tests_quarantined = sum(q or 0 for *_, q in rows)
    run.jobs_error = sum(n for _, r, n, _, _ in rows if r == Result.ERROR)
    result = combine(r for _, r, *_ in rows if r)
    if result == Result.PASSED and tests_failed > 0:
        result = Result.FAILED  # every job passed, some tests failed: the children still start
    await _finish_run(session, flow, run, effects, result)


async def _finish_run(session: AsyncSession, flow: Flow, run: Run, effects: Effects, result: Result) -> None:
    set_state(run, State.COMPLETED, effects, result=result)
    effects.enqueue("run_completed", key=f"run_completed:{run.id}", run_id=run.id)
    await _follow_run(session, flow, run, effects)
    await _maybe_finish_flow(session, flow, effects)


async def _not_passed_jobs(session: AsyncSession, run: Run) -> list[tuple[str, str]]:
    """(name, result) of the run's jobs that did not pass."""
    rows = await session.execute(
        select(Job.name, Job.result)
        .where(Job.run_id == run.id, col(Job.covered).is_(False), col(Job.result) != Result.PASSED)
        .order_by(col(Job.id))
    )
    return [(name, str(result)) for name, result in rows.all()]


async def _follow_run(session: AsyncSession, flow: Flow, run: Run, effects: Effects) -> None:
    """After a run: its child stages start when every one of its jobs passed (failed tests do
    not stop them); manual children become ready instead.  Otherwise each child is recorded in
    the flow's ``skipped_stages`` with the reason.  A bisection flow runs its one stage only."""
    if culprit_pin.is_bisection(flow.trigger):
        return
    children = [s for s in await branch_stages(session, flow.branch_id) if s.parent == run.stage_name]
    if not children:
        return
    existing = set((await session.execute(select(Run.stage_name).where(Run.flow_id == flow.id))).scalars())
    children = [s for s in children if s.name not in existing]
    if not children:
        return
    reason = await _why_children_wait(session, run)
    if reason is not None:
        names = {s.name for s in children}
        flow.manual_stages = [name for name in flow.manual_stages if name not in names]
        kept = [s for s in flow.skipped_stages if s.get("stage_name") not in names]
        flow.skipped_stages = kept + [{"stage_name": s.name, "run_id": run.id, "reason": reason} for s in children]
        effects.event("flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=flow.result)
        return
    manual = [s.name for s in children if is_manual(s)]
    if manual:
        flow.manual_stages = [*flow.manual_stages, *(m for m in manual if m not in flow.manual_stages)]
        flow.skipped_stages = [s for s in flow.skipped_stages if s.get("stage_name") not in manual]
        effects.event("flow", id=flow.id, branch_id=flow.branch_id, state=flow.state, result=flow.result)
    for stage in children:
        if not is_manual(stage) and stage.triggers.get("parent", True):
            await add_run(session, flow, stage, effects)


async def _why_children_wait(session: AsyncSession, run: Run) -> str | None:
    """Why the stages after ``run`` do not start, or None when they may."""
    if run.result not in (Result.PASSED, Result.FAILED):
        detail = f": {run.reason}" if run.reason else ""
        return f"stage '{run.stage_name}' ended {run.result}{detail}"
    bad = await _not_passed_jobs(session, run)
    if not bad:
        return None
    shown = ", ".join(f"'{name}' {result}" for name, result in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"stage '{run.stage_name}' had jobs that did not pass: {shown}{more}"


async def _maybe_finish_flow(session: AsyncSession, flow: Flow, effects: Effects) -> None:
    if flow.state == State.COMPLETED:
        return
    await session.flush()
    rows = (await session.execute(select(Run.state, Run.result).where(Run.flow_id == flow.id))).all()
    if any(state != State.COMPLETED for state, _ in rows):
        return
    await _finish_flow(session, flow, effects, combine(r for _, r in rows if r))


async def _finish_flow(session: AsyncSession, flow: Flow, effects: Effects, result: Result) -> None:
    set_state(flow, State.COMPLETED, effects, result=result)
    metrics.flow_completed(result, flow.created, flow.finished or utcnow())
    effects.enqueue("flow_completed", key=f"flow_completed:{flow.id}", flow_id=flow.id)


# ---------------------------------------------------------------- cancel, time limits and rerun


async def end_job(session: AsyncSession, job_id: int, result: Result, effects: Effects, reason: str) -> bool:
    """End a job from the server's side (cancel, time limit): the agent running it is told to stop."""
    job = await session.get(Job, job_id)
    if job is None or job.state == State.COMPLETED:
        return False
    agent_id = job.agent_id
    done = await complete_job(session, job_id, result, effects, reason)
    if done and agent_id is not None:
        effects.to_agent(agent_id, Cancel(job_id=job_id))
    return done


async def cancel_job(session: AsyncSession, job_id: int, effects: Effects, reason: str = "cancelled by user") -> bool:
    return await end_job(session, job_id, Result.CANCELLED, effects, reason)


async def _end_run(session: AsyncSession, run_id: int, result: Result, effects: Effects, reason: str) -> None:
    job_ids = (
        (
            await session.execute(
                select(Job.id).where(Job.run_id == run_id, col(Job.state) != State.COMPLETED).order_by(col(Job.id))
            )
        )
        .scalars()
        .all()
    )
    for job_id in job_ids:
        assert job_id is not None
        await end_job(session, job_id, result, effects, reason)
    flow, run = await lock_run(session, run_id)
    if run.state != State.COMPLETED:  # it had no open job (e.g. its code is still being evaluated)
        run.reason = run.reason or reason
        await _finish_run(session, flow, run, effects, result)


async def cancel_run(session: AsyncSession, run_id: int, effects: Effects, reason: str = "cancelled by user") -> None:
    await _end_run(session, run_id, Result.CANCELLED, effects, reason)


async def time_out_run(session: AsyncSession, run_id: int, effects: Effects) -> None:
    """The run's time limit (its stage's ``timeout``) has passed: its open jobs end ``timeout``."""
    _, run = await lock_run(session, run_id)
    if run.state == State.COMPLETED or run.deadline is None or run.deadline > utcnow():
        return
    await _end_run(session, run_id, Result.TIMEOUT, effects, f"the run's time limit of {run.timeout or 0:g} s passed")


async def cancel_flow(session: AsyncSession, flow_id: int, effects: Effects, reason: str = "cancelled by user") -> None:
    flow = await lock_row(session, Flow, flow_id)
    if flow.state == State.COMPLETED:
        return
    run_ids = (
        (await session.execute(select(Run.id).where(Run.flow_id == flow_id, col(Run.state) != State.COMPLETED)))
        .scalars()
        .all()
    )
    for run_id in run_ids:
        assert run_id is not None
        await cancel_run(session, run_id, effects, reason)
    await session.refresh(flow)
    if flow.state != State.COMPLETED:
        await _finish_flow(session, flow, effects, Result.CANCELLED)


class StartRefused(ValueError):
    """A stage that cannot start in this flow (``status``: the HTTP status that says why)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def start_stage(session: AsyncSession, flow_id: int, stage_name: str, effects: Effects) -> Run:
    """Start a stage by hand in an existing flow: a manual stage that is ready, or any enabled
    stage of the branch that has no run in this flow yet.  A completed flow is reopened."""
    flow = await lock_row(session, Flow, flow_id)
    stage = (
        await session.execute(select(Stage).where(Stage.branch_id == flow.branch_id, Stage.name == stage_name))
    ).scalar_one_or_none()
    if stage is None:
        names = [s.name for s in await branch_stages(session, flow.branch_id)]
        raise StartRefused(
            f"stage_name: the branch has no stage '{stage_name}' (stages: {', '.join(names) or 'none'})", 422
        )
    if not stage.enabled:
        raise StartRefused(f"stage_name: stage '{stage_name}' is disabled", 422)
    existing = (
        await session.execute(select(Run.id, Run.state).where(Run.flow_id == flow_id, Run.stage_name == stage_name))
    ).first()
    if existing is not None:
        raise StartRefused(
            f"stage '{stage_name}' already has a run in flow {flow_id} (run {existing[0]}, {existing[1]}); "
            "rerun its jobs instead",
            409,
        )
    return await add_run(session, flow, stage, effects)


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
        split=old.split,
        timeout=old.timeout,
        rerun_of=old.id,
    )
    session.add(new)
    await session.flush()
    steps = (await session.execute(select(Step).where(Step.job_id == old.id).order_by(col(Step.index)))).scalars()
    session.add_all(
        Step(
            job_id=new.id,  # type: ignore[arg-type]
            index=s.index,
            tool=s.tool,
            name=s.name,
            fields=s.fields,
            timeout=s.timeout,
            when=s.when,
            attempts=s.attempts,
            sleep_time_after_attempt=s.sleep_time_after_attempt,
        )
        for s in steps
    )
    if run.state == State.COMPLETED:
        set_state(run, State.RUNNING, effects)
        if run.timeout is not None:  # the time limit counts again from the rerun
            run.deadline = utcnow() + timedelta(seconds=run.timeout)
    if flow.state == State.COMPLETED:
        set_state(flow, State.RUNNING, effects)
    effects.event("job", id=new.id, run_id=new.run_id, state=new.state, result=None, created=True)
    effects.wake_scheduler = True
    await apply_job_policy(session, None, flow, [new], effects)
    return new


# ---------------------------------------------------------------- security policy hook


async def apply_job_policy(
    session: AsyncSession, branch: Branch | None, flow: Flow, jobs: Sequence[Job], effects: Effects
) -> None:
    """New jobs that a security policy refuses (``kraken/control/job_policy.py``) end at once
    with ``error`` and the policy's reason."""
    branch = branch or await session.get(Branch, flow.branch_id)
    if branch is None:
        return
    for job in jobs:
        reason = job_policy.refusal(branch, flow, job)
        if reason is not None:
            assert job.id is not None
            await complete_job(session, job.id, Result.ERROR, effects, reason)
