"""Search as a caller who sees some of the projects (on PostgreSQL one branch per visible project,
merged: ``kraken.logs.search_sql``), on both databases: the same hits, in the same order and
pages, as an administrator's search filtered to those projects, with every other filter."""

from __future__ import annotations

import sqlalchemy as sa

from kraken.core.db import Database
from kraken.logs.database import DatabaseLogStore
from kraken.logs.indexer import index_all
from kraken.logs.query import LogQuery
from kraken.logs.store import SearchHit
from tests.logs.test_indexer import a_job, add_chunk

PROJECT_OF_JOB = (
    "SELECT b.project_id FROM job j JOIN run r ON r.id = j.run_id JOIN flow f ON f.id = r.flow_id"
    " JOIN branch b ON b.id = f.branch_id WHERE j.id = :j"
)


async def pages(db: Database, query: LogQuery, projects: set[int] | None) -> list[list[SearchHit]]:
    store, out, cursor = DatabaseLogStore(db), [], None
    while True:
        async with db.session() as s:
            page = await store.search(s, LogQuery(**{**query.__dict__, "before_id": cursor}), projects)
        out.append(page.hits)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def test_a_caller_seeing_some_projects_gets_the_admins_hits_of_them(db: Database) -> None:
    jobs = [await a_job(db, f"p{n}") for n in range(4)]
    async with db.session() as s:
        project = {j: int((await s.execute(sa.text(PROJECT_OF_JOB), {"j": j})).scalar_one()) for j in jobs}
    chunk_id = 0
    for round_ in range(6):  # the projects' lines interleaved in time
        for n, job in enumerate(jobs):
            chunk_id += 1
            lines = [f"round {round_} job {n} line {i} {'cache hit' if (i + n) % 2 else 'miss'}" for i in range(5)]
            await add_chunk(db, job, chunk_id, round_ * 5, lines)
    assert (await index_all(db, settle=False)).lines == 6 * 4 * 5
    visible = {project[jobs[0]], project[jobs[2]], project[jobs[3]]}
    for query in (
        LogQuery(terms=("cache hit",), limit=7),
        LogQuery(terms=("round", "line 3"), limit=4),
        LogQuery(terms=("job 2",), limit=50),
        LogQuery(terms=("cache",), branch_id=None, job_id=jobs[3], limit=3),
        LogQuery(terms=("nothing here",), limit=5),
    ):
        admin = [h for page in await pages(db, LogQuery(**{**query.__dict__, "limit": 1000}), None) for h in page]
        expected = [h for h in admin if h.project_id in visible]
        got = await pages(db, query, visible)
        assert [h for page in got for h in page] == expected, query
        assert all(len(page) == query.limit for page in got[:-1])  # full pages until the last
        assert len(got[-1]) <= query.limit
    assert expected == []  # the last query matches nothing
    # a project asked for that the caller does not see: nothing
    async with db.session() as s:
        page = await DatabaseLogStore(db).search(s, LogQuery(terms=("cache",), project_id=project[jobs[1]]), visible)
    assert page.hits == []
