"""The background task that fills the log search index (queued by ``LogIndexService``)."""

from __future__ import annotations

import logging

from kraken.logs.indexer import index_all
from kraken.workers.registry import TaskContext, task

log = logging.getLogger(__name__)


@task
async def index_logs(ctx: TaskContext) -> None:
    """Index what was stored since the last run; idempotent (the mark moves in the same
    transaction as the rows it covers)."""
    done = await index_all(ctx.db)
    if done.lines:
        log.debug("log search: indexed %d lines of %d chunks", done.lines, done.chunks)
