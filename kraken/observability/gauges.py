"""Gauges read from the database at scrape time (jobs by state, queues, agents) and from this
process's connection pools.  A scrape runs two grouped queries at most once per ``TTL`` seconds;
the values are the database's, so every server replica reports the same ones."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import col

from kraken.control.agents import online_clause
from kraken.core.db import Database
from kraken.models import Agent, Job
from kraken.models.base import utcnow
from kraken.models.enums import State
from kraken.observability.metrics import REGISTRY, _age

TTL = 2.0  # seconds a database reading serves scrapes


@dataclass
class Reading:
    jobs: dict[str, int] = field(default_factory=dict)  # state -> count (queued, running)
    queue: dict[str, int] = field(default_factory=dict)  # agents group -> queued jobs
    oldest: dict[str, float] = field(default_factory=dict)  # agents group -> oldest queued job's wait
    agents: dict[str, int] = field(default_factory=dict)  # enabled, online, busy


async def read(db: Database, agent_timeout: float) -> Reading:
    """Two grouped queries: open jobs by state and agents group, agents by status."""
    r = Reading(jobs={State.QUEUED: 0, State.RUNNING: 0}, agents={"enabled": 0, "online": 0, "busy": 0})
    now = utcnow()
    online = online_clause(agent_timeout)
    async with db.session() as session:
        jobs = await session.execute(
            sa.select(col(Job.state), col(Job.agents_group), sa.func.count(), sa.func.min(col(Job.created)))
            .where(col(Job.state).in_([State.QUEUED, State.RUNNING]), col(Job.covered).is_(False))
            .group_by(col(Job.state), col(Job.agents_group))
        )
        for state, group, n, oldest in jobs:
            r.jobs[state] = r.jobs.get(state, 0) + n
            if state == State.QUEUED:
                r.queue[group] = n
                r.oldest[group] = _age(oldest, now) or 0.0
        agents = await session.execute(
            sa.select(
                col(Agent.enabled),
                sa.case((online, True), else_=False),
                col(Agent.current_job_id).is_not(None),
                sa.func.count(),
            ).group_by(sa.literal_column("1"), sa.literal_column("2"), sa.literal_column("3"))
        )
        for enabled, is_online, busy, n in agents:
            if enabled:
                r.agents["enabled"] += n
            if is_online:
                r.agents["online"] += n
            if busy:
                r.agents["busy"] += n
    return r


class DatabaseGauges(Collector):
    """Yields the last reading; ``refresh`` (awaited by the endpoint before it renders) renews it."""

    def __init__(self) -> None:
        self.reading: Reading | None = None
        self.read_at = 0.0
        self.failed = False
        self._lock = asyncio.Lock()
        self.pools: weakref.WeakValueDictionary[str, Database] = weakref.WeakValueDictionary()

    def watch_pools(self, db: Database) -> None:
        self.pools["db"] = db

    async def refresh(self, db: Database, agent_timeout: float) -> None:
        async with self._lock:
            if self.reading is not None and time.monotonic() - self.read_at < TTL:
                return
            try:
                self.reading = await read(db, agent_timeout)
                self.failed = False
            except Exception:
                self.failed = True  # the scrape still answers: kraken_database_up 0
                raise
            finally:
                self.read_at = time.monotonic()

    def collect(self) -> Iterator[Any]:
        yield from self._pools()
        if self.read_at:  # this process serves the database gauges (kraken serve / server)
            up = GaugeMetricFamily("kraken_database_up", "1 when the last scrape-time database reading succeeded")
            up.add_metric([], 0.0 if self.failed else 1.0)
            yield up
        r = self.reading
        if r is None:
            return
        jobs = GaugeMetricFamily("kraken_jobs", "Jobs queued or running (from the database)", labels=["state"])
        for state, n in sorted(r.jobs.items()):
            jobs.add_metric([str(state)], n)
        yield jobs
        queue = GaugeMetricFamily("kraken_queue_jobs", "Queued jobs by agents group", labels=["agents_group"])
        wait = GaugeMetricFamily(
            "kraken_queue_oldest_wait_seconds", "How long the oldest queued job has waited", labels=["agents_group"]
        )
        for group in sorted(r.queue):
            queue.add_metric([group], r.queue[group])
            wait.add_metric([group], r.oldest[group])
        yield queue
        yield wait
        agents = GaugeMetricFamily("kraken_agents", "Agents by status (enabled, online, busy)", labels=["status"])
        for status, n in sorted(r.agents.items()):
            agents.add_metric([status], n)
        yield agents

    def _pools(self) -> Iterator[Any]:
        fam = GaugeMetricFamily(
            "kraken_db_pool_connections",
            "This process's database connections by pool and state (in_use, idle, size, overflow)",
            labels=["pool", "state"],
        )
        for db in list(self.pools.values()):
            engines = (
                {"main": db.engine} if db.quick_engine is db.engine else {"main": db.engine, "quick": db.quick_engine}
            )
            for name, engine in engines.items():
                pool = engine.sync_engine.pool
                for state, method in (
                    ("in_use", "checkedout"),
                    ("idle", "checkedin"),
                    ("size", "size"),
                    ("overflow", "overflow"),
                ):
                    fn = getattr(pool, method, None)
                    if fn is not None:
                        fam.add_metric([name, state], float(fn()))
        yield fam


GAUGES = DatabaseGauges()
REGISTRY.register(GAUGES)
