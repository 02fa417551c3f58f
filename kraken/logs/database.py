"""The database log store (the default): ``log_chunk`` rows in the main database, one per agent
message; search reads the ``log_line`` index that ``kraken.logs.indexer`` fills in the
background, so the write path is one plain INSERT per message, as it always was."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.bus import Bus
from kraken.core.db import Database
from kraken.logs import sqlite_index
from kraken.logs.query import LogQuery
from kraken.logs.search_sql import search_statement, service_search_statement
from kraken.logs.store import LogBatch, LogStore, SearchHit, SearchPage, ServiceHit, ServicePage, ServiceRecord
from kraken.models import Job, LogChunk
from kraken.models.enums import State
from kraken.models.logs import LogIndexState, LogLine, ServiceLog
from kraken.protocol import EVENTS_CHANNEL, log_channel
from kraken.schemas.ints import INT32_MAX


class DatabaseLogStore(LogStore):
    def __init__(self, db: Database | None = None, bus: Bus | None = None) -> None:
        self.db, self.bus = db, bus  # needed by ``follow`` only

    async def append(
        self, session: AsyncSession, job_id: int, seq: int, step_index: int | None, first_line: int, lines: list[str]
    ) -> None:
        session.add(
            LogChunk(
                job_id=job_id,
                seq=seq,
                step_index=step_index,
                first_line=first_line,
                line_count=len(lines),
                text="\n".join(lines),
            )
        )

    async def read(self, session: AsyncSession, job_id: int, after_line: int = -1) -> AsyncIterator[LogBatch]:
        result = await session.stream_scalars(
            select(LogChunk)
            .where(LogChunk.job_id == job_id, col(LogChunk.first_line) + col(LogChunk.line_count) > after_line + 1)
            .order_by(col(LogChunk.first_line))
            .execution_options(yield_per=500)
        )
        async for chunk in result:
            skip = max(0, after_line + 1 - chunk.first_line)
            lines = chunk.text.split("\n")
            yield LogBatch(chunk.first_line + skip, chunk.step_index, lines[skip:] if skip else lines)

    async def follow(
        self, job_id: int, after_line: int, is_disconnected: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[LogBatch | int]:
        """Stored lines, then live ones from the bus; lines the bus lost (a Redis outage) are read
        from the database when the bus says ``resync``."""
        assert self.db is not None and self.bus is not None, "DatabaseLogStore.follow needs the database and the bus"
        db = self.db
        sent = after_line  # last line number given
        done = False

        async def stored() -> AsyncIterator[LogBatch]:
            nonlocal sent, done
            async with db.session() as session:
                async for batch in self.read(session, job_id, sent):
                    yield batch
                    sent = batch.first_line + len(batch.lines) - 1
                job = await session.get(Job, job_id)
                done = job is not None and job.state == State.COMPLETED

        async with self.bus.listening(log_channel(job_id), EVENTS_CHANNEL) as sub:
            async for batch in stored():
                yield batch
            if done:
                yield sent + 1
                return
            while not await is_disconnected():
                channel, msg = await sub.get()
                if channel == EVENTS_CHANNEL:
                    if msg.get("kind") == "resync":  # the bus lost messages: catch up from the database
                        async for batch in stored():
                            yield batch
                        if done:
                            yield sent + 1
                            return
                    elif msg.get("kind") == "job" and msg.get("id") == job_id and msg.get("state") == State.COMPLETED:
                        yield sent + 1
                        return
                    continue
                first = int(msg["first_line"])
                lines = msg["lines"][max(0, sent + 1 - first) :]
                if lines:
                    yield LogBatch(max(first, sent + 1), msg.get("step_index"), lines)
                    sent = first + len(msg["lines"]) - 1

    async def search(self, session: AsyncSession, query: LogQuery, projects: set[int] | None) -> SearchPage:
        if projects is not None and not projects:
            return SearchPage()
        if query.before_id is not None and query.before_id > INT32_MAX:  # every line id is smaller
            query = dataclasses.replace(query, before_id=None)
        main = _sqlite_file(session)
        if main is not None:
            found = await asyncio.to_thread(sqlite_index.search, main, query, projects)
        else:
            # a plan for these very terms: asyncpg prepares the statement, and after five runs
            # PostgreSQL may keep a generic plan that cannot tell a rare term from a common one
            # (measured: a common word through the trigram index, 2.5 s instead of 1 ms)
            await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
            found = [
                SearchHit(
                    line_id=r.id,
                    job_id=r.job_id,
                    project_id=r.project_id,
                    branch_id=r.branch_id,
                    flow_id=r.flow_id,
                    step_index=r.step_index,
                    line_no=r.line_no,
                    time=r.created,
                    text=r.text,
                )
                for r in (await session.execute(search_statement(query, projects))).all()
            ]
        hits = found[: query.limit]
        more = len(found) > query.limit
        return SearchPage(hits=hits, next_cursor=hits[-1].line_id if more and hits else None)

    async def delete_jobs(self, session: AsyncSession, job_ids: list[int]) -> int:
        main = _sqlite_file(session)
        if main is not None:  # the index file has a writer of its own: not part of this transaction
            await asyncio.to_thread(sqlite_index.delete_jobs, main, job_ids)
        else:
            await session.execute(sa.delete(LogLine).where(col(LogLine.job_id).in_(job_ids)))
        result = await session.execute(sa.delete(LogChunk).where(col(LogChunk.job_id).in_(job_ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def index_pending(self, db: Database) -> int:
        from kraken.logs.indexer import index_all

        return (await index_all(db)).lines

    async def indexed_lines(self, session: AsyncSession) -> int:
        main = _sqlite_file(session)
        if main is not None:
            return await asyncio.to_thread(sqlite_index.indexed_lines, main)
        return (await session.execute(select(col(LogIndexState.indexed_lines)))).scalar_one_or_none() or 0

    # ---------------------------------------------------------------- service logs

    async def store_service_records(self, db: Database, records: list[ServiceRecord]) -> None:
        if db.is_sqlite:  # in the search index's own file: the main file's writers never wait for it
            await asyncio.to_thread(sqlite_index.insert_service_records, sqlite_index.main_path(db.url), records)
            return
        rows = [{**asdict(r), "created": r.time} for r in records]
        for row in rows:
            del row["time"]
        async with db.transaction() as session:
            await session.execute(sa.insert(ServiceLog), rows)

    async def search_service_records(self, session: AsyncSession, query: LogQuery) -> ServicePage:
        if query.before_id is not None and query.before_id > INT32_MAX:  # every record id is smaller
            query = dataclasses.replace(query, before_id=None)
        main = _sqlite_file(session)
        if main is not None:
            found = await asyncio.to_thread(sqlite_index.search_service_records, main, query)
        else:
            found = [
                ServiceHit(
                    r.id,
                    ServiceRecord(
                        r.created, r.service, r.host, r.pid, r.level, r.logger, r.text, r.flow_id, r.run_id, r.job_id
                    ),
                )
                for r in (await session.execute(service_search_statement(query))).all()
            ]
        hits = found[: query.limit]
        more = len(found) > query.limit
        return ServicePage(hits=hits, next_cursor=hits[-1].record_id if more and hits else None)

    async def purge_service_records(self, db: Database, before: datetime) -> int:
        if db.is_sqlite:
            return await asyncio.to_thread(sqlite_index.purge_service_records, sqlite_index.main_path(db.url), before)
        async with db.transaction() as session:
            result = await session.execute(sa.delete(ServiceLog).where(col(ServiceLog.created) < before))
        return int(result.rowcount)  # type: ignore[attr-defined]


def _sqlite_file(session: AsyncSession) -> Path | None:
    """The main database's file on SQLite (its search index is a file beside it), else None."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    engine = bind if isinstance(bind, sa.Engine) else bind.engine
    return Path(str(engine.url.database))
