"""The log store of this process: the database store unless ``Runtime`` configured another."""

from __future__ import annotations

from kraken.logs.database import DatabaseLogStore
from kraken.logs.store import LogStore

_current: LogStore = DatabaseLogStore()


def configure(store: LogStore) -> None:
    global _current
    _current = store


def log_store() -> LogStore:
    return _current
