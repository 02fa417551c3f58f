"""The OpenSearch log store against ``osmem-server`` (an in-memory OpenSearch emulator, see
``tests/support/opensearch_emulator.py``), on both databases: lines indexed once in bulk, read
back from the database and from OpenSearch, searched, kept in the database while OpenSearch does
not answer, and forgotten with their jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kraken.core.db import Database
from kraken.logs.opensearch import OpenSearchLogStore
from kraken.logs.opensearch_indexer import backoff_of, index_all
from kraken.logs.query import LogQuery
from kraken.logs.store import LogBatch
from kraken.models import Job, LogChunk
from kraken.models.base import utcnow
from tests.logs.test_indexer import a_job, add_chunk
from tests.support.opensearch_emulator import OpenSearchEmulator


@pytest.fixture
def emulator() -> Iterator[OpenSearchEmulator]:
    em = OpenSearchEmulator()
    em.start()
    try:
        yield em
    finally:
        em.stop()


def lines_of(batches: list[LogBatch]) -> list[tuple[int, str]]:
    return [(b.first_line + i, t) for b in batches for i, t in enumerate(b.lines)]


async def read_all(store: OpenSearchLogStore, db: Database, job_id: int, after: int = -1) -> list[tuple[int, str]]:
    async with db.session() as s:
        return lines_of([b async for b in store.read(s, job_id, after)])


async def indexed(store: OpenSearchLogStore, job_id: int) -> list[int]:
    await store.client.indices.refresh(index=store.pattern)
    found = await store.client.search(
        index=store.pattern, body={"query": {"term": {"job_id": job_id}}, "size": 10000, "_source": ["line_no"]}
    )
    return sorted(h["_source"]["line_no"] for h in found["hits"]["hits"])


async def test_lines_are_indexed_once_read_back_and_searched(db: Database, emulator: OpenSearchEmulator) -> None:
    store = OpenSearchLogStore(emulator.url, "klog-a", db=db, keep_hours=0)
    try:
        job_id = await a_job(db)
        texts = [f"line {i}" for i in range(10)] + ["", "ERROR ConnectTimeoutError to db-7f3a", "last"]
        await add_chunk(db, job_id, 1, 0, texts[:6])
        await add_chunk(db, job_id, 2, 6, texts[6:])
        assert await index_all(db, store) == len(texts)
        assert await index_all(db, store) == 0  # nothing twice
        assert await indexed(store, job_id) == list(range(len(texts)))
        async with db.session() as s:  # indexed and older than keep_hours=0: gone from the database
            assert (await s.execute(sa.select(sa.func.count()).select_from(LogChunk))).scalar_one() == 0
            assert await store.indexed_lines(s) == len(texts)
        assert await read_all(store, db, job_id) == list(enumerate(texts))
        assert await read_all(store, db, job_id, 9) == [(10, ""), (11, texts[11]), (12, "last")]

        # new lines in the database, older ones in OpenSearch: one log, in order
        await add_chunk(db, job_id, 3, 13, ["fresh a", "fresh b"])
        assert await read_all(store, db, job_id) == [*enumerate(texts), (13, "fresh a"), (14, "fresh b")]

        async with db.session() as s:
            page = await store.search(s, LogQuery(terms=("timeout", "DB-7F")), None)
            assert [(h.job_id, h.line_no) for h in page.hits] == [(job_id, 11)]
            assert (await store.search(s, LogQuery(terms=("timeout",)), {999})).hits == []
            two = await store.search(s, LogQuery(terms=("line",), limit=2), None)
            assert [h.line_no for h in two.hits] == [9, 8] and two.next_cursor is not None
            more = await store.search(s, LogQuery(terms=("line",), limit=2, before_id=two.next_cursor), None)
            assert [h.line_no for h in more.hits] == [7, 6]
            assert (await store.search(s, LogQuery(terms=('"to db"',)), None)).hits == []  # quotes are not syntax here
        # the same job id made again later (SQLite gives a deleted job's id again): the old
        # lines in OpenSearch are not its lines
        async with db.transaction() as s:
            await s.execute(sa.update(Job).where(Job.id == job_id).values(created=utcnow()))
        assert await read_all(store, db, job_id) == [(13, "fresh a"), (14, "fresh b")]
        async with db.session() as s:
            assert (await store.search(s, LogQuery(terms=("timeout",)), None)).hits == []
        async with db.transaction() as s:
            assert await store.delete_jobs(s, [job_id]) == 1  # the fresh chunk
        assert await indexed(store, job_id) == []
    finally:
        await store.close()


async def test_lines_wait_in_the_database_while_opensearch_is_down(db: Database, emulator: OpenSearchEmulator) -> None:
    store = OpenSearchLogStore(emulator.url, "klog-b", db=db, keep_hours=1)
    try:
        job_id = await a_job(db)
        await add_chunk(db, job_id, 1, 0, ["one", "two"])
        assert await index_all(db, store) == 2
        emulator.kill()
        await add_chunk(db, job_id, 2, 2, ["three", "four"])
        assert await index_all(db, store) == 0  # refused: kept in the database
        assert backoff_of(store).until > 0
        assert await read_all(store, db, job_id) == [(0, "one"), (1, "two"), (2, "three"), (3, "four")]
        emulator.start()  # an empty cluster on the same port
        backoff_of(store).until = 0  # the pause after a failure is over
        assert await index_all(db, store) == 2
        assert await indexed(store, job_id) == [2, 3]  # the emulator forgot 0 and 1: it keeps nothing on disk
        async with db.transaction() as s:  # older than keep_hours: the database lets them go
            await s.execute(sa.update(LogChunk).values(created=utcnow() - timedelta(hours=2)))
        assert await index_all(db, store) == 0
        async with db.session() as s:
            assert (await s.execute(sa.select(sa.func.count()).select_from(LogChunk))).scalar_one() == 0
    finally:
        await store.close()
