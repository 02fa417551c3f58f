"""The interface of a log store: storing, reading, streaming and searching a job's lines.

Routes, the job message handlers and the janitor use a store through this interface only, so
that another store (OpenSearch, issue #16) can take the database's place by configuration.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kraken.core.db import Database
from kraken.logs.query import LogQuery


@dataclass(frozen=True)
class LogBatch:
    """Consecutive lines of one job: ``lines[0]`` is line ``first_line`` (0-based) of its log."""

    first_line: int
    step_index: int | None
    lines: list[str]


@dataclass(frozen=True)
class SearchHit:
    line_id: int  # the index row: the keyset of pagination
    job_id: int
    project_id: int
    branch_id: int
    flow_id: int
    step_index: int | None
    line_no: int
    time: datetime
    text: str


@dataclass(frozen=True)
class ServiceRecord:
    """One log record of a Kraken process (``KRAKEN_SERVICE_LOGS_STORE``), masked already."""

    time: datetime
    service: str  # serve, server, controller, worker, agent
    host: str  # the machine; for an agent, its name
    pid: int
    level: int  # logging's number: 10 debug ... 50 critical
    logger: str
    text: str  # the message, and the exception's traceback after a newline
    flow_id: int | None = None
    run_id: int | None = None
    job_id: int | None = None


@dataclass(frozen=True)
class ServiceHit:
    record_id: int  # the keyset of pagination
    record: ServiceRecord


@dataclass
class ServicePage:
    hits: list[ServiceHit] = field(default_factory=list)
    next_cursor: int | None = None


@dataclass
class SearchPage:
    hits: list[SearchHit] = field(default_factory=list)
    next_cursor: int | None = None  # the last hit's line id when more may follow


class LogStore(abc.ABC):
    @abc.abstractmethod
    async def append(
        self, session: AsyncSession, job_id: int, seq: int, step_index: int | None, first_line: int, lines: list[str]
    ) -> None:
        """Store ``lines`` (one agent message, ``seq``) inside the caller's write transaction."""

    @abc.abstractmethod
    def read(self, session: AsyncSession, job_id: int, after_line: int = -1) -> AsyncIterator[LogBatch]:
        """The stored lines of the job after line ``after_line``, in order."""

    @abc.abstractmethod
    def follow(
        self, job_id: int, after_line: int, is_disconnected: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[LogBatch | int]:
        """The stored lines after ``after_line``, then the live ones; ends with the number of lines
        (an ``int``) once the job is completed and every line was given."""

    @abc.abstractmethod
    async def search(self, session: AsyncSession, query: LogQuery, projects: set[int] | None) -> SearchPage:
        """Lines matching ``query`` in the given projects (None: every project), newest first."""

    @abc.abstractmethod
    async def indexed_lines(self, session: AsyncSession) -> int:
        """How many lines the search index holds (lines stored a moment ago may not be in yet)."""

    @abc.abstractmethod
    async def delete_jobs(self, session: AsyncSession, job_ids: list[int]) -> int:
        """Forget the logs of these jobs (retention); the number of stored records removed."""

    @abc.abstractmethod
    async def index_pending(self, db: Database) -> int:
        """Index what was stored since the last call (the background task ``index_logs``); the
        number of lines indexed."""

    @abc.abstractmethod
    async def store_service_records(self, db: Database, records: list[ServiceRecord]) -> None:
        """Store Kraken's own log records (the background flusher of ``kraken.logs.servicelogs``)."""

    @abc.abstractmethod
    async def search_service_records(self, session: AsyncSession, query: LogQuery) -> ServicePage:
        """Service log records matching ``query`` (its ``service`` and ``min_level``), newest first."""

    @abc.abstractmethod
    async def purge_service_records(self, db: Database, before: datetime) -> int:
        """Retention: delete the service log records older than ``before``; how many."""

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections (the end of the process)."""
