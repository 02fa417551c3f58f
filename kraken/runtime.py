"""What every role shares: the database, the bus and the task queue, wired for the role.

- ``serve``: SQLite (or a given database), in-process bus and task queue;
- ``server`` / ``controller`` / ``worker``: Redis bus and arq queue (``--redis-url`` required).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kraken.control.service import Service
from kraken.core.bus import Bus, MemoryBus, RedisBus
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.core.files import private_dir, private_file
from kraken.logs import active as logs_active
from kraken.models.registry import load_all_models
from kraken.secrets import store as secrets_store
from kraken.stage import from_repo, shutdown_sandbox
from kraken.stage.sandbox import start_sandbox
from kraken.workers.queue import ArqQueue, InProcessQueue, TaskQueue
from kraken.workers.registry import TaskContext

if TYPE_CHECKING:
    from kraken.logs.servicelogs import ServiceLogFlusher

log = logging.getLogger(__name__)


def prepare_data_dir(settings: Settings) -> None:
    """The data dir (0700) and, on SQLite in it, the database file (0600) before anything opens it."""
    if settings.is_sqlite or settings.data_dir.exists():
        private_dir(settings.data_dir)
    if settings.database_url is None:
        private_file(settings.sqlite_path)


class Runtime:
    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.role = role
        self.embedded = role == "serve"
        if not self.embedded and not settings.redis_url:
            raise SystemExit(f"kraken {role}: --redis-url (KRAKEN_REDIS_URL) is required in scale-out mode")
        prepare_data_dir(settings)
        load_all_models()
        secrets_store.configure(settings)
        from_repo.configure(settings)
        self.db = Database(settings.effective_database_url)
        self.bus: Bus = MemoryBus() if self.embedded else RedisBus(settings.redis_url or "")
        self.queue: TaskQueue = InProcessQueue() if self.embedded else ArqQueue(settings.redis_url or "")
        self.services: list[Service] = []
        logs_active.configure(logs_active.store_for(settings, self.db, self.bus))
        self.service_logs: ServiceLogFlusher | None = None

    @property
    def task_context(self) -> TaskContext:
        return TaskContext(db=self.db, bus=self.bus, queue=self.queue, settings=self.settings)

    async def start(self) -> None:
        start_sandbox()  # warm stage-evaluation workers: the first flow need not wait for them
        await self.bus.start()
        if isinstance(self.queue, InProcessQueue):
            self.queue.bind(self.task_context)
        if self.settings.service_logs_store and self.service_logs is None:
            from kraken.logs.servicelogs import ServiceLogFlusher

            # retention by the process that runs the controller (serve, controller)
            self.service_logs = ServiceLogFlusher(
                self.settings, self.db, self.role, retention=self.role in ("serve", "controller")
            )
            self.service_logs.start()

    def start_controller(self) -> None:
        from kraken.artifacts.retention import Janitor
        from kraken.control.planner import Planner
        from kraken.control.scheduler import Scheduler
        from kraken.control.watchdog import Watchdog
        from kraken.logs.service import LogIndexService

        for cls in (Scheduler, Watchdog, Planner, Janitor, LogIndexService):
            svc = cls(self.db, self.bus, self.queue, self.settings)
            svc.start()
            self.services.append(svc)

    async def stop(self) -> None:
        for svc in self.services:
            await svc.stop()
        await self.queue.close()
        if self.service_logs is not None:
            await self.service_logs.stop()
            self.service_logs = None
        await logs_active.log_store().close()
        await self.bus.close()
        await self.db.dispose()
        await shutdown_sandbox()
