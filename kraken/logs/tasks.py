"""The background task that fills the log search index (queued by ``LogIndexService``)."""

from __future__ import annotations

import logging

from kraken.logs.active import log_store
from kraken.workers.registry import TaskContext, task

log = logging.getLogger(__name__)


@task
async def index_logs(ctx: TaskContext) -> None:
    """Index what was stored since the last run; idempotent (the mark moves in the same
    transaction as the rows it covers)."""
    lines = await log_store().index_pending(ctx.db)
    if lines:
        log.debug("log search: indexed %d lines", lines)
