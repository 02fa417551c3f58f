"""Publish/subscribe between the parts of Kraken.

``kraken serve`` uses the in-process ``MemoryBus``; scale-out roles use
``RedisBus`` (Redis pub/sub) so every server replica, controller and worker
sees the same messages.  The channels' names are defined in ``kraken.protocol``:

- ``sched`` (``SCHED_CHANNEL``): wake the scheduler (a job was queued, an agent became free);
- ``planner`` (``PLANNER_CHANNEL``): wake the planner (triggers changed);
- ``agent:<id>`` (``agent_channel``): deliver a server frame to the replica holding that agent's websocket;
- ``log:<job_id>`` (``log_channel``): new log lines of a job (live log streams);
- ``events`` (``EVENTS_CHANNEL``): flow/run/job/agent changes for the web UI.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fnmatch
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson

from kraken.protocol import EVENTS_CHANNEL

log = logging.getLogger(__name__)

# on ``events`` after the bus lost messages (a Redis outage): clients re-read what they show
RESYNC: dict[str, Any] = {"kind": "resync"}


class Subscription:
    def __init__(self, bus: Bus, patterns: tuple[str, ...]) -> None:
        self.bus = bus
        self.patterns = patterns
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=10000)
        self.dropped = 0

    def deliver(self, channel: str, message: Any) -> None:
        try:
            self.queue.put_nowait((channel, message))
        except asyncio.QueueFull:
            self.dropped += 1  # a reader too slow to keep up catches up from the database

    async def get(self) -> tuple[str, Any]:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[tuple[str, Any]]:
        while True:
            yield await self.queue.get()

    async def close(self) -> None:
        await self.bus._unsubscribe(self)


class Bus(abc.ABC):
    @abc.abstractmethod
    async def publish(self, channel: str, message: Any) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, *patterns: str) -> Subscription:
        """Patterns may use ``*`` (e.g. ``agent:*``)."""

    @abc.abstractmethod
    async def _unsubscribe(self, sub: Subscription) -> None: ...

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def listening(self, *patterns: str) -> AsyncIterator[Subscription]:
        sub = await self.subscribe(*patterns)
        try:
            yield sub
        finally:
            await sub.close()


class MemoryBus(Bus):
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    async def publish(self, channel: str, message: Any) -> None:
        for sub in self._subs:
            if any(fnmatch.fnmatchcase(channel, p) for p in sub.patterns):
                sub.deliver(channel, message)

    async def subscribe(self, *patterns: str) -> Subscription:
        sub = Subscription(self, patterns)
        self._subs.append(sub)
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)


class RedisBus(Bus):
    """One Redis pub/sub connection per process, fanned out to local subscriptions.

    It survives Redis outages: ``start()`` does not wait for Redis, the reader reconnects with
    capped backoff, and once it is subscribed again after an outage it delivers a ``resync``
    event (``RESYNC``) to the local subscribers of ``events``: what was published meanwhile is
    lost, so the clients re-read.  ``publish`` raises while Redis is away; the callers' effects
    log it and the sweeps recover what matters (``kraken/control/effects.py``)."""

    PREFIX = "kraken:"
    BACKOFF_MIN = 0.2
    BACKOFF_MAX = 5.0

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url)  # type: ignore[no-untyped-call]
        self._subs: list[Subscription] = []
        self._reader: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read())
        try:  # normally at once; a role started during an outage runs on and catches up
            await asyncio.wait_for(self.connected.wait(), 5.0)
        except TimeoutError:
            log.warning("bus: Redis does not answer yet; starting anyway, it subscribes once Redis is back")

    async def _read(self) -> None:
        backoff = self.BACKOFF_MIN
        lost = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(self.PREFIX + "*")
                self.connected.set()
                backoff = self.BACKOFF_MIN
                if lost:
                    log.warning("Redis is back: bus subscribed again; live clients re-read")
                    self._deliver(EVENTS_CHANNEL, dict(RESYNC))
                    lost = False
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if msg is not None and msg.get("type") == "pmessage":
                        self._deliver(msg["channel"].decode()[len(self.PREFIX) :], orjson.loads(msg["data"]))
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:  # connection trouble: subscribe again once Redis answers
                self.connected.clear()
                if not lost:
                    log.warning("bus: Redis unavailable (%s); reconnecting", exc)
                lost = True
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, self.BACKOFF_MAX)

    def _deliver(self, channel: str, payload: Any) -> None:
        for sub in self._subs:
            if any(fnmatch.fnmatchcase(channel, p) for p in sub.patterns):
                sub.deliver(channel, payload)

    async def publish(self, channel: str, message: Any) -> None:
        await self._redis.publish(self.PREFIX + channel, orjson.dumps(message))

    async def subscribe(self, *patterns: str) -> Subscription:
        sub = Subscription(self, patterns)
        self._subs.append(sub)
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._redis.aclose()
