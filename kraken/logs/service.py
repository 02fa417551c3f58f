"""The controller's loop that queues the log indexing task every ``log_index_interval`` seconds.

Queued with a key, so that a slow run is never joined by a second one waiting behind it."""

from __future__ import annotations

from kraken.control.service import PeriodicService


class LogIndexService(PeriodicService):
    name = "log-indexer"

    @property
    def interval(self) -> float:  # type: ignore[override]
        return self.settings.log_index_interval

    async def tick(self) -> None:
        await self.queue.enqueue("index_logs", key="index_logs")
