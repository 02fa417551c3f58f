"""Registry of handlers for job messages an agent sends (log lines, step states, results...).

Every job message carries a per-job sequence number; the server applies it exactly
once: the handler runs in the same transaction that advances ``Job.last_seq``.
Handlers must not commit; what must happen after the commit (bus messages,
background tasks) goes into ``MessageEffects``.

Adding a message type: decorate ``async def fn(session, job, msg, effects)`` with
``@handles("type")`` in a module listed in ``HANDLER_MODULES``; ``quick=True`` when the
handler only runs a few short statements (see ``Database.transaction(quick=...)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kraken.control.effects import Effects
from kraken.models import Job

MessageEffects = Effects  # publish / enqueue(name, key, **kwargs) / wake_scheduler


Handler = Callable[[AsyncSession, Job, dict[str, Any], MessageEffects], Awaitable[None]]

HANDLER_MODULES = ["kraken.control.job_messages", "kraken.results.ingest"]

_HANDLERS: dict[str, Handler] = {}
_QUICK: set[str] = set()
_loaded = False


def handles(msg_type: str, *, quick: bool = False) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        _HANDLERS[msg_type] = fn
        if quick:
            _QUICK.add(msg_type)
        return fn

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in HANDLER_MODULES:
            importlib.import_module(module)


def handler_for(msg_type: str) -> Handler | None:
    _load()
    return _HANDLERS.get(msg_type)


def all_quick(msg_types: Iterable[str]) -> bool:
    """True when every message type's handler is registered as quick."""
    _load()
    return all(t in _QUICK for t in msg_types)
