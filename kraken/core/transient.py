"""Errors that a retry can outlive: a dropped database connection, Redis or the network gone
for a moment. Background tasks retry these; everything else is a bug to report at once."""

from __future__ import annotations

import asyncio
import sys

import sqlalchemy as sa

TRANSIENT_NETWORK: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, asyncio.TimeoutError)


def _redis_errors() -> tuple[type[BaseException], ...]:
    """Redis's connection errors, without importing redis where nothing uses it (``kraken serve``
    and the agent): a process that never loaded redis cannot get one of its errors."""
    errors = sys.modules.get("redis.exceptions")
    if errors is None:
        return ()
    return (errors.ConnectionError, errors.TimeoutError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        name = type(orig).__name__ if orig is not None else ""
        # asyncpg, wrapped by SQLAlchemy: the server closed or restarted under us
        return name in ("ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError",
                        "AdminShutdownError", "InterfaceError") or isinstance(orig, OSError)
    return isinstance(exc, (*TRANSIENT_NETWORK, *_redis_errors(), OSError))
