"""The search statement of the database store on PostgreSQL: ``ILIKE`` per term, served by the
``pg_trgm`` GIN index ("every term occurs in the line, case ignored", as the FTS5 trigram
query of ``sqlite_index`` on SQLite), newest line first, keyset-paginated by the line's id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

from kraken.logs.query import LogQuery
from kraken.models.logs import LogLine, ServiceLog

COLUMNS = ("id", "job_id", "project_id", "branch_id", "flow_id", "step_index", "line_no", "created", "text")


def like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# a caller who sees at most this many projects (and more than one) is searched one project at a
# time, newest first in each, merged: see ``search_statement``
MAX_BRANCHES = 32


def search_statement(query: LogQuery, projects: set[int] | None) -> sa.TextualSelect:
    """Newest matching lines first, ``query.limit + 1`` of them.

    A caller who sees some of the projects only (and asks for none in particular) gets one
    branch per visible project, each reading its project's lines newest first (the index on
    ``(project_id, id)``) and stopping at the limit, merged by a ``UNION ALL``:
    one statement over every project's lines would read the newest lines of every project
    backwards and drop those of the projects not visible, most of them for a common word.
    Each branch is planned on its own: a rare word goes through the trigram index instead.
    """
    where, params, binds = _conditions(query, ("project_id", "branch_id", "flow_id", "job_id"))
    cols = ", ".join(f"l.{c}" for c in COLUMNS)
    if projects is not None and 1 < len(projects) <= MAX_BRANCHES and query.project_id is None:
        branches = []
        for project in sorted(projects):
            # ``= ANY(ARRAY[p])``, not ``= p``: with an equality the planner drops ``project_id``
            # from the order and takes the primary key backwards (filtering out the other
            # projects' lines, 140 000 of them for a common word at 10 M lines) instead of
            # ``ix_log_line_project_id_id`` (0.3 ms)
            branch = " AND ".join([*where, f"l.project_id = ANY(ARRAY[{int(project)}])"])
            branches.append(
                f"(SELECT {cols} FROM log_line l WHERE {branch} ORDER BY l.project_id DESC, l.id DESC LIMIT :n)"
            )
        sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) l ORDER BY l.id DESC LIMIT :n"
    else:
        if projects is not None:
            where.append("l.project_id IN :projects")
            binds.append(sa.bindparam("projects", sorted(projects), expanding=True))
        sql = f"SELECT {cols} FROM log_line l WHERE {' AND '.join(where)} ORDER BY l.id DESC LIMIT :n"
    table = LogLine.__table__  # type: ignore[attr-defined]
    return sa.text(sql).bindparams(*binds, **params).columns(*(table.c[c] for c in COLUMNS))


SERVICE_COLUMNS = ("id", "created", "service", "host", "pid", "level", "logger", "text", "flow_id", "run_id", "job_id")


def service_search_statement(query: LogQuery) -> sa.TextualSelect:
    """The service logs' search (``service_log``): the same ILIKE terms, keyset and time range."""
    where, params, binds = _conditions(query, ("flow_id", "job_id"))
    if query.service not in (None, "all"):
        where.append("l.service = :service")
        params["service"] = query.service
    if query.min_level is not None:
        where.append("l.level >= :level")
        params["level"] = query.min_level
    cols = ", ".join(f"l.{c}" for c in SERVICE_COLUMNS)
    sql = f"SELECT {cols} FROM service_log l WHERE {' AND '.join(where)} ORDER BY l.id DESC LIMIT :n"
    table = ServiceLog.__table__  # type: ignore[attr-defined]
    return sa.text(sql).bindparams(*binds, **params).columns(*(table.c[c] for c in SERVICE_COLUMNS))


def _conditions(
    query: LogQuery, keys: tuple[str, ...]
) -> tuple[list[str], dict[str, Any], list[sa.BindParameter[Any]]]:
    """The WHERE conditions both searches share (on alias ``l``): each word as an ILIKE, the
    keyset cursor, an equality for each of `keys` the query sets, and the time range."""
    where: list[str] = []
    params: dict[str, Any] = {"n": query.limit + 1}
    binds: list[sa.BindParameter[Any]] = []
    for i, term in enumerate(query.terms):
        where.append(f"l.text ILIKE :t{i} ESCAPE '\\'")
        params[f"t{i}"] = like_pattern(term)
    if query.before_id is not None:
        where.append("l.id < :before")
        params["before"] = query.before_id
    for name in keys:
        value = getattr(query, name)
        if value is not None:
            where.append(f"l.{name} = :{name}")
            params[name] = value
    if query.since is not None:
        where.append("l.created >= :since")
        binds.append(sa.bindparam("since", query.since, type_=UTCDateTime))
    if query.until is not None:
        where.append("l.created < :until")
        binds.append(sa.bindparam("until", query.until, type_=UTCDateTime))
    return where, params, binds
