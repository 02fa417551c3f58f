"""arq worker configuration for ``kraken worker`` (scale-out mode), and the loop that keeps it
running through Redis outages: arq's worker ends when Redis goes away; ``run_worker`` starts a
new one, with backoff, until it is told to stop.

Leases.  arq marks a task it starts with an in-progress key (``arq:in-progress:<job id>``) that
keeps other workers off it, for the longest task timeout + 10 s (310 s): a worker killed while it
ran a task left it untouched that long.  Here the key lives ``task_lease`` seconds (15 s by
default) and ``keep_leases`` renews it every fifth of that while the task runs, so a task whose
worker died (``kill -9``, a lost machine) is run by another worker within ``task_lease`` s, and a
task that runs long keeps its worker.  Renewal runs beside arq's poll loop, not in it: that loop
waits for a free slot when ``max_jobs`` tasks run."""

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
from arq.constants import in_progress_key_prefix
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
RENEWALS_PER_LEASE = 5  # a running task's lease is renewed every task_lease / 5 seconds


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


def leased_worker(settings: Settings, context: TaskContext, on_connected: Callable[[], None]) -> Worker:
    """An arq worker whose in-progress keys live ``settings.task_lease`` seconds (``keep_leases``
    renews them while the task runs) instead of arq's longest task timeout + 10 s."""
    worker = Worker(**worker_settings(settings, context, on_connected))
    worker.in_progress_timeout_s = settings.task_lease  # what start_jobs gives the in-progress key
    return worker


async def keep_leases(worker: Worker, lease: float) -> None:
    """Renew, every ``lease / RENEWALS_PER_LEASE`` s until cancelled, the in-progress key of every
    task ``worker`` runs.  A key found gone while its task still runs means this worker was stalled
    past its lease (another worker may have started the task): that is logged and the task goes on
    (cancelling it would make arq delete the new holder's key; the tasks are idempotent: result
    analysis takes the branch's lock and moves ``staged`` to ``analysed`` in one transaction, so a
    second run finds nothing to do).  A Redis error is left to arq's poll loop, which ends on it."""
    lost: set[str] = set()
    while True:
        await asyncio.sleep(lease / RENEWALS_PER_LEASE)
        running = list(worker.job_tasks)  # the task functions under way (arq removes them before its keys)
        if not running or worker._pool is None:
            continue
        try:
            async with worker.pool.pipeline(transaction=False) as pipe:
                for job_id in running:
                    pipe.pexpire(in_progress_key_prefix + job_id, int(lease * 1000))
                renewed = await pipe.execute()
        except TRANSIENT as exc:
            log.warning("kraken worker: task leases not renewed (%r)", exc)
            continue
        for job_id, ok in zip(running, renewed, strict=True):
            if not ok and job_id in worker.job_tasks and job_id not in lost:
                lost.add(job_id)
                log.warning("kraken worker: task %s's lease lapsed while it ran; another worker may run it", job_id)
        lost &= set(worker.job_tasks)


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
                worker = leased_worker(settings, runtime.task_context, connected)
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
    leasing = asyncio.create_task(keep_leases(worker, worker.in_progress_timeout_s))
    try:
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        leasing.cancel()
    if polling.done():
        polling.result()  # raises the outage
        return False
    with contextlib.suppress(asyncio.CancelledError, *TRANSIENT):
        await worker.close()  # cancels running tasks (arq runs them again: max_tries), releases Redis
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError, *TRANSIENT):
        await polling
    return True
