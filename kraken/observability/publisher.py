"""Shares each process's journal (``journal.py``) through Redis in a scale-out installation, so
that the diagnostics page of any server replica shows every controller's, worker's and
replica's recent failures.  Each process rewrites its own key every ``INTERVAL`` seconds; the key
expires ``TTL`` seconds after the process stopped writing it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from kraken.observability.journal import JOURNAL, Journal

log = logging.getLogger(__name__)

PREFIX = "kraken:diagnostics:"
INTERVAL = 5.0
TTL = 30


class Publisher:
    def __init__(self, redis_url: str, journal: Journal = JOURNAL) -> None:
        import redis.asyncio as aioredis

        self.journal = journal
        self.redis = aioredis.from_url(redis_url)  # type: ignore[no-untyped-call]

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.journal.role}:{self.journal.host}:{self.journal.pid}"

    async def publish(self) -> None:
        await self.redis.set(self.key, orjson.dumps(self.journal.snapshot()), ex=TTL)

    async def run(self) -> None:
        while True:
            try:
                await self.publish()
            except Exception as exc:  # Redis away a moment: the next round writes again
                log.debug("diagnostics: publishing failed: %r", exc)
            await asyncio.sleep(INTERVAL)

    async def others(self) -> list[dict[str, Any]]:
        """The other processes' last snapshots."""
        keys = [k async for k in self.redis.scan_iter(match=PREFIX + "*", count=100) if k.decode() != self.key]
        if not keys:
            return []
        values = await self.redis.mget(keys)
        return [orjson.loads(v) for v in values if v is not None]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.delete(self.key)
        with contextlib.suppress(Exception):
            await self.redis.aclose()


_current: Publisher | None = None


def current() -> Publisher | None:
    return _current


@contextlib.asynccontextmanager
async def publishing(redis_url: str | None) -> Any:
    """Publish this process's journal while the block runs (scale-out only: ``redis_url``)."""
    global _current
    if not redis_url:
        yield None
        return
    publisher = Publisher(redis_url)
    task = asyncio.create_task(publisher.run(), name="diagnostics:publish")
    _current = publisher
    try:
        yield publisher
    finally:
        _current = None
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await publisher.close()
