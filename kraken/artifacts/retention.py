"""Retention: old flows lose their artifacts and logs (the flows, runs, jobs and results stay);
expired cache entries go; blobs nothing refers to any more are deleted from the store.

Per branch (``branch_retention``, else ``KRAKEN_RETENTION_FLOWS`` / ``KRAKEN_RETENTION_DAYS``):
a completed flow is purged when it is neither among the newest ``keep_flows`` flows nor younger
than ``keep_days`` days (an unset rule keeps nothing by itself; no rule at all purges nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from kraken.artifacts.service import collect_garbage, expire_cache
from kraken.artifacts.store import blob_store
from kraken.control.service import PeriodicService
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.logs.active import log_store
from kraken.models import Branch, Flow, Job, Run
from kraken.models.artifacts import Artifact, BranchRetention
from kraken.models.base import utcnow
from kraken.models.enums import State
from kraken.models.triggers import WebhookDelivery

log = logging.getLogger(__name__)

DELIVERY_DAYS = 30  # webhook delivery ids kept to recognise redeliveries
MAX_KEEP_FLOWS = 1_000_000  # bounds of a branch's rules (the API refuses more with a 422)
MAX_KEEP_DAYS = 36_500.0


@dataclass
class RetentionReport:
    flows: int = 0
    artifacts: int = 0
    log_chunks: int = 0
    cache_entries: int = 0
    blobs: int = 0
    failed_branches: list[int] = field(default_factory=list)


async def flows_to_purge(db: Database, branch_id: int, keep_flows: int | None, keep_days: float | None) -> list[int]:
    if keep_flows is None and keep_days is None:
        return []
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Flow.id, Flow.state, Flow.created)
                .where(Flow.branch_id == branch_id)
                .order_by(col(Flow.id).desc())
            )
        ).all()
    cutoff = utcnow() - timedelta(days=keep_days) if keep_days is not None else None
    purge = []
    for i, (flow_id, state, created) in enumerate(rows):
        if state != State.COMPLETED:
            continue
        kept_by_count = keep_flows is not None and i < keep_flows
        kept_by_age = cutoff is not None and created >= cutoff
        if not kept_by_count and not kept_by_age:
            purge.append(flow_id)
    return purge


async def purge_flows(db: Database, flow_ids: list[int], report: RetentionReport) -> None:
    for start in range(0, len(flow_ids), 100):
        ids = flow_ids[start : start + 100]
        jobs = sa.select(col(Job.id)).join(Run, col(Run.id) == Job.run_id).where(col(Run.flow_id).in_(ids))
        async with db.transaction() as session:
            arts = await session.execute(sa.delete(Artifact).where(col(Artifact.flow_id).in_(ids)))
            job_ids = [j for j in (await session.execute(jobs)).scalars() if j is not None]
            logs = await log_store().delete_jobs(session, job_ids) if job_ids else 0
        report.artifacts += int(arts.rowcount)  # type: ignore[attr-defined]
        report.log_chunks += logs
        if arts.rowcount or logs:  # type: ignore[attr-defined]
            report.flows += len(ids)


async def apply_retention(db: Database, settings: Settings, blob_grace: timedelta | None = None) -> RetentionReport:
    report = RetentionReport()
    async with db.session() as session:
        branches = (await session.execute(select(Branch.id))).scalars().all()
        rules = {r.branch_id: r for r in (await session.execute(select(BranchRetention))).scalars()}
    for branch_id in branches:
        assert branch_id is not None
        rule = rules.get(branch_id)
        if rule is not None and (rule.keep_flows is not None or rule.keep_days is not None):
            keep_flows, keep_days = rule.keep_flows, rule.keep_days
        else:
            keep_flows, keep_days = settings.retention_flows, settings.retention_days
        try:  # one branch's failure (a bad rule, a database error) must not stop the others
            purge = await flows_to_purge(db, branch_id, keep_flows, keep_days)
            if purge:
                await purge_flows(db, purge, report)
        except Exception:
            log.exception("retention of branch %s failed (keep %r flows, %r days)", branch_id, keep_flows, keep_days)
            report.failed_branches.append(branch_id)
    async with db.transaction() as session:
        report.cache_entries = await expire_cache(session, settings.cache_ttl_days)
        await session.execute(
            sa.delete(WebhookDelivery).where(col(WebhookDelivery.created) < utcnow() - timedelta(days=DELIVERY_DAYS))
        )
    store = blob_store(settings)
    report.blobs = (
        await collect_garbage(db, store, blob_grace) if blob_grace is not None else await collect_garbage(db, store)
    )
    if report.artifacts or report.log_chunks or report.cache_entries or report.blobs or report.failed_branches:
        log.info("retention: %s", report)
    return report


class Janitor(PeriodicService):
    """Applies retention every ``retention_interval`` seconds (idempotent: several may run)."""

    name = "janitor"

    @property
    def interval(self) -> float:  # type: ignore[override]
        return self.settings.retention_interval

    async def tick(self) -> None:
        await apply_retention(self.db, self.settings)
