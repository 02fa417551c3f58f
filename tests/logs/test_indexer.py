"""The background indexer of the log search on both databases: batches behind a high-water mark,
chunks committed late (a smaller id visible after a larger one), nothing indexed twice, and
forgotten logs leave the index."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.logs import sqlite_index
from kraken.logs.database import DatabaseLogStore
from kraken.logs.indexer import index_all, index_pass
from kraken.logs.plan import MAX_LAG_CHUNKS, SETTLE_SECONDS, settling
from kraken.logs.query import LogQuery
from kraken.models import Branch, Job, LogChunk, Project, Run, Stage
from kraken.models.base import utcnow
from kraken.models.enums import FlowKind
from kraken.models.logs import LogIndexState, LogLine
from kraken.stage import check_stage_code

CODE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""


async def a_job(db: Database, project: str = "p") -> int:
    schema = await check_stage_code(CODE)
    async with db.transaction() as s:
        p = Project(name=project)
        s.add(p)
        await s.flush()
        b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
        s.add(b)
        await s.flush()
        s.add(Stage(branch_id=b.id, name="s", schema_code=CODE, schema_=schema))  # type: ignore[arg-type]
    effects = Effects()
    async with db.transaction() as s:
        branch = await s.get(Branch, b.id)
        assert branch is not None
        flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects)
    await orchestration.evaluate_pending(db, effects)
    async with db.session() as s:
        job_id = (await s.execute(select(Job.id).join(Run).where(Run.flow_id == flow.id))).scalar_one()
    assert job_id is not None
    return job_id


async def add_chunk(db: Database, job_id: int, chunk_id: int, first: int, lines: list[str]) -> None:
    async with db.transaction() as s:
        s.add(
            LogChunk(
                id=chunk_id, job_id=job_id, seq=chunk_id, first_line=first, line_count=len(lines), text="\n".join(lines)
            )
        )


async def mark_of(db: Database) -> tuple[int, int | None, int, list[int]]:
    """The indexer's mark: in the main database on PostgreSQL, in the index file on SQLite."""
    if db.is_sqlite:
        conn = sqlite3.connect(sqlite_index.index_path(sqlite_index.main_path(db.url)))
        try:
            last, pid, pline, gaps = conn.execute(
                "SELECT last_chunk_id, partial_chunk_id, partial_line, gaps FROM log_index_state"
            ).fetchone()
        finally:
            conn.close()
        return last, pid, pline, [g for g, _ in json.loads(gaps)]
    async with db.session() as s:
        st = (await s.execute(select(LogIndexState))).scalar_one()
    return st.last_chunk_id, st.partial_chunk_id, st.partial_line, [g for g, _ in st.gaps]


async def count_lines(db: Database) -> int:
    if db.is_sqlite:
        conn = sqlite3.connect(sqlite_index.index_path(sqlite_index.main_path(db.url)))
        try:
            return int(conn.execute("SELECT count(*) FROM log_line").fetchone()[0])
        finally:
            conn.close()
    async with db.session() as s:
        return int((await s.execute(sa.select(sa.func.count()).select_from(LogLine))).scalar_one())


async def find(db: Database, q: str) -> list[tuple[int, str]]:
    async with db.session() as s:
        page = await DatabaseLogStore().search(s, LogQuery(terms=(q,), limit=100), None)
    return [(h.line_no, h.text) for h in page.hits]


async def test_late_chunks_are_indexed_once_and_deleted_logs_leave_the_index(db: Database) -> None:
    job = await a_job(db)
    await add_chunk(db, job, 10, 3, ["error: disk full on /var", "", "all fine"])
    await add_chunk(db, job, 11, 6, ["another error here"])
    done = await index_all(db, settle=False)
    assert done.lines == 3  # the blank line is not indexed
    last, _, _, gaps = await mark_of(db)
    assert last == 11 and gaps == list(range(1, 10))
    if db.is_sqlite:  # the index file holds log lines: private, as the database
        assert sqlite_index.index_path(sqlite_index.main_path(db.url)).stat().st_mode & 0o777 == 0o600

    # chunk 7 commits after 10 and 11 were indexed (another replica's transaction): still found
    await add_chunk(db, job, 7, 0, ["late ERROR line"])
    assert (await index_pass(db, settle=False)).lines == 1
    assert await find(db, "error") == [
        (0, "late ERROR line"),
        (6, "another error here"),
        (3, "error: disk full on /var"),
    ]
    assert (await index_all(db, settle=False)).lines == 0  # nothing twice
    assert await count_lines(db) == 4
    assert 7 not in (await mark_of(db))[3]

    async with db.transaction() as s:
        assert await DatabaseLogStore().delete_jobs(s, [job]) == 3
    assert await find(db, "error") == []
    assert await find(db, "fine") == []
    assert await count_lines(db) == 0


async def test_an_index_ahead_of_the_database_is_rebuilt(db: Database) -> None:
    """On SQLite the index is a file beside the database: after a restore of an older backup
    it is ahead of ``log_chunk``, and starts again rather than skip the new chunks."""
    job = await a_job(db)
    await add_chunk(db, job, 1, 0, ["first error"])
    await add_chunk(db, job, 2, 1, ["second error"])
    await index_all(db, settle=False)
    async with db.transaction() as s:  # the restored database has only chunk 1
        await s.execute(sa.delete(LogChunk).where(LogChunk.id == 2))
    if not db.is_sqlite:
        return  # PostgreSQL's index lives in the database itself: restored with it
    await index_all(db, settle=False)
    assert await find(db, "error") == [(0, "first error")]


async def test_batches_are_bounded_and_the_mark_moves_with_them(db: Database) -> None:
    job = await a_job(db)
    for i in range(1, 6):
        await add_chunk(db, job, i, (i - 1) * 100, [f"line {n} of chunk {i}" for n in range(100)])
    one = await index_pass(db, batch_lines=250, settle=False)
    assert one.lines == 250  # no more than the batch allows: chunk 3 is half done
    assert (await mark_of(db))[:3] == (2, 3, 50)
    rest = await index_all(db, batch_lines=250, settle=False)
    assert rest.lines == 250
    assert len(await find(db, "of chunk 3")) == 100  # each line once, the half-done chunk included
    assert len(await find(db, "of chunk 5")) == 100


async def test_indexing_waits_while_lines_keep_arriving(db: Database) -> None:
    """Writes first: a chunk stored a moment ago makes the pass wait (a job is printing), unless
    the backlog is large; an old one is indexed."""
    job = await a_job(db)
    await add_chunk(db, job, 1, 0, ["fresh error"])
    assert (await index_all(db)).lines == 0
    async with db.transaction() as s:
        await s.execute(sa.update(LogChunk).values(created=utcnow() - timedelta(seconds=SETTLE_SECONDS + 1)))
    assert (await index_all(db)).lines == 1
    assert settling(0.1, 10) and not settling(0.1, MAX_LAG_CHUNKS) and not settling(SETTLE_SECONDS, 10)
    assert not settling(None, 10)  # chunks stored before migration 0021 have no time
