"""Errors that a retry can outlive: a dropped database connection, Redis or the network gone
for a moment. Background tasks retry these; everything else is a bug to report at once."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_NETWORK: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, asyncio.TimeoutError)


def _redis_errors() -> tuple[type[BaseException], ...]:
    """Redis's connection errors, without importing redis where nothing uses it (``kraken serve``
    and the agent): a process that never loaded redis cannot get one of its errors."""
    errors = sys.modules.get("redis.exceptions")
    if errors is None:
        return ()
    return (errors.ConnectionError, errors.TimeoutError)


def is_dropped_connection(exc: BaseException) -> bool:
    """The database closed or lost the connection under us (a restart, a failover,
    ``pg_terminate_backend``): the transaction was rolled back, the next connection works."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    name = type(orig).__name__ if orig is not None else ""
    # asyncpg, wrapped by SQLAlchemy: the server closed or restarted under us
    return name in (
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "InterfaceError",
    ) or isinstance(orig, OSError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError):
        return is_dropped_connection(exc)
    return isinstance(exc, (*TRANSIENT_NETWORK, *_redis_errors(), OSError))


async def retry_dropped(op: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``op`` (a whole transaction, safe to run again) and run it once more if the database
    dropped its connection: the first use of a pooled connection that the server closed fails,
    the second gets a fresh one. Any other error, or a second failure, goes to the caller."""
    try:
        return await op()
    except Exception as exc:
        if not is_dropped_connection(exc):
            raise
        log.warning(
            "%s: the database dropped the connection (%s); trying once more",
            what,
            type(exc.orig).__name__ if isinstance(exc, sa.exc.DBAPIError) else type(exc).__name__,
        )
        return await op()
