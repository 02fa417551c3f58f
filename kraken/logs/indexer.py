"""Fills the search index (``log_line``) from ``log_chunk`` in batches, behind a high-water mark.

It runs as the background task ``index_logs`` (``kraken.logs.tasks``), queued every
``KRAKEN_LOG_INDEX_INTERVAL`` seconds by the controller's ``LogIndexService`` (in-process in
``kraken serve``, by a worker in scale-out), so the job message handlers only INSERT their chunk
as before and never wait for a full-text index.

High-water mark and gaps: chunk ids are given out when a row is inserted, but on PostgreSQL
the transactions of several server replicas commit in any order, so a chunk with a smaller id
can become visible after a larger one was indexed.  The ids skipped over are kept as ``gaps``
and looked for again on each pass, for ``GAP_SECONDS``; a gap that never appears was a rolled
back insert (or a chunk deleted before it was indexed).  One pass is one transaction that also
moves the mark, and the mark's row is locked, so passes never index a chunk twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from kraken.core.db import Database
from kraken.core.sql import insert_ignore
from kraken.models.base import utcnow
from kraken.models.logs import LogIndexState, LogLine

BATCH_LINES = 2000  # lines per transaction: short, so that the log writes between passes never wait long
BATCH_CHUNKS = 500
GAP_SECONDS = 300.0
MAX_GAPS = 10_000

CHUNKS = """
SELECT c.id, c.job_id, c.step_index, c.first_line, c.line_count, c.text,
       COALESCE(c.created, j.started, j.created) AS created, r.flow_id, f.branch_id, b.project_id
FROM log_chunk c JOIN job j ON j.id = c.job_id JOIN run r ON r.id = j.run_id
JOIN flow f ON f.id = r.flow_id JOIN branch b ON b.id = f.branch_id
"""


@dataclass
class Pass:
    chunks: int = 0
    lines: int = 0


async def _state(session: AsyncSession) -> LogIndexState:
    await insert_ignore(session, LogIndexState, {"id": 1, "last_chunk_id": 0, "gaps": [], "indexed_lines": 0})
    state = (await session.execute(select(LogIndexState).where(LogIndexState.id == 1).with_for_update())).scalar_one()
    return state


def _typed(sql: str, *binds: sa.BindParameter[Any]) -> sa.TextualSelect:
    created = LogLine.__table__.c.created.type  # type: ignore[attr-defined]
    names = ("id", "job_id", "step_index", "first_line", "line_count", "text")
    return (
        sa.text(sql)
        .bindparams(*binds)
        .columns(
            *(sa.column(n) for n in names),
            sa.column("created", created),
            sa.column("flow_id"),
            sa.column("branch_id"),
            sa.column("project_id"),
        )
    )


def _rows(chunks: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for c in chunks:
        created = c.created
        for i, text in enumerate(c.text.split("\n")):
            if text.strip():  # blank lines match nothing
                rows.append(
                    {
                        "job_id": c.job_id,
                        "project_id": c.project_id,
                        "branch_id": c.branch_id,
                        "flow_id": c.flow_id,
                        "step_index": c.step_index,
                        "line_no": c.first_line + i,
                        "created": created,
                        "text": text,
                    }
                )
    return rows


async def index_pass(db: Database, batch_lines: int = BATCH_LINES) -> Pass:
    """Index the next chunks (about ``batch_lines`` lines) and the gaps that appeared."""
    done = Pass()
    async with db.transaction() as session:
        state = await _state(session)
        now = time.time()
        gaps = {int(g): float(t) for g, t in state.gaps if now - float(t) < GAP_SECONDS}
        table = LogLine.__table__  # type: ignore[attr-defined]
        typed = _typed(CHUNKS + "WHERE c.id > :mark ORDER BY c.id LIMIT :n")
        fresh = (await session.execute(typed, {"mark": state.last_chunk_id, "n": BATCH_CHUNKS})).all()
        taken: list[Any] = []
        lines = 0
        for c in fresh:
            if taken and lines + c.line_count > batch_lines:
                break
            taken.append(c)
            lines += c.line_count
        found_gaps: list[Any] = []
        if gaps:
            stmt = _typed(CHUNKS + "WHERE c.id IN :ids", sa.bindparam("ids", expanding=True))
            found_gaps = list((await session.execute(stmt, {"ids": sorted(gaps)})).all())
            for c in found_gaps:
                gaps.pop(int(c.id), None)
        mark = state.last_chunk_id
        for c in taken:
            for missing in range(mark + 1, int(c.id)):
                gaps[missing] = now
            mark = int(c.id)
        rows = _rows(taken + found_gaps)
        if rows:
            await session.execute(sa.insert(table), rows)
        if len(gaps) > MAX_GAPS:  # keep the newest; the oldest are surely rolled back by now
            gaps = dict(sorted(gaps.items())[-MAX_GAPS:])
        if taken or found_gaps or len(gaps) != len(state.gaps):
            state.last_chunk_id = mark
            state.gaps = [[g, t] for g, t in sorted(gaps.items())]
            state.indexed_lines += len(rows)
            state.updated = utcnow()
        done.chunks = len(taken) + len(found_gaps)
        done.lines = len(rows)
    return done


async def index_all(db: Database, budget_s: float = 10.0, batch_lines: int = BATCH_LINES) -> Pass:
    """Passes until the index caught up or ``budget_s`` is spent (the next run goes on)."""
    total = Pass()
    started = time.monotonic()
    while time.monotonic() - started < budget_s:
        one = await index_pass(db, batch_lines)
        total.chunks += one.chunks
        total.lines += one.lines
        if one.chunks == 0:
            break
    return total
