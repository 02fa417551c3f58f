"""The OpenSearch log store (``KRAKEN_LOGS_STORE=opensearch``): job logs in OpenSearch, one
document per line, in one index per month (``<prefix>-YYYY.MM``), through ``opensearch-py``'s
async client.

The write path does not change: an agent's lines are one ``log_chunk`` row in the main database,
inside the job message's transaction (``append`` is the database store's). The chunks are the
outbox: ``opensearch_indexer`` copies them to OpenSearch in bulk behind a high-water mark and
deletes them from the database once indexed and older than ``KRAKEN_OPENSEARCH_KEEP_HOURS``. So
a slow or unreachable OpenSearch loses nothing and blocks no job; lines wait in the database.

Reading a job's log takes what the database still holds (always the newest lines of a job:
chunks are deleted oldest first) and asks OpenSearch for the older lines before them only.
Documents have the id ``<job>-<line>``: indexing a line again (a retried bulk) overwrites it, so
every line is there once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from opensearchpy import AsyncOpenSearch
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.bus import Bus
from kraken.core.db import Database
from kraken.logs.database import DatabaseLogStore
from kraken.logs.query import LogQuery
from kraken.logs.store import LogBatch, SearchHit, SearchPage, ServiceHit, ServicePage, ServiceRecord
from kraken.models import Job, LogChunk
from kraken.models.logs import LogIndexState

log = logging.getLogger(__name__)

STATE_ID = 2  # the row of ``log_index_state`` holding this store's mark (1: the database index)
LINE_BITS = 26  # a hit's keyset id: chunk id << LINE_BITS | the line's place in its chunk
PAGE = 5000
TIMEOUT_S = 10.0

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "line_id": {"type": "long"},
        "job_id": {"type": "long"},
        "project_id": {"type": "long"},
        "branch_id": {"type": "long"},
        "flow_id": {"type": "long"},
        "step_index": {"type": "integer"},
        "line_no": {"type": "long"},
        "time": {"type": "date"},
        "text": {"type": "wildcard"},  # substrings in any case, as the database store's trigrams
    },
}


SERVICE_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "record_id": {"type": "long"},  # the keyset: milliseconds << 20 | random bits
        "time": {"type": "date"},
        "service": {"type": "keyword"},
        "host": {"type": "keyword"},
        "pid": {"type": "long"},
        "level": {"type": "integer"},
        "logger": {"type": "keyword"},
        "text": {"type": "wildcard"},
        "flow_id": {"type": "long"},
        "run_id": {"type": "long"},
        "job_id": {"type": "long"},
    },
}


def index_name(prefix: str, when: datetime) -> str:
    return f"{prefix}-{when:%Y.%m}"


def wildcard_escape(term: str) -> str:
    return "".join("\\" + ch if ch in "*?\\" else ch for ch in term)


class OpenSearchLogStore(DatabaseLogStore):
    def __init__(
        self,
        url: str,
        prefix: str = "kraken-logs",
        *,
        db: Database | None = None,
        bus: Bus | None = None,
        keep_hours: float = 24.0,
        retention_months: int | None = None,
    ) -> None:
        super().__init__(db, bus)
        self.url, self.prefix = url, prefix
        self.keep_hours, self.retention_months = keep_hours, retention_months
        self.client = AsyncOpenSearch(hosts=[url], timeout=TIMEOUT_S, max_retries=0)
        self.pattern = f"{prefix}-*"
        # service logs: indices of their own, which the job logs' pattern does not match
        self.service_prefix = f"service-{prefix}"
        self.service_pattern = f"{self.service_prefix}-*"
        self.template_ready = False  # put again after a failure: a new cluster has none
        self.service_template_ready = False

    async def close(self) -> None:
        await self.client.close()

    async def ensure_template(self) -> None:
        if self.template_ready:
            return
        body = {
            "index_patterns": [self.pattern],
            "template": {"settings": {"number_of_shards": 1, "refresh_interval": "1s"}, "mappings": MAPPINGS},
        }
        await self.client.indices.put_index_template(name=self.prefix, body=body)
        self.template_ready = True

    # ---------------------------------------------------------------- reading

    async def read(self, session: AsyncSession, job_id: int, after_line: int = -1) -> AsyncIterator[LogBatch]:
        """The database's chunks of the job; lines before the first of them (indexed, then
        deleted from the database) from OpenSearch."""
        expected = after_line + 1
        job = await session.get(Job, job_id)
        if job is None:
            return
        since = _aware(job.created)
        result = await session.stream_scalars(
            select(LogChunk)
            .where(LogChunk.job_id == job_id, col(LogChunk.first_line) + col(LogChunk.line_count) > expected)
            .order_by(col(LogChunk.first_line))
            .execution_options(yield_per=500)
        )
        any_chunk = False
        async for chunk in result:
            if chunk.first_line > expected and not any_chunk:
                async for batch in self._indexed(job_id, since, expected, chunk.first_line):
                    yield batch
            any_chunk = True
            skip = max(0, expected - chunk.first_line)
            lines = chunk.text.split("\n")
            yield LogBatch(chunk.first_line + skip, chunk.step_index, lines[skip:] if skip else lines)
            expected = chunk.first_line + chunk.line_count
        if not any_chunk:
            async for batch in self._indexed(job_id, since, expected, None):
                yield batch

    async def _indexed(self, job_id: int, since: datetime, begin: int, end: int | None) -> AsyncIterator[LogBatch]:
        """Lines ``begin`` to ``end`` (excluded; None: all) of the job from OpenSearch, in order;
        only lines stored after the job was made (``since``): SQLite gives the id of a deleted
        job again, whose lines may still be in OpenSearch."""
        line_range: dict[str, int] = {"gte": begin}
        if end is not None:
            line_range["lt"] = end
        filters = [
            {"term": {"job_id": job_id}},
            {"range": {"line_no": line_range}},
            {"range": {"time": {"gte": since.isoformat()}}},
        ]
        body: dict[str, Any] = {
            "query": {"bool": {"filter": filters}},
            "sort": [{"line_no": "asc"}],
            "size": PAGE,
            "_source": ["line_no", "step_index", "text"],
        }
        while True:
            found = await self.client.search(index=self.pattern, body=body, ignore_unavailable=True)
            hits = found["hits"]["hits"]
            batch: LogBatch | None = None
            for h in hits:
                src = h["_source"]
                if batch is not None and (
                    src["line_no"] == batch.first_line + len(batch.lines) and src.get("step_index") == batch.step_index
                ):
                    batch.lines.append(src["text"])
                    continue
                if batch is not None:
                    yield batch
                batch = LogBatch(src["line_no"], src.get("step_index"), [src["text"]])
            if batch is not None:
                yield batch
            if len(hits) < PAGE:
                return
            body["search_after"] = hits[-1]["sort"]

    # ---------------------------------------------------------------- search

    async def search(self, session: AsyncSession, query: LogQuery, projects: set[int] | None) -> SearchPage:
        if projects is not None and not projects:
            return SearchPage()
        filters: list[dict[str, Any]] = []
        if projects is not None:
            filters.append({"terms": {"project_id": sorted(projects)}})
        body = _search_body(query, filters, ("project_id", "branch_id", "flow_id", "job_id"), "line_id")
        found = await self.client.search(index=self.pattern, body=body, ignore_unavailable=True)
        rows = [hit_of(h["_source"]) for h in found["hits"]["hits"]]
        page = rows[: query.limit]
        more = len(rows) > query.limit
        cursor = page[-1].line_id if more and page else None
        return SearchPage(hits=await of_live_jobs(session, page), next_cursor=cursor)

    async def indexed_lines(self, session: AsyncSession) -> int:
        """The lines sent to OpenSearch (counted by the indexer: no request to OpenSearch)."""
        stmt = select(col(LogIndexState.indexed_lines)).where(LogIndexState.id == STATE_ID)
        return (await session.execute(stmt)).scalar_one_or_none() or 0

    async def delete_jobs(self, session: AsyncSession, job_ids: list[int]) -> int:
        """From OpenSearch first: when it does not answer, the caller's transaction (the chunks'
        deletion with it) rolls back and retention tries again on its next run."""
        if not job_ids:
            return 0
        await self.client.delete_by_query(
            index=self.pattern,
            body={"query": {"terms": {"job_id": job_ids}}},
            ignore_unavailable=True,
            conflicts="proceed",
            refresh=True,
        )
        result = await session.execute(sa.delete(LogChunk).where(col(LogChunk.job_id).in_(job_ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- indexing

    async def index_pending(self, db: Database) -> int:
        from kraken.logs.opensearch_indexer import index_all

        return await index_all(db, self)

    async def bulk(self, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Index ``(index, id, document)``s; raises when any is refused (nothing is marked done)."""
        await self.ensure_template()
        body: list[dict[str, Any]] = []
        for index, doc_id, doc in docs:
            body.append({"index": {"_index": index, "_id": doc_id}})
            body.append(doc)
        answer = await self.client.bulk(body=body)
        if answer.get("errors"):
            failed = [i["index"] for i in answer["items"] if i.get("index", {}).get("error")]
            raise BulkRefused(f"{len(failed)} of {len(docs)} lines refused; first: {failed[0].get('error')}")

    async def drop_old_indices(self, now: datetime) -> list[str]:
        """Retention: the monthly indices older than ``retention_months`` months."""
        if self.retention_months is None:
            return []
        months = now.year * 12 + now.month - 1 - self.retention_months
        oldest_kept = f"{self.prefix}-{months // 12:04d}.{months % 12 + 1:02d}"
        listed = await self.client.cat.indices(index=self.pattern, format="json")
        old = sorted(i["index"] for i in listed if i["index"] < oldest_kept)
        for name in old:
            await self.client.indices.delete(index=name)
            log.info("log retention: deleted the index %s", name)
        return old

    # ---------------------------------------------------------------- service logs

    async def store_service_records(self, db: Database, records: list[ServiceRecord]) -> None:
        """Straight to OpenSearch in one bulk request (the flusher keeps the records and tries again
        when it fails; they are not kept in the database)."""
        if not self.service_template_ready:
            template = {
                "index_patterns": [self.service_pattern],
                "template": {
                    "settings": {"number_of_shards": 1, "refresh_interval": "1s"},
                    "mappings": SERVICE_MAPPINGS,
                },
            }
            await self.client.indices.put_index_template(name=self.service_prefix, body=template)
            self.service_template_ready = True
        body: list[dict[str, Any]] = []
        for r in records:
            doc = {
                "record_id": (int(r.time.timestamp() * 1000) << 20) | secrets.randbits(20),
                "time": r.time.isoformat(),
                "service": r.service,
                "host": r.host,
                "pid": r.pid,
                "level": r.level,
                "logger": r.logger,
                "text": r.text,
                "flow_id": r.flow_id,
                "run_id": r.run_id,
                "job_id": r.job_id,
            }
            body.append({"index": {"_index": index_name(self.service_prefix, r.time)}})
            body.append(doc)
        try:
            answer = await self.client.bulk(body=body)
        except Exception:
            self.service_template_ready = False  # a restarted cluster may have lost it
            raise
        if answer.get("errors"):
            failed = [i["index"] for i in answer["items"] if i.get("index", {}).get("error")]
            raise BulkRefused(
                f"{len(failed)} of {len(records)} service records refused; first: {failed[0].get('error')}"
            )

    async def search_service_records(self, session: AsyncSession, query: LogQuery) -> ServicePage:
        filters: list[dict[str, Any]] = []
        if query.service not in (None, "all"):
            filters.append({"term": {"service": query.service}})
        if query.min_level is not None:
            filters.append({"range": {"level": {"gte": query.min_level}}})
        body = _search_body(query, filters, ("flow_id", "job_id"), "record_id")
        found = await self.client.search(index=self.service_pattern, body=body, ignore_unavailable=True)
        rows = [
            ServiceHit(
                s["record_id"],
                ServiceRecord(
                    datetime.fromisoformat(s["time"]),
                    s["service"],
                    s["host"],
                    s["pid"],
                    s["level"],
                    s["logger"],
                    s["text"],
                    s.get("flow_id"),
                    s.get("run_id"),
                    s.get("job_id"),
                ),
            )
            for s in (h["_source"] for h in found["hits"]["hits"])
        ]
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return ServicePage(hits=page, next_cursor=page[-1].record_id if more and page else None)

    async def purge_service_records(self, db: Database, before: datetime) -> int:
        answer = await self.client.delete_by_query(
            index=self.service_pattern,
            body={"query": {"range": {"time": {"lt": before.isoformat()}}}},
            ignore_unavailable=True,
            conflicts="proceed",
        )
        return int(answer.get("deleted", 0))


def _wildcards(query: LogQuery) -> list[dict[str, Any]]:
    """Every term occurs in ``text``, in any case (the database store's substring semantics)."""
    return [{"wildcard": {"text": {"value": f"*{wildcard_escape(t)}*", "case_insensitive": True}}} for t in query.terms]


def _search_body(
    query: LogQuery, filters: list[dict[str, Any]], keys: tuple[str, ...], id_field: str
) -> dict[str, Any]:
    """A search request, newest first by `id_field`: the caller's filters, a term for each of
    `keys` the query sets, its time range, its cursor and its words."""
    filters = list(filters)
    filters += [{"term": {key: getattr(query, key)}} for key in keys if getattr(query, key) is not None]
    if query.since is not None or query.until is not None:
        span = {k: v.isoformat() for k, v in (("gte", query.since), ("lt", query.until)) if v is not None}
        filters.append({"range": {"time": span}})
    if query.before_id is not None:
        filters.append({"range": {id_field: {"lt": query.before_id}}})
    return {
        "query": {"bool": {"filter": filters + _wildcards(query)}},
        "sort": [{id_field: "desc"}],
        "size": query.limit + 1,
    }


class BulkRefused(RuntimeError):
    pass


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def hit_of(s: dict[str, Any]) -> SearchHit:
    """A line as this store keeps it (a document's source)."""
    return SearchHit(
        line_id=s["line_id"],
        job_id=s["job_id"],
        project_id=s["project_id"],
        branch_id=s["branch_id"],
        flow_id=s["flow_id"],
        step_index=s.get("step_index"),
        line_no=s["line_no"],
        time=datetime.fromisoformat(s["time"]),
        text=s["text"],
    )


async def of_live_jobs(session: AsyncSession, hits: list[SearchHit]) -> list[SearchHit]:
    """The hits whose job exists, in the hit's project, and was made before the line: the lines
    of a deleted project stay in OpenSearch until retention drops their month, and SQLite gives
    a deleted job's (and project's) id again."""
    if not hits:
        return hits
    stmt = sa.text(LIVE_JOBS).bindparams(sa.bindparam("ids", expanding=True))
    rows = await session.execute(stmt, {"ids": sorted({h.job_id for h in hits})})
    jobs = {int(r.id): (int(r.project_id), _aware(_as_datetime(r.created))) for r in rows}
    return [h for h in hits if h.job_id in jobs and jobs[h.job_id][0] == h.project_id and jobs[h.job_id][1] <= h.time]


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


LIVE_JOBS = (
    "SELECT j.id, j.created, b.project_id FROM job j JOIN run r ON r.id = j.run_id JOIN flow f ON f.id = r.flow_id"
    " JOIN branch b ON b.id = f.branch_id WHERE j.id IN :ids"
)
