"""The search statement of the database store, per dialect: FTS5 ``MATCH`` on SQLite, ``ILIKE``
served by the ``pg_trgm`` GIN index on PostgreSQL.  Both mean "every term occurs in the line,
case ignored", newest line first, keyset-paginated by the line's id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

from kraken.logs.query import LogQuery
from kraken.models.logs import LogLine

COLUMNS = ("id", "job_id", "project_id", "branch_id", "flow_id", "step_index", "line_no", "created", "text")


def fts5_match(terms: tuple[str, ...]) -> str:
    """An FTS5 query: each term a quoted phrase (a substring, with the trigram tokenizer)."""
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)


def like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_statement(dialect: str, query: LogQuery, projects: set[int] | None) -> sa.TextualSelect:
    where: list[str] = []
    params: dict[str, Any] = {"n": query.limit + 1}
    binds: list[sa.BindParameter[Any]] = []
    if dialect == "sqlite":
        source = "log_line_fts f CROSS JOIN log_line l ON l.id = f.rowid"  # the FTS5 table drives: newest first
        where.append("log_line_fts MATCH :m")
        params["m"] = fts5_match(query.terms)
        order = "f.rowid DESC"
        key = "f.rowid"
    else:
        source = "log_line l"
        for i, term in enumerate(query.terms):
            where.append(f"l.text ILIKE :t{i} ESCAPE '\\'")
            params[f"t{i}"] = like_pattern(term)
        order = "l.id DESC"
        key = "l.id"
    if query.before_id is not None:
        where.append(f"{key} < :before")
        params["before"] = query.before_id
    if projects is not None:
        where.append("l.project_id IN :projects")
        binds.append(sa.bindparam("projects", sorted(projects), expanding=True))
    for name in ("project_id", "branch_id", "flow_id", "job_id"):
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
    cols = ", ".join(f"l.{c}" for c in COLUMNS)
    sql = f"SELECT {cols} FROM {source} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT :n"
    table = LogLine.__table__  # type: ignore[attr-defined]
    return sa.text(sql).bindparams(*binds, **params).columns(*(table.c[c] for c in COLUMNS))
