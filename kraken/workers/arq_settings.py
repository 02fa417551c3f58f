"""arq worker configuration for ``kraken worker`` (scale-out mode)."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.worker import Function, func

from kraken.core.config import Settings
from kraken.workers.registry import TaskContext, TaskFn, tasks

POLL_DELAY = 0.02  # seconds between arq's queue polls: the job-completion path goes through here


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def _wrap(name: str, fn: TaskFn) -> Function:
    async def run(arq_ctx: dict[str, Any], **kwargs: Any) -> None:
        await fn(arq_ctx["kraken"], **kwargs)

    run.__name__ = name
    return func(run, name=name, keep_result=0, max_tries=3)  # type: ignore[arg-type]


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``."""
    from kraken.runtime import Runtime

    runtime = Runtime(settings, role="worker")

    async def startup(arq_ctx: dict[str, Any]) -> None:
        await runtime.start()
        arq_ctx["kraken"] = TaskContext(db=runtime.db, bus=runtime.bus, queue=runtime.queue, settings=settings)

    async def shutdown(arq_ctx: dict[str, Any]) -> None:
        await runtime.stop()

    assert settings.redis_url, "kraken worker needs --redis-url"
    return {
        "functions": [_wrap(n, f) for n, f in tasks().items()],
        "redis_settings": redis_settings(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "poll_delay": POLL_DELAY,
        "max_jobs": 20,
        "keep_result": 0,
        "handle_signals": True,
    }
