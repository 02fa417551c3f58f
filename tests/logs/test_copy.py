"""``kraken logs copy`` (the real command, in a process of its own) between the database store
and the OpenSearch store, against ``osmem-server`` (an in-memory OpenSearch emulator, see
``tests/support/opensearch_emulator.py``), on both databases: a time range and a project are
copied, a second copy adds nothing, the copied lines are found by search and read back as the
same job log in the target store, a copy goes on after a cursor, and bad input is refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from kraken.core.db import Database
from kraken.core.migrate import upgrade
from kraken.logs.copy import CHUNKS_PER_READ, CopyError, TimeRange, copy_logs
from kraken.logs.database import DatabaseLogStore
from kraken.logs.indexer import index_all as index_database
from kraken.logs.opensearch import OpenSearchLogStore
from kraken.logs.query import LogQuery
from kraken.models import Job, LogChunk
from tests.logs.test_indexer import a_job
from tests.logs.test_opensearch_store import lines_of
from tests.support.opensearch_emulator import OpenSearchEmulator
from tests.support.procs import base_env, free_port

JANUARY = ["--since", "2026-01-01", "--until", "2026-02-01"]
PREFIX = "klog-copy"
TEXTS = ["building", "step one", "", "ERROR ConnectTimeoutError to db-7f3a", "step two", "done"]


@pytest.fixture
def emulator() -> Iterator[OpenSearchEmulator]:
    em = OpenSearchEmulator()
    em.start()
    try:
        yield em
    finally:
        em.stop()


def copy(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kraken", "logs", "copy", "--database-url", database_url, *args]
    return subprocess.run(argv, env=base_env(), capture_output=True, text=True, timeout=120)


async def chunk(db: Database, job_id: int, seq: int, first: int, lines: list[str], created: datetime) -> None:
    async with db.transaction() as s:
        s.add(
            LogChunk(
                job_id=job_id, seq=seq, first_line=first, line_count=len(lines), text="\n".join(lines), created=created
            )
        )


async def seed(db: Database) -> tuple[int, int, int]:
    """Job A (project 1): six lines in two chunks in January 2026 and one in February; job B
    (project 2): two lines in January. Both jobs made in December 2025."""
    a, b = await a_job(db, "pa"), await a_job(db, "pb")
    async with db.transaction() as s:
        await s.execute(sa.update(Job).values(created=datetime(2025, 12, 1, tzinfo=UTC)))
        pa = (
            await s.execute(
                sa.text(
                    "SELECT b.project_id FROM job j JOIN run r ON r.id = j.run_id JOIN flow f"
                    " ON f.id = r.flow_id JOIN branch b ON b.id = f.branch_id WHERE j.id = :j"
                ),
                {"j": a},
            )
        ).scalar_one()
    await chunk(db, a, 1, 0, TEXTS[:3], datetime(2026, 1, 10, 8, tzinfo=UTC))
    await chunk(db, a, 2, 3, TEXTS[3:], datetime(2026, 1, 10, 9, tzinfo=UTC))
    await chunk(db, a, 3, 6, ["february line"], datetime(2026, 2, 3, tzinfo=UTC))
    await chunk(db, b, 1, 0, ["other project timeout", "b2"], datetime(2026, 1, 11, tzinfo=UTC))
    return a, b, int(pa)


async def read_all(store: DatabaseLogStore, db: Database, job_id: int) -> list[tuple[int, str]]:
    async with db.session() as s:
        return lines_of([batch async for batch in store.read(s, job_id)])


async def documents(store: OpenSearchLogStore) -> list[tuple[int, int]]:
    await store.client.indices.refresh(index=store.pattern)
    found = await store.client.search(index=store.pattern, body={"query": {"match_all": {}}, "size": 1000})
    return sorted((h["_source"]["job_id"], h["_source"]["line_no"]) for h in found["hits"]["hits"])


async def chunk_lines(db: Database) -> list[tuple[int, int, int]]:
    async with db.session() as s:
        rows = await s.execute(sa.select(LogChunk.job_id, LogChunk.first_line, LogChunk.line_count))
        return sorted((int(j), int(f), int(n)) for j, f, n in rows.all())


async def test_copy_to_opensearch_and_back(database_url: str, db: Database, emulator: OpenSearchEmulator) -> None:
    a, b, pa = await seed(db)
    os_args = ["--opensearch-url", emulator.url, "--index-prefix", PREFIX]
    to_os = ["--from", "database", "--to", "opensearch", *JANUARY, "--project", str(pa), *os_args]
    database = DatabaseLogStore(db)
    before = await read_all(database, db, a)
    assert before == [*enumerate(TEXTS), (6, "february line")]
    store = OpenSearchLogStore(emulator.url, PREFIX, db=db)
    try:
        dry = copy(database_url, *to_os, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "6 lines of the range in the database store would be copied to OpenSearch" in dry.stdout
        assert await documents(store) == []  # a dry run copies nothing

        first = copy(database_url, *to_os)
        assert first.returncode == 0, first.stderr
        assert "done: 6 lines copied to OpenSearch" in first.stdout
        assert "6/6 lines read (100%)" in first.stdout
        again = copy(database_url, *to_os)
        assert again.returncode == 0, again.stderr
        # the same document ids: the second copy overwrote, nothing is there twice; job B (another
        # project) and February's line (outside the range) were not copied
        assert await documents(store) == [(a, n) for n in range(6)]

        # the OpenSearch store, once the database let the chunks go: the same log, and search finds it
        async with db.transaction() as s:
            await s.execute(sa.delete(LogChunk).where(LogChunk.job_id == a, LogChunk.first_line < 6))
        async with db.session() as s:
            assert lines_of([x async for x in store.read(s, a)]) == before
            hits = (await store.search(s, LogQuery(terms=("timeout", "db-7f")), None)).hits
            assert [(h.job_id, h.line_no, h.text) for h in hits] == [(a, 3, TEXTS[3])]

        # back to the database: the deleted chunks come back as one chunk of the same lines
        to_db = ["--from", "opensearch", "--to", "database", *JANUARY, *os_args]
        dry = copy(database_url, *to_db, "--dry-run")
        assert "6 lines of the range in the opensearch store would be copied to the database" in dry.stdout
        back = copy(database_url, *to_db)
        assert back.returncode == 0, back.stderr
        assert "done: 3 lines copied to the database, 3 already there" not in back.stdout
        assert "done: 6 lines copied to the database, 0 already there" in back.stdout
        assert await read_all(database, db, a) == before
        chunks = await chunk_lines(db)
        assert chunks == sorted([(a, 0, 3), (a, 3, 3), (a, 6, 1), (b, 0, 2)])  # one chunk per stored time
        twice = copy(database_url, *to_db)
        assert "done: 0 lines copied to the database, 6 already there" in twice.stdout, twice.stdout
        assert await chunk_lines(db) == chunks
        assert (await index_database(db, settle=False)).lines == 8  # blank lines are not indexed
        async with db.session() as s:
            hits = (await database.search(s, LogQuery(terms=("timeout",)), {pa})).hits
            assert [(h.job_id, h.line_no) for h in hits] == [(a, 3)]
    finally:
        await store.close()


async def test_copy_goes_on_after_a_cursor(database_url: str, db: Database, emulator: OpenSearchEmulator) -> None:
    a, b, _ = await seed(db)
    os_args = ["--opensearch-url", emulator.url, "--index-prefix", PREFIX]
    async with db.session() as s:
        first_chunk = (await s.execute(sa.select(sa.func.min(LogChunk.id)))).scalar_one()
    done = copy(
        database_url, "--from", "database", "--to", "opensearch", *JANUARY, "--after", str(first_chunk), *os_args
    )
    assert done.returncode == 0, done.stderr
    store = OpenSearchLogStore(emulator.url, PREFIX, db=db)
    try:
        assert await documents(store) == [(a, 3), (a, 4), (a, 5), (b, 0), (b, 1)]
        async with db.transaction() as s:
            await s.execute(sa.delete(LogChunk))
        back = copy(database_url, "--from", "opensearch", "--to", "database", *JANUARY, "--after", f"{a}:4", *os_args)
        assert back.returncode == 0, back.stderr
        assert f"3/3 lines read (100%): 3 copied, 0 skipped; cursor {b}:1" in back.stdout
        assert await chunk_lines(db) == [(a, 5, 1), (b, 0, 2)]
    finally:
        await store.close()


async def test_bad_input_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/kraken.db"
    await upgrade(url)
    nobody = f"http://127.0.0.1:{free_port()}"
    for args, error in [
        (
            ["--since", "2026-02-01", "--until", "2026-01-01"],
            "--until (2026-01-01T00:00:00+00:00) must be after --since",
        ),
        (["--since", "2026-13-01", "--until", "2027-01-01"], "--since: '2026-13-01' is not an ISO date or time"),
        ([*JANUARY, "--project", "999"], "--project 999: no such project in the database"),
        ([*JANUARY, "--after", "x:y"], "--after: 'x:y' is not a cursor of a copy from the database"),
        ([*JANUARY, "--opensearch-url", "ftp://h"], "--opensearch-url: 'ftp://h' is not an http:// or https:// URL"),
        ([*JANUARY, "--opensearch-url", nobody.replace("//", "//u:secret@")], "OpenSearch at http://u:***@127.0.0.1:"),
    ]:
        if "--opensearch-url" not in args:
            args += ["--opensearch-url", nobody]
        result = copy(url, "--from", "database", "--to", "opensearch", *args)
        assert result.returncode == 2, result.stdout
        assert error in result.stderr, result.stderr
        assert "secret" not in result.stderr and "Traceback" not in result.stderr
    same = copy(url, "--from", "database", "--to", "database", *JANUARY)
    assert same.returncode == 2 and "one is database, the other opensearch" in same.stderr
    down = copy(
        f"postgresql+asyncpg://postgres:pw@127.0.0.1:{free_port()}/none",
        *("--from", "database", "--to", "opensearch", *JANUARY, "--opensearch-url", nobody),
    )
    assert down.returncode == 2
    assert "the database at postgresql+asyncpg://postgres:***@127.0.0.1:" in down.stderr
    assert "cannot be read" in down.stderr


async def test_a_copy_stopped_midway_says_where_to_go_on(
    database_url: str, db: Database, emulator: OpenSearchEmulator
) -> None:
    """OpenSearch goes away after the first bulk request: the copy (after its retries) stops
    naming the cursor, and a copy ``--after`` it (OpenSearch back, empty: the emulator keeps
    nothing) sends the rest."""
    job = await a_job(db, "big")
    async with db.transaction() as s:
        await s.execute(sa.update(Job).values(created=datetime(2025, 12, 1, tzinfo=UTC)))
        when = datetime(2026, 1, 5, tzinfo=UTC)
        s.add_all(  # one read of chunks more than a bulk request takes
            LogChunk(job_id=job, seq=n, first_line=n, line_count=1, text=f"line {n}", created=when)
            for n in range(CHUNKS_PER_READ + 1)
        )
    rng = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    said: list[str] = []

    def echo(line: str) -> None:
        said.append(line)
        if len(said) == 1:
            emulator.kill()

    with pytest.raises(CopyError) as stopped:
        await copy_logs(database_url, emulator.url, PREFIX, "database", rng, None, False, echo)
    async with db.session() as s:
        ids = (await s.execute(sa.select(LogChunk.id).order_by(LogChunk.id))).scalars().all()
    cursor = ids[CHUNKS_PER_READ - 1]
    n = CHUNKS_PER_READ
    assert said == [f"{n}/{n + 1} lines read (99%): {n} copied, 0 skipped; cursor {cursor}"], stopped.value
    assert f"go on with --after {cursor}" in str(stopped.value)
    emulator.start()
    done = await copy_logs(database_url, emulator.url, PREFIX, "database", rng, str(cursor), False, said.append)
    assert done.copied == 1
    store = OpenSearchLogStore(emulator.url, PREFIX, db=db)
    try:
        assert await documents(store) == [(job, n)]  # the last chunk's line only
    finally:
        await store.close()
