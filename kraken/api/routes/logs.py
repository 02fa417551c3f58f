"""Search across the logs of every job the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from annotated_types import Interval
from fastapi import APIRouter, HTTPException, status

from kraken.api.authz import LoggedInOnly, visible_projects
from kraken.api.deps import SessionDep, UserDep
from kraken.logs.active import log_store
from kraken.logs.query import SYNTAX, LogQuery, QueryError, highlights, parse_terms
from kraken.logs.store import SearchHit
from kraken.schemas.ints import Id
from kraken.schemas.logs import LogHitOut, LogSearchOut

router = APIRouter(tags=["logs"])

FRAGMENT = 400  # characters of a long line returned around its first match
Limit = Annotated[int, Interval(ge=1, le=200)]

NAMES = """
SELECT j.id, j.name, r.id AS run_id, b.name AS branch, p.name AS project
FROM job j JOIN run r ON r.id = j.run_id JOIN flow f ON f.id = r.flow_id
JOIN branch b ON b.id = f.branch_id JOIN project p ON p.id = b.project_id WHERE j.id IN :ids
"""


def _refuse(key: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_ENTITY, [{"loc": ["query", key], "msg": message, "type": "value_error"}]
    )


def _utc(value: datetime | None) -> datetime | None:
    """A time without an offset is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def _fragment(hit: SearchHit, terms: tuple[str, ...]) -> tuple[str, int, list[tuple[int, int]]]:
    spans = highlights(hit.text, terms)
    if len(hit.text) <= FRAGMENT:
        return hit.text, 0, spans
    start = max(0, (spans[0][0] if spans else 0) - FRAGMENT // 4)
    text = hit.text[start : start + FRAGMENT]
    return (
        text,
        start,
        [
            (max(s, start) - start, min(e, start + FRAGMENT) - start)
            for s, e in spans
            if e > start and s < start + FRAGMENT
        ],
    )


@router.get("/logs/search", response_model=LogSearchOut, dependencies=[LoggedInOnly])
async def search_logs(
    session: SessionDep,
    user: UserDep,
    q: str,
    project_id: Id | None = None,
    branch_id: Id | None = None,
    flow_id: Id | None = None,
    job_id: Id | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
    service: str | None = None,
    level: str | None = None,
) -> LogSearchOut:
    """Lines of job logs containing every term of ``q`` (syntax in ``syntax``), newest first,
    in the projects the caller can see; ``cursor`` (the previous page's ``next_cursor``) pages on.
    Lines are searchable once the background indexer took them in (within about a second)."""
    for key, value in (("service", service), ("level", level)):
        if value is not None:
            raise _refuse(key, f"{key}= filters service logs, which this server does not store (job logs only)")
    try:
        terms = parse_terms(q)
    except QueryError as exc:
        raise _refuse("q", str(exc)) from exc
    before: int | None = None
    if cursor is not None:
        if not cursor.isdigit() or not 1 <= int(cursor) < 2**63:
            raise _refuse("cursor", "not a cursor this search returned (next_cursor)")
        before = int(cursor)
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise _refuse("since", "since must be before until")
    query = LogQuery(
        terms=terms,
        project_id=project_id,
        branch_id=branch_id,
        flow_id=flow_id,
        job_id=job_id,
        since=since,
        until=until,
        limit=limit,
        before_id=before,
    )
    page = await log_store().search(session, query, await visible_projects(session, user))
    names = {}
    if page.hits:
        stmt = sa.text(NAMES).bindparams(sa.bindparam("ids", expanding=True))
        rows = await session.execute(stmt, {"ids": sorted({h.job_id for h in page.hits})})
        names = {r.id: r for r in rows}
    hits = []
    for h in page.hits:
        n = names.get(h.job_id)
        if n is None:  # the job was deleted since the line was indexed
            continue
        text, offset, spans = _fragment(h, terms)
        hits.append(
            LogHitOut(
                project_id=h.project_id,
                project_name=n.project,
                branch_id=h.branch_id,
                branch_name=n.branch,
                flow_id=h.flow_id,
                run_id=n.run_id,
                job_id=h.job_id,
                job_name=n.name,
                step_index=h.step_index,
                line=h.line_no,
                time=h.time,
                text=text,
                text_offset=offset,
                highlights=[list(span) for span in spans],
            )
        )
    indexed = await log_store().indexed_lines(session)
    return LogSearchOut(
        hits=hits,
        next_cursor=str(page.next_cursor) if page.next_cursor is not None else None,
        syntax=SYNTAX,
        indexed_lines=indexed,
    )
