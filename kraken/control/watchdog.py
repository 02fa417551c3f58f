"""Watchdog: no job, run or flow waits forever.

- a running job whose agent has sent no heartbeat for ``agent_timeout`` ends ``error`` ("agent lost");
  not within ``agent_timeout`` of the watchdog's own start (a restarted server heard nobody meanwhile);
- a running job past its timeout (plus a grace for the agent to report it) ends ``timeout``;
- a run past its time limit (its stage's ``timeout``) ends its open jobs ``timeout``;
- a run whose stage code was never evaluated (its ``start_run`` task was lost) is started;
- a run whose jobs have all ended ``UNSETTLED_AFTER`` seconds ago but which is still running (its
  settling after the last job's commit was lost, ``orchestration.settle_runs``) is finished;
- an assignment its agent has not accepted (no ``job_accepted``, nor any other message from it)
  ``assignment_resend_after`` seconds after it was committed is sent again (its first sending
  may have been lost: Redis away between the commit and the publish), every as many seconds; the
  agent ignores an assignment of a job it already took;
- one still not accepted ``assignment_requeue_after`` seconds after it was committed is taken
  back and the job queued again (the agent went away, or is stuck, before taking it): the
  scheduler assigns it anew;
- agents without heartbeat are marked offline.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.service import PeriodicService
from kraken.models import Agent, Job, Run
from kraken.models.base import utcnow
from kraken.models.enums import Result, State
from kraken.protocol import Assign
from kraken.protocol import JobSpec as AgentJob

log = logging.getLogger(__name__)

TIMEOUT_GRACE = 30.0  # the agent enforces the job timeout itself; this catches silent agents
UNSETTLED_AFTER = 10.0  # seconds after its last job ended that a run still open is finished here
LOST_START = 60.0  # seconds after which a run still waiting for its evaluation is started here


class Watchdog(PeriodicService):
    name = "watchdog"

    @property
    def interval(self) -> float:  # type: ignore[override]
        return self.settings.watchdog_interval

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resent: dict[int, float] = {}  # job id -> when its assignment was last sent again
        # No agent is judged lost before this watchdog could have heard it for agent_timeout: after
        # a restart of ``kraken serve`` (or of every replica) the agents' last heartbeats are as old
        # as the downtime, and they need a moment to reconnect.
        self._judge_from = time.monotonic() + self.settings.agent_timeout

    async def tick(self) -> None:
        now = utcnow()
        await self._resend_assignments(now)
        lost_cutoff = now - timedelta(seconds=self.settings.agent_timeout)
        judging = time.monotonic() >= self._judge_from
        async with self.db.session(quick=True) as session:
            lost = (
                (
                    await session.execute(
                        select(Job.id, Agent.name, Agent.last_seen)
                        .join(Agent, col(Agent.id) == Job.agent_id)
                        .where(col(Job.state) == State.RUNNING, col(Agent.last_seen) < lost_cutoff)
                    )
                ).all()
                if judging
                else []
            )
            running = (
                await session.execute(
                    select(Job.id, Job.assigned, Job.started, Job.timeout).where(col(Job.state) == State.RUNNING)
                )
            ).all()
            late_runs = (
                (
                    await session.execute(
                        select(Run.id).where(col(Run.state) != State.COMPLETED, col(Run.deadline) < now)
                    )
                )
                .scalars()
                .all()
            )
            unstarted = (
                (
                    await session.execute(
                        select(Run.id).where(
                            col(Run.state) == State.QUEUED,
                            col(Run.evaluated).is_(False),
                            col(Run.created) < now - timedelta(seconds=LOST_START),
                        )
                    )
                )
                .scalars()
                .all()
            )
            unsettled = await orchestration.unsettled_runs(session, now - timedelta(seconds=UNSETTLED_AFTER))
        if unsettled:  # their last job ended, and the settling after that commit was lost
            log.warning("runs %s: every job ended but the run did not; finishing them now", unsettled[:10])
            effects = Effects()
            await orchestration.settle_runs(self.db, unsettled, effects)
            await effects.apply(self.bus, self.queue)
        for run_id in late_runs:
            assert run_id is not None
            effects = Effects()
            async with self.db.transaction(quick=True) as session:
                await orchestration.time_out_run(session, run_id, effects)
            await effects.apply(self.bus, self.queue)
        for run_id in unstarted:
            assert run_id is not None
            log.warning("run %s: its stage code was not evaluated within %g s; evaluating it now", run_id, LOST_START)
            effects = Effects()
            await orchestration.start_run(self.db, run_id, effects)
            await effects.apply(self.bus, self.queue)
        lost_ids = {job_id for job_id, _, _ in lost}
        for job_id, agent_name, last_seen in lost:
            ago = (now - last_seen).total_seconds() if last_seen else 0
            lost_reason = f"agent lost: no heartbeat from '{agent_name}' for {ago:.0f} s"
            if await self._requeue(job_id, f"{lost_reason} before it accepted the job; queued again"):
                continue  # it never started there: another agent runs it
            await self._end(job_id, Result.ERROR, lost_reason)
        for job_id, assigned, started, timeout in running:
            begin = started or assigned
            if job_id in lost_ids or begin is None:
                continue
            if (now - begin).total_seconds() > timeout + TIMEOUT_GRACE:
                await self._end(job_id, Result.TIMEOUT, f"job timed out after {timeout:g} s (agent did not report)")
        if not judging:
            return
        async with self.db.transaction(quick=True) as session:
            await session.execute(
                sa.update(Agent)
                .where(col(Agent.connected_to).is_not(None), col(Agent.last_seen) < lost_cutoff)
                .values(connected_to=None)
            )

    async def _resend_assignments(self, now: datetime) -> None:
        """Send again the assignments that their agent has not accepted yet, so that a committed
        assignment reaches its agent even when its first publication was lost; take back the ones
        still not accepted after ``assignment_requeue_after``."""
        resend_after = self.settings.assignment_resend_after
        requeue_cutoff = now - timedelta(seconds=self.settings.assignment_requeue_after)
        effects = Effects()
        async with self.db.session(quick=True) as session:
            jobs = (
                (
                    await session.execute(
                        select(Job).where(
                            col(Job.state) == State.RUNNING,
                            col(Job.started).is_(None),
                            col(Job.last_seq) == 0,
                            col(Job.agent_id).is_not(None),
                            col(Job.assigned) < now - timedelta(seconds=resend_after),
                        )
                    )
                )
                .scalars()
                .all()
            )
            clock = time.monotonic()
            waiting: dict[int, float] = {}
            stale: list[tuple[int, str | None]] = []
            for job in jobs:
                assert job.id is not None and job.agent_id is not None
                if job.assigned is not None and job.assigned < requeue_cutoff:
                    stale.append((job.id, job.agent_name))
                    continue
                last = self._resent.get(job.id)
                if last is not None and clock - last < resend_after:
                    waiting[job.id] = last
                    continue
                log.info(
                    "job %s: not accepted by agent %s since it was assigned; sending the assignment again",
                    job.id,
                    job.agent_name,
                )
                payload = await orchestration.job_payload(session, job)
                effects.to_agent(job.agent_id, Assign(job=AgentJob.model_validate(payload)))
                waiting[job.id] = clock
        self._resent = waiting
        await effects.apply(self.bus, self.queue)
        for job_id, agent_name in stale:
            await self._requeue(
                job_id,
                f"agent {agent_name} did not accept the job within "
                f"{self.settings.assignment_requeue_after:g} s; queued again",
            )

    async def _requeue(self, job_id: int, reason: str) -> bool:
        """Queue the job again if its agent has not accepted it (False: it did, or the job ended)."""
        effects = Effects()
        async with self.db.transaction(quick=True) as session:
            requeued = await orchestration.requeue_unaccepted(session, job_id, effects, reason)
            if requeued:
                # the agent hears ``cancel`` before any new assignment of the job (to it again,
                # perhaps) can be committed and sent: the job's row is locked until this commit
                await effects.send_to_agents(self.bus)
        if requeued:
            log.warning("job %s: %s", job_id, reason)
        await effects.apply(self.bus, self.queue)
        return requeued

    async def _end(self, job_id: int, result: Result, reason: str) -> None:
        effects = Effects()
        async with self.db.transaction(quick=True) as session:
            done = await orchestration.end_job(session, job_id, result, effects, reason)
        if done:
            log.warning("job %s: %s", job_id, reason)
        await effects.apply(self.bus, self.queue)
