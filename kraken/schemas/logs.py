"""API shapes of the log search (``GET /api/logs/search``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LogHitOut(BaseModel):
    project_id: int
    project_name: str
    branch_id: int
    branch_name: str
    flow_id: int
    run_id: int
    job_id: int
    job_name: str
    step_index: int | None
    line: int  # 0-based line number in the job's log (the job page's #L<line+1> anchor)
    time: datetime
    text: str  # the line (at most FRAGMENT characters around the first match)
    text_offset: int  # where ``text`` starts in the line
    highlights: list[list[int]]  # [start, end) spans of ``text`` that matched


class ServiceLogHitOut(BaseModel):
    """A log record of a Kraken process (``service=``; administrators only)."""

    service: str  # serve, server, controller, worker, agent
    host: str  # the machine; for an agent, its name
    pid: int
    level: str  # debug, info, warning, error, critical
    logger: str
    time: datetime
    flow_id: int | None
    run_id: int | None
    job_id: int | None
    text: str  # the message (and traceback), at most FRAGMENT characters around the first match
    text_offset: int
    highlights: list[list[int]]


class LogSearchOut(BaseModel):
    hits: list[LogHitOut]
    service_hits: list[ServiceLogHitOut] = []  # with service=: the service logs' hits (``hits`` is empty)
    next_cursor: str | None  # pass as ``cursor`` for the next page; null on the last page
    syntax: str
    indexed_lines: int  # lines in the search index so far (lines stored a moment ago may not be in yet)
