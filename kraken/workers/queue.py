"""Where background tasks go: in-process (``kraken serve``) or arq on Redis (scale-out)."""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import Any

from kraken.core.backoff import Backoff
from kraken.core.transient import is_transient
from kraken.observability import metrics
from kraken.workers.registry import TaskContext, tasks

TASK_ATTEMPTS = 4  # a task that meets a transient error (database or Redis gone a moment) runs again

log = logging.getLogger(__name__)


class TaskQueue(abc.ABC):
    @abc.abstractmethod
    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> None:
        """Queue task ``name``; ``key`` dedupes: a second enqueue with the same key while the
        first is still waiting is dropped."""

    async def close(self) -> None:
        return None


class InProcessQueue(TaskQueue):
    """Runs tasks as asyncio tasks of this process (the embedded ``kraken serve``)."""

    def __init__(self) -> None:
        self.ctx: TaskContext | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._waiting: set[str] = set()

    def bind(self, ctx: TaskContext) -> None:
        self.ctx = ctx

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> None:
        fn = tasks()[name]
        if key is not None:
            if key in self._waiting:
                return
            self._waiting.add(key)
        assert self.ctx is not None, "InProcessQueue.bind() was not called"
        ctx = self.ctx

        async def run() -> None:
            if key is not None:
                self._waiting.discard(key)
            backoff = Backoff(first=0.2, cap=5.0)
            for attempt in range(1, TASK_ATTEMPTS + 1):
                started = time.perf_counter()
                try:
                    await fn(ctx, **kwargs)
                    metrics.task_done(name, "ok", time.perf_counter() - started)
                    return
                except Exception as exc:
                    if attempt < TASK_ATTEMPTS and is_transient(exc):
                        metrics.task_done(name, "retried", time.perf_counter() - started)
                        delay = backoff.next()
                        log.warning("task %s(%s): %r; attempt %d in %.1f s", name, kwargs, exc, attempt + 1, delay)
                        await asyncio.sleep(delay)
                        continue
                    metrics.task_done(name, "failed", time.perf_counter() - started, exc)
                    log.exception("task %s(%s) failed", name, kwargs)
                    return

        t = asyncio.create_task(run(), name=f"task:{name}")
        self._running.add(t)
        t.add_done_callback(self._running.discard)

    async def drain(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        for t in list(self._running):
            t.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)


class ArqQueue(TaskQueue):
    """Sends tasks to ``kraken worker`` processes through arq (Redis)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._pool: Any = None

    async def start(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self._pool = await create_pool(RedisSettings.from_dsn(self.redis_url))

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> None:
        if self._pool is None:
            await self.start()
        # arq's _job_id dedupes while the job is queued or its result is kept; results are not
        # kept (keep_result=0), so the same key can run again once the first run finished.
        await self._pool.enqueue_job(name, _job_id=key, **kwargs)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
