"""arq worker configuration for ``kraken worker`` (scale-out mode), and the loop that keeps it
running through Redis outages: arq's worker ends when Redis goes away; ``run_worker`` starts a
new one, with backoff, until it is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions
from arq.connections import RedisSettings
from arq.worker import Function, Retry, Worker, func

from kraken.core.backoff import Backoff
from kraken.core.config import Settings
from kraken.core.transient import is_transient
from kraken.observability import metrics
from kraken.workers.queue import TASK_ATTEMPTS
from kraken.workers.registry import TaskContext, TaskFn, tasks

log = logging.getLogger(__name__)

# What a Redis outage raises out of arq's worker loop (the connection refused, reset or timed out).
TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, asyncio.TimeoutError)

POLL_DELAY = 0.02  # seconds between arq's queue polls: the job-completion path goes through here


def _wrap(name: str, fn: TaskFn) -> Function:
    async def run(arq_ctx: dict[str, Any], **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await fn(arq_ctx["kraken"], **kwargs)
            metrics.task_done(name, "ok", time.perf_counter() - started)
        except Exception as exc:
            tries = int(arq_ctx.get("job_try") or 1)
            last = not is_transient(exc) or tries >= TASK_ATTEMPTS  # arq runs it no more
            metrics.task_done(name, "failed" if last else "retried", time.perf_counter() - started, exc)
            if not is_transient(exc):
                raise
            log.warning("task %s(%s): %r; retrying (try %d of %d)", name, kwargs, exc, tries + 1, TASK_ATTEMPTS)
            raise Retry(defer=min(5.0, 0.2 * 2**tries)) from exc

    run.__name__ = name
    return func(run, name=name, keep_result=0, max_tries=TASK_ATTEMPTS)  # type: ignore[arg-type]


def worker_settings(settings: Settings, context: TaskContext, on_connected: Callable[[], None]) -> dict[str, Any]:
    """Keyword arguments for one ``arq.Worker`` serving ``context``'s database, bus and queue."""

    async def startup(arq_ctx: dict[str, Any]) -> None:
        arq_ctx["kraken"] = context
        on_connected()

    assert settings.redis_url, "kraken worker needs --redis-url"
    rs = RedisSettings.from_dsn(settings.redis_url)
    rs.conn_retries = 0  # run_worker retries, with backoff, for as long as it takes
    return {
        "functions": [_wrap(n, f) for n, f in tasks().items()],
        "redis_settings": rs,
        "on_startup": startup,
        "poll_delay": POLL_DELAY,
        "max_jobs": 20,
        "keep_result": 0,
        "handle_signals": False,  # run_worker owns the signals: a stop must not look like an outage
    }


async def run_worker(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Serve background tasks until SIGINT/SIGTERM; a Redis outage only pauses it.

    ``ready`` (for tests) is set while a worker is connected and polling."""
    from kraken.observability.gauges import GAUGES
    from kraken.runtime import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    backoff = Backoff(first=0.5, cap=10.0)
    runtime = Runtime(settings, role="worker")
    GAUGES.watch_pools(runtime.db)
    started = False

    def connected() -> None:
        backoff.reset()  # the next outage starts from a short delay again
        log.info("kraken worker: connected to Redis, serving tasks")
        if ready is not None:
            ready.set()

    try:
        while not stop.is_set():
            worker: Worker | None = None
            try:
                if not started:
                    await runtime.start()
                    started = True
                worker = Worker(**worker_settings(settings, runtime.task_context, connected))
                if not await _poll_until_stopped(worker, stop):
                    return  # arq ended by itself (burst mode): nothing to restart
            except TRANSIENT as exc:
                if ready is not None:
                    ready.clear()
                if worker is not None and worker._pool is not None:
                    with contextlib.suppress(Exception):
                        await worker.pool.close(close_connection_pool=True)
                delay = backoff.next()
                log.warning("kraken worker: Redis unavailable (%r); reconnecting in %.1f s", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        if started:
            await runtime.stop()


async def _poll_until_stopped(worker: Worker, stop: asyncio.Event) -> bool:
    """Run the worker until ``stop`` (then close it gracefully: True) or until it ends by itself
    (False); what it raises (an outage) propagates."""
    polling = asyncio.create_task(worker.async_run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if polling.done():
        polling.result()  # raises the outage
        return False
    with contextlib.suppress(asyncio.CancelledError, *TRANSIENT):
        await worker.close()  # cancels running tasks (arq runs them again: max_tries), releases Redis
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError, *TRANSIENT):
        await polling
    return True
