"""The log store of this process: the database store unless ``Runtime`` configured another."""

from __future__ import annotations

from kraken.core.bus import Bus
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.logs.database import DatabaseLogStore
from kraken.logs.store import LogStore

_current: LogStore = DatabaseLogStore()


def configure(store: LogStore) -> None:
    global _current
    _current = store


def log_store() -> LogStore:
    return _current


def store_for(settings: Settings, db: Database, bus: Bus) -> LogStore:
    """The store ``KRAKEN_LOGS_STORE`` names (the settings were checked: OpenSearch has its URL)."""
    if settings.logs_store == "opensearch":
        from kraken.logs.opensearch import OpenSearchLogStore

        assert settings.opensearch_url is not None
        return OpenSearchLogStore(
            settings.opensearch_url,
            settings.opensearch_index_prefix,
            db=db,
            bus=bus,
            keep_hours=settings.opensearch_keep_hours,
            retention_months=settings.opensearch_retention_months,
        )
    return DatabaseLogStore(db, bus)
