"""aiosqlite connections that run each call at once on the event loop's thread.

aiosqlite hands every call to a worker thread and wakes the event loop when it is done:
about 100-300 µs per statement, ten times what a short SQLite statement costs.  The
control plane's transactions are dozens of such statements (keyed reads and single-row
updates), so ``Database`` gives them these connections instead.  A long statement would
stall the loop: bulk work (test results, big reads) keeps aiosqlite's threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for the queue to aiosqlite's worker thread: runs each call right away."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without a worker thread (awaiting a done future does not yield)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int = 64) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start


def inline_creator(path: str, **kwargs: Any) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine`` that opens inline connections to ``path``."""

    async def create() -> InlineConnection:
        conn = InlineConnection(partial(sqlite3.connect, path, check_same_thread=False, **kwargs))
        await conn
        return conn

    return create
