"""Database access: one engine per process, read sessions and write transactions.

SQLite (the embedded default) allows one writer at a time; a write transaction
that started as a reader fails with SQLITE_BUSY when another writer committed
meanwhile.  So on SQLite every write transaction takes a process-wide asyncio
lock and begins with ``BEGIN IMMEDIATE``; readers run concurrently (WAL).  On
PostgreSQL write transactions run concurrently and lock rows where needed
(``SELECT ... FOR UPDATE``).

``quick=True`` sessions and transactions are for the control plane's short statements
(keyed reads, single-row updates): on SQLite they run on the event loop's thread instead
of hopping to aiosqlite's worker thread for each statement (see ``sqlite_inline``).  On
PostgreSQL they come from a pool that pings a connection only when it has been idle for
``idle_ping`` seconds: a busy control plane pays no round trip per checkout, and after the
database dropped its connections (a restart, a failover) the first use still gets a live one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kraken.core.diskspace import DiskSpace
from kraken.core.sqlite_inline import inline_creator


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10, idle_ping: float = 1.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # autocommit driver mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), so a
            # connection going back to the pool has nothing to roll back.
            kwargs["connect_args"] = {"timeout": 30, "isolation_level": None}
            kwargs["pool_reset_on_return"] = None
        else:
            kwargs.update(pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.quick_engine = self.engine
        self.disk = DiskSpace(None)  # a full volume: seen in the errors of write transactions
        if self.is_sqlite:
            _sqlite_setup(self.engine)
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                self.disk = DiskSpace(Path(path).resolve().parent)
            if path and path != ":memory:":  # a second in-memory engine would be another database
                creator = inline_creator(path, **kwargs["connect_args"])
                self.quick_engine = create_async_engine(url, async_creator=creator, **kwargs)
                _sqlite_setup(self.quick_engine)
        else:
            # as many kept as may be open (15): a pool that closed every connection above 5 as soon as
            # it came back opened and closed connections all the time under a fleet's load (a
            # connect and a close, TLS attempt included, per transaction above the 5th)
            quick_pool = {"pool_size": pool_size + 5, "max_overflow": 0, "pool_pre_ping": False}
            self.quick_engine = create_async_engine(url, **{**kwargs, **quick_pool})
            _ping_when_idle(self.quick_engine, idle_ping)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        self._quick_sessions = async_sessionmaker(self.quick_engine, expire_on_commit=False, class_=AsyncSession)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    def _maker(self, quick: bool) -> async_sessionmaker[AsyncSession]:
        return self._quick_sessions if quick else self._sessions

    @asynccontextmanager
    async def session(self, *, quick: bool = False) -> AsyncIterator[AsyncSession]:
        """A session for reading (on SQLite it must not write)."""
        async with self._maker(quick)() as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, quick: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed on success and rolled back on error."""
        try:
            if self._write_lock is None:
                async with self._maker(quick)() as session, session.begin():
                    yield session
            else:
                async with self._write_lock, self._maker(quick)() as session:
                    conn = await session.connection()
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        yield session
                    except BaseException:
                        await session.rollback()
                        raise
                    else:
                        await session.commit()
        except Exception as exc:
            self.disk.note_error(exc)  # a full volume: remembered for the health check
            raise
        self.disk.note_write_ok()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.quick_engine is not self.engine:
            await self.quick_engine.dispose()


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    """Ping a pooled connection at checkout when it has not been used for ``idle`` seconds; a dead
    one is replaced (SQLAlchemy retries the checkout on ``DisconnectionError``)."""
    sync = engine.sync_engine

    @sa.event.listens_for(sync, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["kraken_idle_since"] = time.monotonic()

    @sa.event.listens_for(sync, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("kraken_idle_since")
        if since is None or time.monotonic() - since < idle:
            return  # new, or in use a moment ago
        try:
            alive = sync.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"idle connection is gone: {exc}") from exc
        if not alive:
            raise sa.exc.DisconnectionError("idle connection is gone")


def _sqlite_setup(engine: AsyncEngine) -> None:
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # With isolation_level=None pysqlite never issues BEGIN itself; reads run in
        # autocommit, write transactions issue BEGIN IMMEDIATE in Database.transaction().
        pass
