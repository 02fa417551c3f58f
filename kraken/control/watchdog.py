"""Watchdog: no job, run or flow waits forever.

- a running job whose agent has sent no heartbeat for ``agent_timeout`` ends ``error`` ("agent lost");
- a running job past its timeout (plus a grace for the agent to report it) ends ``timeout``;
- agents without heartbeat are marked offline.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.service import PeriodicService
from kraken.models import Agent, Job
from kraken.models.base import utcnow
from kraken.models.enums import Result, State
from kraken.protocol import Cancel

log = logging.getLogger(__name__)

TIMEOUT_GRACE = 30.0  # the agent enforces the job timeout itself; this catches silent agents


class Watchdog(PeriodicService):
    name = "watchdog"

    @property
    def interval(self) -> float:  # type: ignore[override]
        return self.settings.watchdog_interval

    async def tick(self) -> None:
        now = utcnow()
        lost_cutoff = now - timedelta(seconds=self.settings.agent_timeout)
        async with self.db.session(quick=True) as session:
            lost = (
                await session.execute(
                    select(Job.id, Agent.name, Agent.last_seen)
                    .join(Agent, col(Agent.id) == Job.agent_id)
                    .where(col(Job.state) == State.RUNNING, col(Agent.last_seen) < lost_cutoff)
                )
            ).all()
            running = (
                await session.execute(
                    select(Job.id, Job.assigned, Job.started, Job.timeout).where(col(Job.state) == State.RUNNING)
                )
            ).all()
        lost_ids = {job_id for job_id, _, _ in lost}
        for job_id, agent_name, last_seen in lost:
            ago = (now - last_seen).total_seconds() if last_seen else 0
            await self._end(job_id, Result.ERROR, f"agent lost: no heartbeat from '{agent_name}' for {ago:.0f} s")
        for job_id, assigned, started, timeout in running:
            begin = started or assigned
            if job_id in lost_ids or begin is None:
                continue
            if (now - begin).total_seconds() > timeout + TIMEOUT_GRACE:
                await self._end(job_id, Result.TIMEOUT, f"job timed out after {timeout:g} s (agent did not report)")
        async with self.db.transaction(quick=True) as session:
            await session.execute(
                sa.update(Agent)
                .where(col(Agent.connected_to).is_not(None), col(Agent.last_seen) < lost_cutoff)
                .values(connected_to=None)
            )

    async def _end(self, job_id: int, result: Result, reason: str) -> None:
        effects = Effects()
        async with self.db.transaction(quick=True) as session:
            job = await session.get(Job, job_id)
            agent_id = job.agent_id if job else None
            done = await orchestration.complete_job(session, job_id, result, effects, reason)
            if done and agent_id is not None:
                effects.to_agent(agent_id, Cancel(job_id=job_id))
        if done:
            log.warning("job %s: %s", job_id, reason)
        await effects.apply(self.bus, self.queue)
