"""Scheduler: gives queued jobs to idle agents that can run them.

Event driven: a message on the ``sched`` channel (a job was queued, an agent
connected or finished) triggers a pass at once; a slow sweep is only a safety
net.  Jobs are taken in FIFO order; a job goes to an enabled, approved, online, idle agent
in the job's group whose capabilities include the job's executor and, for the
direct executor, the job's system.  A job no agent could ever take gets a
reason that the API shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kraken.control import orchestration
from kraken.control.agents import ALL_GROUP, agent_groups
from kraken.control.effects import Effects
from kraken.control.service import Service
from kraken.models import Agent, Job
from kraken.models.base import utcnow
from kraken.models.enums import State
from kraken.observability import metrics
from kraken.protocol import SCHED_CHANNEL

log = logging.getLogger(__name__)

BATCH = 200
ANY_SYSTEM = {"any", ""}


class JobNeeds(Protocol):
    """What decides which agents can run a job."""

    @property
    def agents_group(self) -> str: ...
    @property
    def executor(self) -> str: ...
    @property
    def system(self) -> str: ...


class AgentFacts(Protocol):
    """What the scheduler's rules read of an agent (an ``Agent`` row or a ``SchedulableAgent``)."""

    @property
    def id(self) -> int | None: ...
    @property
    def capabilities(self) -> dict[str, Any]: ...
    @property
    def connected_to(self) -> str | None: ...
    @property
    def last_seen(self) -> datetime | None: ...
    @property
    def current_job_id(self) -> int | None: ...


class SchedulableAgent(NamedTuple):
    """An agent as a scheduler pass reads it: plain columns, no ORM object (a pass reads every
    schedulable agent; with a thousand of them, building ORM objects and decoding each one's
    capabilities took most of a pass)."""

    id: int
    capabilities: dict[str, Any]
    connected_to: str | None
    last_seen: datetime | None
    current_job_id: int | None


_CAPS_CACHE: dict[str, dict[str, Any]] = {}  # capabilities as stored -> decoded: agents' repeat
_CAPS_CACHE_MAX = 4096


def _capabilities(raw: str | None) -> dict[str, Any]:
    """Decoded capabilities, shared by the agents that have the same ones (read only)."""
    if not raw:
        return {}
    caps = _CAPS_CACHE.get(raw)
    if caps is None:
        decoded = orjson.loads(raw)
        caps = decoded if isinstance(decoded, dict) else {}
        if len(_CAPS_CACHE) >= _CAPS_CACHE_MAX:
            _CAPS_CACHE.clear()
        _CAPS_CACHE[raw] = caps
    return caps


async def schedulable_agents(session: AsyncSession) -> list[SchedulableAgent]:
    """Every enabled, approved agent, in id order (the scheduler's choice order)."""
    rows = await session.execute(
        sa.select(
            col(Agent.id),
            sa.cast(col(Agent.capabilities), sa.Text),
            col(Agent.connected_to),
            col(Agent.last_seen),
            col(Agent.current_job_id),
        )
        .where(*SCHEDULABLE)
        .order_by(col(Agent.id))
    )
    out = []
    for agent_id, caps, conn, seen, job in rows:
        assert agent_id is not None  # a primary key
        out.append(SchedulableAgent(agent_id, _capabilities(caps), conn, seen, job))
    return out


class QueuedJob(NamedTuple):
    id: int
    agents_group: str
    executor: str
    system: str
    reason: str | None


def agent_can_run(job: JobNeeds, agent: AgentFacts, groups: Sequence[str]) -> str | None:
    """None when the agent can run the job, else why not."""
    if job.agents_group not in groups:
        return f"not in group '{job.agents_group}'"
    executors = agent.capabilities.get("executors") or {}
    if job.executor not in executors:
        return f"has no '{job.executor}' executor"
    if job.executor == "direct" and job.system not in ANY_SYSTEM:
        systems = agent.capabilities.get("systems") or []
        if job.system not in systems:
            return f"system is not '{job.system}'"
    return None


def no_agent_reason(job: JobNeeds) -> str:
    what = f"executor '{job.executor}'"
    if job.system not in ANY_SYSTEM:
        what += f" and system '{job.system}'"
    return f"no enabled agent in group '{job.agents_group}' has {what}"


SCHEDULABLE = (col(Agent.enabled).is_(True), col(Agent.approved).is_(True))  # pending agents get no job
QUEUED = (col(Job.state) == State.QUEUED, col(Job.covered).is_(False))
NEEDS = (col(Job.agents_group), col(Job.executor), col(Job.system))


async def queued_jobs(session: AsyncSession) -> list[QueuedJob]:
    """The oldest queued jobs (first come, first served), as much of them as the scheduler reads."""
    rows = await session.execute(
        sa.select(col(Job.id), *NEEDS, col(Job.reason)).where(*QUEUED).order_by(col(Job.id)).limit(BATCH)
    )
    return [QueuedJob._make(row) for row in rows]


async def assign_next(session: AsyncSession, agent_id: int, effects: Effects) -> bool:
    """Give the agent that just finished a job the oldest queued job it can run, at once.

    The scheduler would do the same a moment later; this saves a pass on the hot path.  Queued
    jobs have few distinct needs: the oldest job of each kind is enough to choose from."""
    oldest = (
        await session.execute(sa.select(sa.func.min(col(Job.id)), *NEEDS, sa.null()).where(*QUEUED).group_by(*NEEDS))
    ).all()
    if not oldest:
        return False
    agent = await session.get(Agent, agent_id)
    if agent is None or not (agent.enabled and agent.approved) or agent.current_job_id or not agent.connected_to:
        return False
    needed = {row[1] for row in oldest} - {ALL_GROUP}  # every agent is in the group 'all'
    groups = (await agent_groups(session, [agent_id]))[agent_id] if needed else [ALL_GROUP]
    runnable = [job for job in map(QueuedJob._make, oldest) if agent_can_run(job, agent, groups) is None]
    if not runnable:
        return False
    return await orchestration.assign_job(session, min(j.id for j in runnable), agent_id, effects)


@dataclass
class Plan:
    assignments: list[tuple[int, int]]  # (job id, agent id), in the jobs' order
    reasons: dict[int, str | None]  # job id -> why no agent took it (None: nothing to say)


def plan_assignments(
    jobs: Sequence[QueuedJob],
    agents: Sequence[AgentFacts],
    groups: Mapping[int, Sequence[str]],
    online_since: datetime,
) -> Plan:
    """Which idle agent takes which queued job, and why the others wait: no database, no clock.

    ``agents`` are the schedulable ones, ``groups`` their groups, and an agent is online when it
    is connected and was last seen at or after ``online_since``. Jobs are taken in the given
    (FIFO) order, each by the first idle capable agent in the agents' order."""
    online = {a.id for a in agents if a.connected_to and a.last_seen and a.last_seen >= online_since}
    idle = [a for a in agents if a.id in online and a.current_job_id is None]
    plan = Plan([], {})
    # jobs have few distinct needs: the ids of the agents capable of each, once per pass
    capable_of: dict[tuple[str, str, str], set[int | None]] = {}
    for job in jobs:
        need = (job.agents_group, job.executor, job.system)
        capable = capable_of.get(need)
        if capable is None:
            capable = {a.id for a in agents if agent_can_run(job, a, groups[a.id or 0]) is None}
            capable_of[need] = capable
        plan.reasons[job.id] = None if capable else no_agent_reason(job)
        pick = next((i for i, a in enumerate(idle) if a.id in capable), None)
        if pick is not None:
            plan.assignments.append((job.id, idle.pop(pick).id))  # type: ignore[arg-type]
        elif capable and not (capable & online):
            plan.reasons[job.id] = f"waiting: every capable agent is offline ({len(capable)})"
    return plan


class Scheduler(Service):
    name = "scheduler"

    async def run_forever(self) -> None:
        async with self.bus.listening(SCHED_CHANNEL) as sub:
            while True:
                try:
                    await self.schedule()
                except Exception:
                    log.exception("scheduler pass failed")
                try:
                    await asyncio.wait_for(sub.get(), self.settings.scheduler_sweep_interval)
                except TimeoutError:
                    continue
                while not sub.queue.empty():  # coalesce a burst of wake-ups into one pass
                    sub.queue.get_nowait()

    async def schedule(self) -> int:
        """One pass; returns the number of jobs assigned."""
        started = time.perf_counter()
        assigned = 0
        try:
            while True:
                n, more = await self._pass()
                assigned += n
                if not more or n == 0:
                    metrics.scheduler_pass(time.perf_counter() - started, assigned)
                    return assigned
        except Exception:
            metrics.scheduler_pass(time.perf_counter() - started, assigned, failed=True)
            raise

    async def _pass(self) -> tuple[int, bool]:
        async with self.db.session(quick=True) as session:
            jobs = await queued_jobs(session)
            if not jobs:
                return 0, False
            agents = await schedulable_agents(session)
            groups = await agent_groups(session, [a.id for a in agents], among=SCHEDULABLE)
        plan = plan_assignments(jobs, agents, groups, utcnow() - timedelta(seconds=self.settings.agent_timeout))
        await self._set_reasons(jobs, plan.reasons)
        if not plan.assignments:
            return 0, False
        assigned = 0
        effects = Effects()
        async with self.db.transaction(quick=True) as session:
            await orchestration.lock_for_assignment(session, [job_id for job_id, _ in plan.assignments])
            for job_id, agent_id in plan.assignments:
                assigned += await orchestration.assign_job(session, job_id, agent_id, effects)
        await effects.apply(self.bus, self.queue)
        return assigned, len(jobs) == BATCH and assigned > 0

    async def _set_reasons(self, jobs: Sequence[QueuedJob], reasons: dict[int, str | None]) -> None:
        changed: dict[str | None, list[int]] = {}
        for job in jobs:
            new = reasons.get(job.id)
            if new is not None and job.reason != new:
                changed.setdefault(new, []).append(job.id)
        if not changed:
            return
        effects = Effects()
        async with self.db.transaction(quick=True) as session:
            for reason, ids in changed.items():
                await session.execute(
                    sa.update(Job).where(col(Job.id).in_(ids), col(Job.state) == State.QUEUED).values(reason=reason)
                )
                for job_id in ids:
                    effects.event("job", id=job_id, state=State.QUEUED, reason=reason)
        await effects.apply(self.bus, self.queue)
