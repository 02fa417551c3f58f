"""Fills the search index from ``log_chunk`` in batches, behind a high-water mark (``plan``).

It runs as the background task ``index_logs`` (``kraken.logs.tasks``), queued every
``KRAKEN_LOG_INDEX_INTERVAL`` seconds by the controller's ``LogIndexService`` (in-process in
``kraken serve``, by a worker in scale-out), so the job message handlers only INSERT their chunk
as before and never wait for a full-text index.

- PostgreSQL: ``log_line`` in the main database with a ``pg_trgm`` GIN index; one pass is one
  transaction that also moves the mark, whose row is locked, so passes never index a chunk twice.
- SQLite: a file of its own beside the database (``sqlite_index``), written in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from kraken.core.db import Database
from kraken.core.sql import insert_ignore
from kraken.logs import sqlite_index
from kraken.logs.plan import BATCH_CHUNKS, CHUNKS, Mark, lines_of, live_gaps, plan, settling
from kraken.models.base import utcnow
from kraken.models.logs import LogIndexState

# lines per pass; SQLite's index file has a writer of its own, so both can take large batches
BATCH_LINES = 5000

INSERT = (
    "INSERT INTO log_line (job_id, project_id, branch_id, flow_id, step_index, line_no, created, text)"
    " VALUES (:j, :p, :b, :f, :s, :n, :c, :t)"
)
NEWEST = "SELECT id, EXTRACT(EPOCH FROM (now() - created)) FROM log_chunk ORDER BY id DESC LIMIT 1"
KEYS = ("j", "p", "b", "f", "s", "n", "c", "t")


@dataclass
class Pass:
    chunks: int = 0
    lines: int = 0


async def locked_state(session: AsyncSession, state_id: int = 1) -> LogIndexState:
    """The mark's row (made when missing), locked until the transaction ends on PostgreSQL."""
    values = {"id": state_id, "last_chunk_id": 0, "partial_line": 0, "gaps": [], "indexed_lines": 0}
    await insert_ignore(session, LogIndexState, values)
    stmt = select(LogIndexState).where(LogIndexState.id == state_id).with_for_update()
    return (await session.execute(stmt)).scalar_one()


async def _pg_pass(db: Database, batch_lines: int, settle: bool) -> Pass:
    async with db.transaction() as session:
        state = await locked_state(session)
        now = time.time()
        mark = Mark(state.last_chunk_id, state.partial_chunk_id, state.partial_line, live_gaps(state.gaps, now))
        newest = (await session.execute(sa.text(NEWEST))).one_or_none()
        if settle and newest is not None and settling(newest[1], int(newest[0]) - mark.last_chunk_id):
            return Pass()
        chunks = CHUNKS.format(p="")
        after = sa.text(chunks + "WHERE c.id > :mark ORDER BY c.id LIMIT :n")
        fresh = list((await session.execute(after, {"mark": mark.last_chunk_id, "n": BATCH_CHUNKS})).all())
        found = []
        if mark.gaps:
            stmt = sa.text(chunks + "WHERE c.id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
            found = list((await session.execute(stmt, {"ids": sorted(mark.gaps)})).all())
        done = plan(mark, fresh, found, batch_lines, now)
        rows = lines_of(done.pieces)
        if rows:
            await session.execute(sa.text(INSERT), [dict(zip(KEYS, r, strict=True)) for r in rows])
        save_mark(state, done.mark, bool(done.pieces), len(rows))
    return Pass(len(done.pieces), len(rows))


def save_mark(state: LogIndexState, mark: Mark, moved: bool, lines: int) -> None:
    """Store a pass's new mark in the locked state row (only when it moved or its gaps changed),
    counting the ``lines`` it indexed."""
    if not moved and len(mark.gaps) == len(state.gaps):
        return
    state.last_chunk_id, state.partial_chunk_id, state.partial_line = (
        mark.last_chunk_id,
        mark.partial_chunk_id,
        mark.partial_line,
    )
    state.gaps = json.loads(json.dumps(sorted(mark.gaps.items())))
    state.indexed_lines += lines
    state.updated = utcnow()


async def index_pass(db: Database, batch_lines: int = BATCH_LINES, settle: bool = True) -> Pass:
    """Index the next chunks (``batch_lines`` lines at most) and the gaps that appeared; with
    ``settle``, nothing while log writes are under way (``plan.settling``)."""
    if db.is_sqlite:
        main = sqlite_index.main_path(db.url)
        chunks, lines = await asyncio.to_thread(sqlite_index.index_pass, main, batch_lines, settle)
        return Pass(chunks, lines)
    return await _pg_pass(db, batch_lines, settle)


async def index_all(db: Database, budget_s: float = 10.0, batch_lines: int = BATCH_LINES, settle: bool = True) -> Pass:
    """Passes until the index caught up or ``budget_s`` is spent (the next run goes on)."""
    total = Pass()
    started = time.monotonic()
    while time.monotonic() - started < budget_s:
        one = await index_pass(db, batch_lines, settle)
        total.chunks += one.chunks
        total.lines += one.lines
        if one.chunks == 0:  # caught up, or writes are under way (``settling``): the next run goes on
            break
    return total
