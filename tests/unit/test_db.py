"""Database sessions: quick ones on the event loop's thread (SQLite), locks taken once and fresh."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.core.migrate import upgrade
from kraken.models import Branch, Flow, Project
from kraken.models.enums import FlowKind
from tests.conftest import create_pg_database, drop_pg_database


def _sqlite_thread_probe(db: Database) -> None:
    """Give every new SQLite connection a function ``tid()``: the thread SQLite runs it on."""
    for engine in {db.engine, db.quick_engine}:

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.create_function("tid", 0, threading.get_ident)


async def test_quick_sessions_run_sqlite_on_the_loop_thread(tmp_path: Any) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    _sqlite_thread_probe(db)
    loop_thread = threading.get_ident()
    try:
        async with db.session(quick=True) as s:
            quick_tid = (await s.execute(sa.text("SELECT tid()"))).scalar_one()
        async with db.session() as s:
            other_tid = (await s.execute(sa.text("SELECT tid()"))).scalar_one()
        async with db.transaction(quick=True) as s:
            quick_write_tid = (await s.execute(sa.text("SELECT tid()"))).scalar_one()
    finally:
        await db.dispose()
    assert quick_tid == loop_thread
    assert quick_write_tid == loop_thread
    assert other_tid != loop_thread  # bulk work stays on aiosqlite's worker thread


async def test_quick_and_threaded_writers_share_one_lock_and_see_each_other(db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []
    seen_by_second: list[set[str]] = []

    async def slow_writer() -> None:
        async with db.transaction() as s:
            s.add(Project(name="first"))
            await s.flush()
            inside.set()
            await release.wait()
            order.append("first committed")

    async def quick_writer() -> None:
        await inside.wait()
        async with db.transaction(quick=True) as s:
            order.append("second started")
            seen_by_second.append(set((await s.execute(select(Project.name))).scalars()))
            s.add(Project(name="second"))

    task1, task2 = asyncio.create_task(slow_writer()), asyncio.create_task(quick_writer())
    await inside.wait()
    await asyncio.sleep(0)  # let the quick writer reach the lock
    release.set()
    await asyncio.gather(task1, task2)
    if db.is_sqlite:  # one writer at a time: the second began after the first committed
        assert order == ["first committed", "second started"]
        assert seen_by_second == [{"first"}]
    async with db.session() as s:
        assert set((await s.execute(select(Project.name))).scalars()) == {"first", "second"}


async def test_failed_quick_transaction_keeps_nothing(db: Database) -> None:
    async with db.transaction(quick=True) as s:
        s.add(Project(name="kept"))
    with pytest.raises(sa.exc.IntegrityError):
        async with db.transaction(quick=True) as s:
            s.add(Project(name="lost"))
            await s.flush()
            s.add(Project(name="kept"))  # duplicate name
            await s.flush()
    async with db.session(quick=True) as s:
        assert list((await s.execute(select(Project.name))).scalars()) == ["kept"]


async def test_concurrent_flows_get_distinct_numbers(db: Database) -> None:
    """Each transaction reads the branch first (as the API does), then locks it to number its
    flow: the lock must re-read the counter another transaction advanced meanwhile."""
    async with db.transaction() as s:
        p = Project(name="p")
        s.add(p)
        await s.flush()
        b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
        s.add(b)
    assert b.id is not None
    branch_id = b.id
    both_read = asyncio.Barrier(2) if not db.is_sqlite else None

    async def trigger() -> int:
        async with db.transaction(quick=True) as s:
            branch = await s.get(Branch, branch_id)
            assert branch is not None
            if both_read is not None:
                await both_read.wait()  # PostgreSQL: both have read the counter before either locks
            flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, Effects())
            return flow.seq

    seqs = await asyncio.gather(trigger(), trigger())
    assert sorted(seqs) == [1, 2]
    async with db.session() as s:
        assert sorted((await s.execute(select(Flow.seq))).scalars()) == [1, 2]


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    url = await create_pg_database()
    await upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()
    await drop_pg_database(url)


async def test_quick_sessions_recover_when_the_database_drops_connections(pg_db: Database) -> None:
    """PostgreSQL (SQLite's connections are files, never dropped): quick sessions ping a pooled
    connection that has been idle, so the first use after the database dropped every connection
    (as a restart does) succeeds."""
    for database in (pg_db, Database(pg_db.url, idle_ping=0.0)):
        async with database.session(quick=True) as s:  # a pooled connection exists
            assert (await s.execute(sa.text("SELECT 1"))).scalar_one() == 1
        await _drop_other_connections(pg_db)
        if database is pg_db:  # idle for less than idle_ping (1 s): this checkout is not pinged
            with pytest.raises(sa.exc.DBAPIError) as failed:
                async with database.transaction(quick=True) as s:
                    s.add(Project(name="lost"))
            assert failed.value.connection_invalidated
            continue
        async with database.transaction(quick=True) as s:  # idle: pinged, replaced, no failure
            s.add(Project(name="after-restart"))
        await database.dispose()
    async with pg_db.session() as s:  # the pre-pinged pool never fails
        assert list((await s.execute(select(Project.name))).scalars()) == ["after-restart"]


async def _drop_other_connections(db: Database) -> None:
    async with db.session() as s:
        await s.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


async def test_a_background_task_outlives_a_dropped_connection(pg_db: Database) -> None:
    """A task whose first attempt meets a connection the database dropped runs again and succeeds
    (it used to fail once per process, and arq does not retry)."""
    from kraken.core.bus import MemoryBus
    from kraken.core.config import Settings
    from kraken.workers.queue import InProcessQueue
    from kraken.workers.registry import _TASKS, TaskContext, task

    attempts: list[str] = []

    @task
    async def _test_insert_project(ctx: TaskContext, project: str) -> None:
        attempts.append(project)
        async with ctx.db.transaction(quick=True) as s:
            s.add(Project(name=project))

    async with pg_db.session(quick=True) as s:  # a pooled connection, used a moment ago
        await s.execute(sa.text("SELECT 1"))
    await _drop_other_connections(pg_db)
    queue = InProcessQueue()
    queue.bind(TaskContext(db=pg_db, bus=MemoryBus(), queue=queue, settings=Settings()))
    try:
        await queue.enqueue("_test_insert_project", project="from-task")
        await queue.drain()
    finally:
        _TASKS.pop("_test_insert_project")
    assert attempts == ["from-task", "from-task"]  # the first met the dropped connection
    async with pg_db.session() as s:
        assert list((await s.execute(select(Project.name))).scalars()) == ["from-task"]
