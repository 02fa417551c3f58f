"""Errors that a retry can outlive: a dropped database connection, Redis or the network gone
for a moment. Background tasks retry these; everything else is a bug to report at once."""

from __future__ import annotations

import asyncio

import redis.exceptions
import sqlalchemy as sa

TRANSIENT_NETWORK = (ConnectionError, TimeoutError, asyncio.TimeoutError, redis.exceptions.ConnectionError,
                     redis.exceptions.TimeoutError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        name = type(orig).__name__ if orig is not None else ""
        # asyncpg, wrapped by SQLAlchemy: the server closed or restarted under us
        return name in ("ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError",
                        "AdminShutdownError", "InterfaceError") or isinstance(orig, OSError)
    return isinstance(exc, (*TRANSIENT_NETWORK, OSError))
