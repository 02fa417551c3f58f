"""Copying a time range of job logs from one store to the other (``kraken logs copy``): the
migration between the database store and the OpenSearch store (``docs/logs.md``).

- database -> OpenSearch: the ``log_chunk`` rows stored in the range, in chunk id order, sent in
  bulk as the OpenSearch indexer sends them (``opensearch_indexer.documents``: the document id is
  ``<job>-<line>``), so a line sent twice overwrites itself.
- OpenSearch -> database: the documents of the range, in (job, line) order, made into
  ``log_chunk`` rows again; a line the database already holds (a chunk covering its number) is
  skipped, and a document whose job no longer exists (or is another job with a reused id) is
  not copied. The background indexer then adds the new chunks to the database's search index.

Both are idempotent (running a copy again adds nothing) and resumable: each batch reports its
cursor (the last chunk id, or ``job:line``) and ``after`` starts past it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

from kraken.core.db import Database
from kraken.logs.opensearch import OpenSearchLogStore, hit_of, of_live_jobs
from kraken.logs.opensearch_indexer import documents
from kraken.logs.plan import CHUNK_JOINS, CHUNK_TIME, CHUNKS
from kraken.logs.store import SearchHit
from kraken.models import LogChunk

BATCH_LINES = 5000
CHUNKS_PER_READ = 200
RETRY_DELAYS_S = (1.0, 2.0)
T = TypeVar("T")
log = logging.getLogger(__name__)


class CopyError(RuntimeError):
    """A copy that cannot start or go on; the message says what (and where to resume)."""


@dataclass(frozen=True)
class TimeRange:
    since: datetime
    until: datetime
    projects: tuple[int, ...] = ()  # empty: every project

    def __post_init__(self) -> None:
        if self.since >= self.until:
            raise CopyError(f"--until ({self.until.isoformat()}) must be after --since ({self.since.isoformat()})")


@dataclass
class Progress:
    total: int  # lines in the range (counted at the start)
    done: int = 0  # lines read from the source so far
    copied: int = 0  # lines written to the target
    skipped: int = 0  # lines the target already held, or of jobs that no longer exist
    cursor: str = ""  # give it as ``after`` to go on after this point


Report = Callable[[Progress], None]


def parse_time(option: str, value: str) -> datetime:
    """An ISO date or time; no offset means UTC."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CopyError(f"{option}: {value!r} is not an ISO date or time (2026-01-31, 2026-01-31T12:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, again after 1 s and 2 s when it fails (a busy cluster, a timeout)."""
    for delay in RETRY_DELAYS_S:
        try:
            return await call()
        except Exception as exc:
            log.warning("OpenSearch request failed (%s), again in %.0f s", exc, delay)
            await asyncio.sleep(delay)
    return await call()


# ------------------------------------------------------------------ database -> OpenSearch


def _chunk_filter(rng: TimeRange) -> tuple[str, list[sa.BindParameter[Any]]]:
    where = f"WHERE c.id > :after AND {CHUNK_TIME} >= :since AND {CHUNK_TIME} < :until"
    binds = [
        sa.bindparam("since", rng.since, type_=UTCDateTime),
        sa.bindparam("until", rng.until, type_=UTCDateTime),
    ]
    if rng.projects:
        where += " AND b.project_id IN :projects"
        binds.append(sa.bindparam("projects", list(rng.projects), expanding=True))
    return where, binds


def _chunk_after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(cursor)
    except ValueError:
        raise CopyError(f"--after: {cursor!r} is not a cursor of a copy from the database (a chunk id)") from None


async def count_database(db: Database, rng: TimeRange, after: str | None = None) -> int:
    where, binds = _chunk_filter(rng)
    stmt = sa.text("SELECT COALESCE(SUM(c.line_count), 0)" + CHUNK_JOINS.format(p="") + where).bindparams(*binds)
    async with db.session() as session:
        return int((await session.execute(stmt, {"after": _chunk_after(after)})).scalar_one())


async def database_to_opensearch(
    db: Database, store: OpenSearchLogStore, rng: TimeRange, after: str | None, report: Report
) -> Progress:
    progress = Progress(total=await count_database(db, rng, after), cursor=after or "")
    last = _chunk_after(after)
    where, binds = _chunk_filter(rng)
    stmt = sa.text(CHUNKS.format(p="") + where + " ORDER BY c.id LIMIT :n").bindparams(*binds)
    while True:
        async with db.session() as session:
            chunks = list((await session.execute(stmt, {"after": last, "n": CHUNKS_PER_READ})).all())
        if not chunks:
            return progress
        batch: list[Any] = []
        for i, chunk in enumerate(chunks):
            batch.append(chunk)
            if sum(c.line_count for c in batch) >= BATCH_LINES or i == len(chunks) - 1:
                docs = documents([(c, 0, c.line_count) for c in batch], store.prefix)
                try:
                    if docs:
                        await _retrying(functools.partial(store.bulk, docs))
                except Exception as exc:  # unreachable, refusing: say where to go on from
                    raise CopyError(f"OpenSearch failed after chunk {last} ({exc}); go on with --after {last}") from exc
                last = int(batch[-1].id)
                progress.done += len(docs)
                progress.copied += len(docs)
                progress.cursor = str(last)
                report(progress)
                batch = []


# ------------------------------------------------------------------ OpenSearch -> database


def _opensearch_query(rng: TimeRange) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"range": {"time": {"gte": rng.since.isoformat(), "lt": rng.until.isoformat()}}}]
    if rng.projects:
        filters.append({"terms": {"project_id": list(rng.projects)}})
    return {"bool": {"filter": filters}}


def _line_after(cursor: str | None) -> list[int] | None:
    if not cursor:
        return None
    job, _, line = cursor.partition(":")
    try:
        return [int(job), int(line)]
    except ValueError:
        raise CopyError(f"--after: {cursor!r} is not a cursor of a copy from OpenSearch (job:line)") from None


async def count_opensearch(store: OpenSearchLogStore, rng: TimeRange, after: str | None = None) -> int:
    query = _opensearch_query(rng)
    start = _line_after(after)
    if start is not None:  # lines after (job, line): the job's later lines and the later jobs'
        query["bool"]["filter"].append(
            {
                "bool": {
                    "should": [
                        {"range": {"job_id": {"gt": start[0]}}},
                        {
                            "bool": {
                                "filter": [
                                    {"term": {"job_id": start[0]}},
                                    {"range": {"line_no": {"gt": start[1]}}},
                                ]
                            }
                        },
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    found = await store.client.count(index=store.pattern, body={"query": query}, ignore_unavailable=True)
    return int(found["count"])


def _pieces(hits: list[SearchHit], covered: dict[int, list[tuple[int, int]]]) -> list[LogChunk]:
    """Chunks of the consecutive lines (same job, step and time) the database does not hold."""
    out: list[LogChunk] = []
    run: list[SearchHit] = []

    def flush() -> None:
        if run:
            first = run[0]
            out.append(
                LogChunk(
                    job_id=first.job_id,
                    seq=-1 - first.line_no,  # agents number their messages from 0 up: never taken
                    step_index=first.step_index,
                    first_line=first.line_no,
                    line_count=len(run),
                    text="\n".join(h.text for h in run),
                    created=first.time.astimezone(UTC),
                )
            )
            run.clear()

    for hit in hits:
        if any(a <= hit.line_no < b for a, b in covered.get(hit.job_id, ())):
            flush()
            continue
        prev = run[-1] if run else None
        if prev is not None and not (
            hit.job_id == prev.job_id
            and hit.line_no == prev.line_no + 1
            and hit.step_index == prev.step_index
            and hit.time == prev.time
        ):
            flush()
        run.append(hit)
    flush()
    return out


async def opensearch_to_database(
    db: Database, store: OpenSearchLogStore, rng: TimeRange, after: str | None, report: Report
) -> Progress:
    progress = Progress(total=await count_opensearch(store, rng, after), cursor=after or "")
    body: dict[str, Any] = {
        "query": _opensearch_query(rng),
        "sort": [{"job_id": "asc"}, {"line_no": "asc"}],
        "size": BATCH_LINES,
    }
    start = _line_after(after)
    if start is not None:
        body["search_after"] = start
    while True:
        try:
            found = await _retrying(
                lambda: store.client.search(index=store.pattern, body=body, ignore_unavailable=True)
            )
        except Exception as exc:
            where = f"; go on with --after {progress.cursor}" if progress.cursor else ""
            raise CopyError(f"OpenSearch failed ({exc}){where}") from exc
        raw = found["hits"]["hits"]
        if not raw:
            return progress
        hits = [hit_of(h["_source"]) for h in raw]
        async with db.transaction() as session:
            live = await of_live_jobs(session, hits)
            jobs = sorted({h.job_id for h in live})
            covered: dict[int, list[tuple[int, int]]] = {}
            if jobs:
                stmt = sa.text("SELECT job_id, first_line, line_count FROM log_chunk WHERE job_id IN :jobs")
                rows = await session.execute(stmt.bindparams(sa.bindparam("jobs", expanding=True)), {"jobs": jobs})
                for job_id, first, count in rows.all():
                    covered.setdefault(int(job_id), []).append((int(first), int(first) + int(count)))
            chunks = _pieces(live, covered)
            session.add_all(chunks)
        copied = sum(c.line_count for c in chunks)
        progress.done += len(hits)
        progress.copied += copied
        progress.skipped += len(hits) - copied
        progress.cursor = f"{hits[-1].job_id}:{hits[-1].line_no}"
        report(progress)
        body["search_after"] = [hits[-1].job_id, hits[-1].line_no]


# ------------------------------------------------------------------ the command


def _shown(url: str) -> str:
    """A URL without its password (error messages and progress may be logged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def _check_database(db: Database, url: str, projects: tuple[int, ...]) -> None:
    try:
        async with db.session() as session:
            await session.execute(sa.text("SELECT 1 FROM log_chunk LIMIT 1"))
            if projects:
                stmt = sa.text("SELECT id FROM project WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                )
                known = {int(i) for i in (await session.execute(stmt, {"ids": list(projects)})).scalars()}
                missing = sorted(set(projects) - known)
                if missing:
                    raise CopyError(f"--project {missing[0]}: no such project in the database")
    except CopyError:
        raise
    except Exception as exc:
        raise CopyError(
            f"the database at {sa.make_url(url).render_as_string(hide_password=True)} cannot be read"
            f" (down, or not migrated: kraken db upgrade): {type(exc).__name__}: {exc}"
        ) from exc


async def _check_opensearch(store: OpenSearchLogStore) -> None:
    try:
        await store.client.info()
    except Exception as exc:
        raise CopyError(f"OpenSearch at {_shown(store.url)} does not answer: {type(exc).__name__}: {exc}") from exc


async def copy_logs(
    database_url: str,
    opensearch_url: str,
    prefix: str,
    source: str,
    rng: TimeRange,
    after: str | None,
    dry_run: bool,
    echo: Callable[[str], None],
) -> Progress:
    """``kraken logs copy``: ``source`` is ``database`` (to OpenSearch) or ``opensearch`` (to the
    database). With ``dry_run``, only the lines of the range are counted."""
    if not opensearch_url.startswith(("http://", "https://")):
        raise CopyError(f"--opensearch-url: {_shown(opensearch_url)!r} is not an http:// or https:// URL")
    to_opensearch = source == "database"
    _chunk_after(after) if to_opensearch else _line_after(after)  # a malformed cursor: refused before connecting
    logging.getLogger("opensearch").setLevel(logging.ERROR)  # its failed requests: reported once, below
    db = Database(database_url)
    store = OpenSearchLogStore(opensearch_url, prefix, db=db)
    try:
        await _check_database(db, database_url, rng.projects)
        await _check_opensearch(store)
        target = "OpenSearch" if to_opensearch else "the database"
        if dry_run:
            total = await (count_database(db, rng, after) if to_opensearch else count_opensearch(store, rng, after))
            echo(f"{total} lines of the range in the {source} store would be copied to {target} (dry run)")
            return Progress(total=total)
        copy = database_to_opensearch if to_opensearch else opensearch_to_database

        cursor = after

        def report(p: Progress) -> None:
            nonlocal cursor
            cursor = p.cursor
            share = f" ({100 * p.done // p.total}%)" if p.total else ""
            echo(f"{p.done}/{p.total} lines read{share}: {p.copied} copied, {p.skipped} skipped; cursor {p.cursor}")

        try:
            done = await copy(db, store, rng, after, report)
        except CopyError:
            raise
        except Exception as exc:  # the database went away midway, ...: what was copied stays copied
            again = f"; go on with --after {cursor}" if cursor else "; run it again"
            raise CopyError(f"stopped: {type(exc).__name__}: {exc}{again}") from exc
        echo(f"done: {done.copied} lines copied to {target}, {done.skipped} already there or of deleted jobs")
        return done
    finally:
        await store.close()
        await db.dispose()
