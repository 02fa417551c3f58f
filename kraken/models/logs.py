"""The log search index: one row per stored log line, filled from ``log_chunk`` by a background
task (``kraken.logs.indexer``), never by the write path, so storing lines stays as fast as it was.

On SQLite the full-text index is an FTS5 table (trigram tokenizer) whose content is
``log_line`` (external content, kept in step by triggers); on PostgreSQL a ``pg_trgm`` GIN index
on ``log_line.text``.  Both answer substring queries.  Those objects are made by migration 0021
only (they are not SQLModel tables): ``alembic/env.py`` leaves them out of the model comparison.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import json_field


class LogLine(SQLModel, table=True):
    """One indexed line, with where it belongs (for the filters and roles of a search)."""

    __tablename__ = "log_line"
    __table_args__ = (sa.Index("ix_log_line_project_id_id", "project_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE", index=True)
    project_id: int
    branch_id: int
    flow_id: int
    step_index: int | None = None
    line_no: int  # 0-based line number in the job's log
    created: datetime
    text: str


class LogIndexState(SQLModel, table=True):
    """The indexer's high-water mark: every chunk with ``id <= last_chunk_id`` was indexed, except
    the ``gaps`` (ids skipped because they were not committed yet when a later id was seen)."""

    __tablename__ = "log_index_state"
    id: int = Field(default=1, primary_key=True)
    last_chunk_id: int = 0
    partial_chunk_id: int | None = None  # the next chunk, of which the first ``partial_line`` lines are indexed
    partial_line: int = 0
    gaps: list[Any] = json_field(list)  # [[chunk id, unix time first missed], ...]
    indexed_lines: int = 0
    updated: datetime | None = None


class ServiceLog(SQLModel, table=True):
    """One log record of a Kraken process (``KRAKEN_SERVICE_LOGS_STORE``): PostgreSQL only, with a
    ``pg_trgm`` GIN index on ``text`` (migration 0028) as ``log_line``; on SQLite the table lives
    in the log search's own file (``kraken.logs.sqlite_index``)."""

    __tablename__ = "service_log"
    id: int | None = Field(default=None, primary_key=True)
    created: datetime = Field(index=True)
    service: str
    host: str
    pid: int
    level: int
    logger: str
    text: str
    flow_id: int | None = None
    run_id: int | None = None
    job_id: int | None = None
