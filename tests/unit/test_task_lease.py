"""``kraken worker``'s task leases (kraken/workers/arq_settings.py) on a real Redis: the in-progress
key of a running task lives ``task_lease`` seconds and is renewed while the task runs; a key that
lapsed while its task ran is reported."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, cast

import pytest
from arq.connections import RedisSettings, create_pool
from arq.constants import in_progress_key_prefix

from kraken.core.config import Settings
from kraken.workers.arq_settings import keep_leases, leased_worker
from kraken.workers.registry import TaskContext


async def test_a_running_tasks_lease_is_renewed_and_a_lapsed_one_reported(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(redis_url=redis_url, task_lease=2)
    worker = leased_worker(settings, cast(TaskContext, None), lambda: None)
    assert worker.in_progress_timeout_s == 2  # what arq gives a task's key when it starts it
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    worker._pool = pool
    job_id = uuid.uuid4().hex
    key = in_progress_key_prefix + job_id
    await pool.psetex(key, 2000, b"1")  # as arq's start_jobs does
    running: asyncio.Task[Any] = asyncio.create_task(asyncio.Event().wait())
    worker.job_tasks[job_id] = running
    leasing = asyncio.create_task(keep_leases(worker, 2.0))
    try:
        await asyncio.sleep(3.0)  # longer than the lease: without renewal the key would be gone
        assert await pool.pttl(key) > 1000
        caplog.set_level(logging.WARNING, "kraken.workers.arq_settings")
        await pool.delete(key)  # as if this worker had stalled past its lease
        await asyncio.sleep(0.8)
        assert any(f"task {job_id}'s lease lapsed" in r.getMessage() for r in caplog.records), caplog.text
        assert not await pool.exists(key)  # renewal never makes a key anew
        del worker.job_tasks[job_id]
    finally:
        leasing.cancel()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leasing
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await pool.aclose()
