"""Base class of the controller's long-running loops (scheduler, watchdog, planner)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from typing import ClassVar

from kraken.core.bus import Bus
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.workers.queue import TaskQueue

log = logging.getLogger(__name__)


class Service(abc.ABC):
    name: ClassVar[str]

    def __init__(self, db: Database, bus: Bus, queue: TaskQueue, settings: Settings) -> None:
        self.db = db
        self.bus = bus
        self.queue = queue
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run_forever(self) -> None: ...

    def start(self) -> None:
        self._task = asyncio.create_task(self._guarded(), name=f"service:{self.name}")

    async def _guarded(self) -> None:
        while True:
            try:
                await self.run_forever()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service %s crashed; restarting in 1 s", self.name)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class PeriodicService(Service):
    """A service that does one ``tick`` every ``interval`` seconds."""

    interval: float = 5.0

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("%s tick failed", self.name)
            await asyncio.sleep(self.interval)

    @abc.abstractmethod
    async def tick(self) -> None: ...
