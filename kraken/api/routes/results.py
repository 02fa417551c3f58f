"""Test results, summaries, issues and test history.

- ``GET /runs/{id}/results``: a run's analysed results, most relevant first, filtered and
  keyset-paginated (``next_cursor``): deep pages cost what the first one does.
- ``GET /runs/{id}/summary``, ``GET /flows/{id}/summary``: totals per status and change,
  flaky, performance changes, issues; ``analysis`` says whether results are still pending.
- ``GET /runs/{id}/issues``: linter findings, new ones marked.
- ``GET /test-cases/{id}/history``: a test's recent results (flows, statuses, values).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from kraken.core.db import Database
from kraken.results.statuses import (
    CHANGE_CODES,
    CHANGE_FIX,
    CHANGE_NAMES,
    CHANGE_NONE,
    CHANGE_REGRESSION,
    ERROR,
    FAILED,
    PERF_NAMES,
    STATUS_CODES,
    STATUS_NAMES,
    flaky_rules,
)
from kraken.results.summary import combine, flow_summary, job_summaries, run_summary
from kraken.schemas.ints import INT64_MAX, INT64_MIN, Id

router = APIRouter(tags=["results"])

SORTS = ("relevancy", "id", "-id", "-duration")


def get_db(request: Request) -> Database:
    state = request.app.state
    kraken_state = getattr(state, "kraken", None)
    if kraken_state is not None:
        return kraken_state.runtime.db  # type: ignore[no-any-return]
    return state.db  # type: ignore[no-any-return]


async def require_user(request: Request) -> None:
    """In the Kraken app, the logged-in user is required (a bare app in tests has no users)."""
    if getattr(request.app.state, "kraken", None) is None:
        return
    from kraken.api.deps import bearer, current_user

    await current_user(request, await bearer(request))


DbDep = Annotated[Database, Depends(get_db)]
Auth = Depends(require_user)


def _codes(value: str | None, codes: dict[str, int], what: str) -> list[int] | None:
    if not value:
        return None
    out = []
    for name in value.split(","):
        name = name.strip()
        if name not in codes:
            raise HTTPException(422, f"unknown {what} {name!r}: one of {sorted(codes)}")
        out.append(codes[name])
    return out


def _encode(*parts: float | int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def _number(p: object) -> bool:
    return isinstance(p, float) or (isinstance(p, int) and INT64_MIN <= p <= INT64_MAX)


def _decode(cursor: str, n: int) -> list[Any]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        parts = None
    if not isinstance(parts, list) or len(parts) != n or not all(_number(p) for p in parts):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor")
    return parts


def _matrix_total(matrix: list[list[int]], st: list[int] | None, ch: list[int] | None, fl: bool | None) -> int:
    return sum(
        n
        for s, c, f, n in matrix
        if (st is None or s in st) and (ch is None or c in ch) and (fl is None or bool(f) == fl)
    )


async def _run_exists(db: Database, run_id: int) -> None:
    async with db.session() as s:
        found = (await s.execute(sa.text("SELECT 1 FROM run WHERE id = :r"), {"r": run_id})).scalar()
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")


@router.get("/runs/{run_id}/results", dependencies=[Auth])
async def run_results(
    run_id: Id,
    db: DbDep,
    status_: Annotated[str | None, Query(alias="status", description="comma-separated statuses")] = None,
    change: Annotated[str | None, Query(description="comma-separated: new, fix, regression, none")] = None,
    flaky: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the test name")] = None,
    job_id: Id | None = None,
    sort: Annotated[str, Query(description="relevancy (default), id, -id, -duration")] = "relevancy",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    if sort not in SORTS:
        raise HTTPException(422, f"sort must be one of {', '.join(SORTS)}")
    st = _codes(status_, STATUS_CODES, "status")
    ch = _codes(change, CHANGE_CODES, "change")
    await _run_exists(db, run_id)
    # Integers are written into the SQL (not bound): a prepared statement's generic plan cannot
    # see that a run holds a million rows and the regressions only a hundred.
    where = [f"r.run_id = {int(run_id)}"]
    params: dict[str, Any] = {}
    if st is not None:
        where.append(f"r.status IN ({', '.join(str(c) for c in st)})")
    if ch is not None:
        where.append(f"r.change IN ({', '.join(str(c) for c in ch)})")
        if CHANGE_NONE not in ch:
            where.append("r.change <> 0")  # the partial index's condition, spelled out for SQLite
    # relevancy > 0 exactly for failed and error results: say so, so that the (run_id, relevancy, id)
    # index range holds only the rows that can match
    failing = {FAILED, ERROR}
    if (st is not None and set(st) <= failing) or (ch is not None and set(ch) == {CHANGE_REGRESSION}):
        where.append("r.relevancy >= 1")
    elif (st is not None and not set(st) & failing) or (ch is not None and set(ch) == {CHANGE_FIX}):
        where.append("r.relevancy = 0")
    if flaky is not None:
        where.append(f"r.flaky = {'TRUE' if flaky else 'FALSE'}" if not db.is_sqlite else f"r.flaky = {int(flaky)}")
    if job_id is not None:
        where.append(f"r.job_id = {int(job_id)}")
    async with db.session() as s:
        jobs = await job_summaries(s, run_id, job_id)
        if q:
            project_id = jobs[0].project_id if jobs else 0
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(
                "r.test_case_id IN (SELECT id FROM test_case WHERE project_id = :project AND name LIKE :q ESCAPE '\\')"
            )
            params.update(project=project_id, q=f"%{escaped}%")
            count_sql = f"SELECT count(*) FROM test_result r WHERE {' AND '.join(where)}"
            total = int((await s.execute(sa.text(count_sql), params)).scalar() or 0)
        else:
            total = _matrix_total(combine(jobs)["matrix"], st, ch, flaky)
        if total == 0:
            return {"total": 0, "items": [], "next_cursor": None}
        legs: list[str] = []
        if sort == "relevancy":
            order = "r.relevancy DESC, r.id DESC"
            if cursor:
                # two index ranges: the rest of the cursor's relevancy, then the lower ones
                c1, c2 = (int(c) for c in _decode(cursor, 2))
                legs = [f"r.relevancy = {c1} AND r.id < {c2}", f"r.relevancy < {c1}"]
        elif sort == "-duration":
            order = "COALESCE(r.duration, -1) DESC, r.id DESC"
            if cursor:
                c1, c2 = _decode(cursor, 2)
                where.append(f"(COALESCE(r.duration, -1), r.id) < ({float(c1)!r}, {int(c2)})")
        elif sort == "id":
            order = "r.id ASC"
            if cursor:
                where.append(f"r.id > {int(_decode(cursor, 1)[0])}")
        else:
            order = "r.id DESC"
            if cursor:
                where.append(f"r.id < {int(_decode(cursor, 1)[0])}")
        # the page is chosen from test_result alone (an index range, read in order), names joined after
        cols = (
            "r.id, r.status, r.change, r.age, r.instability, r.flaky, r.flaky_rule, r.relevancy, r.duration, "
            "r.job_id, r.message, r.values_json, r.perf_change, r.test_case_id, r.env_id"
        )
        if legs:
            parts = [
                f"SELECT * FROM (SELECT {cols} FROM test_result r WHERE {' AND '.join([*where, leg])} "
                f"ORDER BY {order} LIMIT {limit + 1}) l{i}"
                for i, leg in enumerate(legs)
            ]
            page = f"SELECT * FROM ({' UNION ALL '.join(parts)}) u ORDER BY relevancy DESC, id DESC LIMIT {limit + 1}"
        else:
            page = f"SELECT {cols} FROM test_result r WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit + 1}"
        outer_order = order.replace("r.", "p.")
        sql = (
            "SELECT p.id, t.name, p.status, p.change, p.age, p.instability, p.flaky, p.flaky_rule, p.relevancy, "
            "p.duration, p.job_id, e.system, e.agents_group, e.config, p.message, p.values_json, p.perf_change, "
            f"p.test_case_id FROM ({page}) p JOIN test_case t ON t.id = p.test_case_id "
            f"JOIN test_env e ON e.id = p.env_id ORDER BY {outer_order}"
        )
        rows = (await s.execute(sa.text(sql), params)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r[0],
            "test": r[1],
            "test_case_id": r[17],
            "status": STATUS_NAMES[r[2]],
            "change": CHANGE_NAMES[r[3]],
            "age": r[4],
            "instability": r[5],
            "flaky": bool(r[6]),
            "flaky_rules": flaky_rules(r[7]),
            "relevancy": r[8],
            "duration": r[9],
            "job_id": r[10],
            "system": r[11],
            "agents_group": r[12],
            "config": r[13] or None,
            "message": r[14],
            "values": orjson.loads(r[15]) if isinstance(r[15], str) else r[15],
            "perf_change": PERF_NAMES[r[16]] if r[16] else None,
        }
        for r in rows
    ]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        if sort == "relevancy":
            next_cursor = _encode(last[8], last[0])
        elif sort == "-duration":
            next_cursor = _encode(last[9] if last[9] is not None else -1, last[0])
        else:
            next_cursor = _encode(last[0])
    return {"total": total, "items": items, "next_cursor": next_cursor}


@router.get("/runs/{run_id}/summary", dependencies=[Auth])
async def get_run_summary(run_id: Id, db: DbDep) -> dict[str, Any]:
    await _run_exists(db, run_id)
    async with db.session() as s:
        out = await run_summary(s, run_id)
    out.pop("matrix", None)
    return {"run_id": run_id, **out}


@router.get("/flows/{flow_id}/summary", dependencies=[Auth])
async def get_flow_summary(flow_id: Id, db: DbDep) -> dict[str, Any]:
    async with db.session() as s:
        found = (await s.execute(sa.text("SELECT 1 FROM flow WHERE id = :f"), {"f": flow_id})).scalar()
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow {flow_id} not found")
        out = await flow_summary(s, flow_id)
    out.pop("matrix", None)
    return {"flow_id": flow_id, **out}


@router.get("/runs/{run_id}/issues", dependencies=[Auth])
async def run_issues(
    run_id: Id,
    db: DbDep,
    new: bool | None = None,
    job_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    await _run_exists(db, run_id)
    where = ["run_id = :run"]
    params: dict[str, Any] = {"run": run_id, "limit": limit + 1}
    if new is not None:
        where.append("is_new = :new")
        params["new"] = new
    if job_id is not None:
        where.append("job_id = :job")
        params["job"] = job_id
    async with db.session() as s:
        total = int(
            (await s.execute(sa.text(f"SELECT count(*) FROM issue WHERE {' AND '.join(where)}"), params)).scalar() or 0
        )
        if cursor:
            params["c1"] = _decode(cursor, 1)[0]
            where.append("id > :c1")
        rows = (
            await s.execute(
                sa.text(
                    "SELECT id, job_id, tool, path, line, col, symbol, message, issue_type, is_new, age "
                    f"FROM issue WHERE {' AND '.join(where)} ORDER BY id LIMIT :limit"
                ),
                params,
            )
        ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r[0],
            "job_id": r[1],
            "tool": r[2],
            "path": r[3],
            "line": r[4],
            "column": r[5],
            "symbol": r[6],
            "message": r[7],
            "type": r[8],
            "new": None if r[9] is None else bool(r[9]),
            "age": r[10],
        }
        for r in rows
    ]
    return {"total": total, "items": items, "next_cursor": _encode(rows[-1][0]) if more and rows else None}


@router.get("/test-cases/{test_case_id}/history", dependencies=[Auth])
async def test_case_history(
    test_case_id: Id,
    db: DbDep,
    branch_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    async with db.session() as s:
        tc = (
            await s.execute(sa.text("SELECT id, project_id, name FROM test_case WHERE id = :t"), {"t": test_case_id})
        ).one_or_none()
        if tc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"test case {test_case_id} not found")
        where = "r.test_case_id = :t"
        params: dict[str, Any] = {"t": test_case_id, "limit": limit}
        if branch_id is not None:
            where += " AND r.branch_id = :b"
            params["b"] = branch_id
        rows = (
            await s.execute(
                sa.text(
                    "SELECT r.id, r.flow_id, r.flow_kind, r.flow_seq, r.run_id, r.job_id, r.branch_id, r.status, "
                    "r.change, r.age, r.instability, r.flaky, r.flaky_rule, r.duration, r.values_json, "
                    "r.perf_change, r.perf, e.system, e.agents_group, e.config "
                    f"FROM test_result r JOIN test_env e ON e.id = r.env_id WHERE {where} "
                    "ORDER BY r.id DESC LIMIT :limit"
                ),
                params,
            )
        ).all()

    def js(v: Any) -> Any:
        return orjson.loads(v) if isinstance(v, str) else v

    items = [
        {
            "id": r[0],
            "flow_id": r[1],
            "flow_kind": "ci" if r[2] == 0 else "dev",
            "flow_seq": r[3],
            "run_id": r[4],
            "job_id": r[5],
            "branch_id": r[6],
            "status": STATUS_NAMES[r[7]],
            "change": CHANGE_NAMES[r[8]],
            "age": r[9],
            "instability": r[10],
            "flaky": bool(r[11]),
            "flaky_rules": flaky_rules(r[12]),
            "duration": r[13],
            "values": js(r[14]),
            "perf_change": PERF_NAMES[r[15]] if r[15] else None,
            "perf": js(r[16]),
            "system": r[17],
            "agents_group": r[18],
            "config": r[19] or None,
        }
        for r in rows
    ]
    return {"test_case": {"id": tc[0], "project_id": tc[1], "name": tc[2]}, "items": items}
