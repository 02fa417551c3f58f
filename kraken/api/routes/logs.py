"""Search across the logs of every job the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from annotated_types import Interval
from fastapi import APIRouter, HTTPException, status

from kraken.api.authz import LoggedInOnly, visible_projects
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.api.state import ServerState
from kraken.logs.active import log_store
from kraken.logs.query import SYNTAX, LogQuery, QueryError, highlights, parse_terms
from kraken.logs.servicelogs import LEVEL_NUMBERS, SERVICES
from kraken.logs.store import ServicePage
from kraken.observability.servicelog import level_name
from kraken.schemas.ints import Id
from kraken.schemas.logs import LogHitOut, LogSearchOut, ServiceLogHitOut

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


def _fragment(line: str, terms: tuple[str, ...]) -> tuple[str, int, list[tuple[int, int]]]:
    spans = highlights(line, terms)
    if len(line) <= FRAGMENT:
        return line, 0, spans
    start = max(0, (spans[0][0] if spans else 0) - FRAGMENT // 4)
    text = line[start : start + FRAGMENT]
    return (
        text,
        start,
        [
            (max(s, start) - start, min(e, start + FRAGMENT) - start)
            for s, e in spans
            if e > start and s < start + FRAGMENT
        ],
    )


def _service_query(
    state: ServerState,
    is_admin: bool,
    service: str | None,
    level: str | None,
    project_id: int | None,
    branch_id: int | None,
) -> tuple[str | None, int | None]:
    """``service=`` and ``level=`` checked: (the service, the least level), or a clear refusal."""
    if service is None:
        if level is not None:
            raise _refuse("level", "level= filters service logs: give service= too (service=all for every service)")
        return None, None
    if not state.runtime.settings.service_logs_store:
        raise _refuse("service", "service logs are not stored by this server (KRAKEN_SERVICE_LOGS_STORE is off)")
    if service not in ("all", *SERVICES):
        raise _refuse("service", f"service must be all or one of {', '.join(SERVICES)}, not {service!r}")
    if level is not None and level not in LEVEL_NUMBERS:
        raise _refuse("level", f"level must be one of {', '.join(LEVEL_NUMBERS)}, not {level!r}")
    for key, value in (("project_id", project_id), ("branch_id", branch_id)):
        if value is not None:
            raise _refuse(key, f"{key}= filters job logs; service log records name flows and jobs only")
    if not is_admin:  # a service's record may name any project
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an administrator may search the service logs")
    return service, LEVEL_NUMBERS[level] if level is not None else None


def _service_hits(page: ServicePage, terms: tuple[str, ...]) -> list[ServiceLogHitOut]:
    hits = []
    for h in page.hits:
        r = h.record
        text, offset, spans = _fragment(r.text, terms)
        hits.append(
            ServiceLogHitOut(
                service=r.service,
                host=r.host,
                pid=r.pid,
                level=level_name(r.level),
                logger=r.logger,
                time=r.time,
                flow_id=r.flow_id,
                run_id=r.run_id,
                job_id=r.job_id,
                text=text,
                text_offset=offset,
                highlights=[list(span) for span in spans],
            )
        )
    return hits


@router.get("/logs/search", response_model=LogSearchOut, dependencies=[LoggedInOnly])
async def search_logs(
    session: SessionDep,
    user: UserDep,
    state: StateDep,
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
    Lines are searchable once the background indexer took them in (within about a second).

    ``service=`` (``all`` or a role: serve, server, controller, worker, agent) searches Kraken's
    own log records instead (``service_hits``; administrators only, with
    ``KRAKEN_SERVICE_LOGS_STORE=true``), ``level=`` (debug ... critical) keeping records at that
    level or above."""
    service, min_level = _service_query(state, user.is_admin, service, level, project_id, branch_id)
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
        service=service,
        min_level=min_level,
    )
    if service is not None:
        found = await log_store().search_service_records(session, query)
        return LogSearchOut(
            hits=[],
            service_hits=_service_hits(found, terms),
            next_cursor=str(found.next_cursor) if found.next_cursor is not None else None,
            syntax=SYNTAX,
            indexed_lines=await log_store().indexed_lines(session),
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
        text, offset, spans = _fragment(h.text, terms)
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
