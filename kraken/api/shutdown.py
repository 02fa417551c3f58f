"""``kraken serve`` stopping (SIGTERM, Ctrl-C): its own agent's jobs end before the server does."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from kraken.api.state import ServerState
from kraken.control import orchestration
from kraken.models import Agent, Job
from kraken.models.enums import Result, State

log = logging.getLogger(__name__)

REASON = "server shutting down"


async def end_local_agent_jobs(state: ServerState, agent_name: str) -> int:
    """Cancel the jobs the local agent ``agent_name`` runs, with the reason ``REASON``: its
    process stops with the server, so they would otherwise stay running until the next start.
    The agent is sent ``cancel`` (it stops their processes); returns how many ended."""
    async with state.runtime.db.session(quick=True) as session:
        job_ids = (
            (
                await session.execute(
                    select(Job.id)
                    .join(Agent, col(Agent.id) == Job.agent_id)
                    .where(col(Agent.name) == agent_name, col(Job.state) == State.RUNNING)
                )
            )
            .scalars()
            .all()
        )
    ended = 0
    for job_id in job_ids:
        assert job_id is not None
        async with state.write() as (session, effects):
            if await orchestration.end_job(session, job_id, Result.CANCELLED, effects, REASON):
                ended += 1
                log.warning("job %s: cancelled: %s", job_id, REASON)
    return ended
