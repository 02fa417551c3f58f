"""``GET /api/diagnostics`` (administrators): background tasks that failed lately with their
error, queue depths per agents group, the scheduler's last passes, the agents' last contact and
the last errors of each service.

Queues and agents come from the database.  Task failures, scheduler passes and errors are kept
in memory by each process (``journal.py``): ``kraken serve`` is one process and shows them all;
in scale-out each controller, worker and server replica publishes its own through Redis and the
page lists every process heard from within the last 30 seconds."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from sqlmodel import col

from kraken.api.authz import AdminOnly
from kraken.api.deps import StateDep, UserDep
from kraken.control.agents import online_clause
from kraken.models import Agent
from kraken.models.base import utcnow
from kraken.observability import gauges, publisher
from kraken.observability.journal import JOURNAL
from kraken.observability.metrics import _age

router = APIRouter(prefix="/api", tags=["diagnostics"])


class QueueOut(BaseModel):
    agents_group: str
    queued: int
    oldest_wait_seconds: float


class AgentContactOut(BaseModel):
    id: int
    name: str
    enabled: bool
    online: bool
    current_job_id: int | None
    connected_to: str | None
    last_seen: datetime | None
    seconds_since_contact: float | None


class TaskFailureOut(BaseModel):
    at: str
    task: str
    seconds: float
    error: str | None


class SchedulerPassOut(BaseModel):
    at: str
    seconds: float
    assigned: int
    failed: bool


class LoggedErrorOut(BaseModel):
    at: str
    level: str
    logger: str
    message: str


class ProcessOut(BaseModel):
    service: str
    host: str
    pid: int
    started: str
    at: str
    tasks: dict[str, dict[str, int]]
    task_failures: list[TaskFailureOut]
    scheduler_passes: list[SchedulerPassOut]
    errors: list[LoggedErrorOut]


class DiagnosticsOut(BaseModel):
    jobs: dict[str, int]
    queues: list[QueueOut]
    agents: list[AgentContactOut]
    processes: list[ProcessOut]
    shared: bool  # processes include other processes' journals (scale-out, through Redis)


@router.get("/diagnostics", response_model=DiagnosticsOut, dependencies=[AdminOnly])
async def diagnostics(state: StateDep, user: UserDep) -> DiagnosticsOut:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an administrator may read the diagnostics")
    runtime = state.runtime
    timeout = runtime.settings.agent_timeout
    reading = await gauges.read(runtime.db, timeout)
    now = utcnow()
    async with runtime.db.session() as session:
        rows = await session.execute(
            sa.select(
                col(Agent.id),
                col(Agent.name),
                col(Agent.enabled),
                sa.case((online_clause(timeout), True), else_=False),
                col(Agent.current_job_id),
                col(Agent.connected_to),
                col(Agent.last_seen),
            ).order_by(col(Agent.name))
        )
        agents = [
            AgentContactOut(
                id=aid,
                name=name,
                enabled=enabled,
                online=bool(online),
                current_job_id=job,
                connected_to=to,
                last_seen=seen,
                seconds_since_contact=_age(seen, now),
            )
            for aid, name, enabled, online, job, to, seen in rows
        ]
    processes = [JOURNAL.snapshot()]
    shared = publisher.current()
    if shared is not None:
        processes += await shared.others()
    processes.sort(key=lambda p: (p["service"], p["host"], p["pid"]))
    return DiagnosticsOut(
        jobs={str(k): v for k, v in reading.jobs.items()},
        queues=[
            QueueOut(agents_group=g, queued=n, oldest_wait_seconds=reading.oldest[g])
            for g, n in sorted(reading.queue.items())
        ],
        agents=agents,
        processes=[ProcessOut(**p) for p in processes],
        shared=shared is not None,
    )
