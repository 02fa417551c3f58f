"""Test results, summaries, issues and test history.

- ``GET /runs/{id}/results``: a run's analysed results, most relevant first, filtered and
  keyset-paginated (``next_cursor``): deep pages cost what the first one does.
- ``GET /runs/{id}/summary``, ``GET /flows/{id}/summary``: totals per status and change,
  flaky, performance changes, issues; ``analysis`` says whether results are still pending.
- ``GET /runs/{id}/issues``: linter findings, new ones marked; ``sort=new``: new first, then by age.
- ``POST /runs/{id}/reanalyze``: analyse the run's results again (``kraken.results.reanalysis``)
  in the background: 202 with the re-analysis (queued, or the one already queued or running);
  a project member may, as for culprit searches: it costs compute, and changes no settings.
- ``GET /runs/{id}/reanalysis``: where the run's re-analysis stands (event ``reanalysis`` on change).
- ``GET /branches/{id}/stats``: the branch's last CI flows' figures, for its charts.
- ``GET /test-cases/{id}/history``: a test's recent results (flows, statuses, values).

The results page's SQL (filters, sort orders, cursors) is built by ``kraken.results.queries``;
the answers' shapes are in ``kraken.schemas.results``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy import RowMapping

from kraken.api.authz import member, viewer
from kraken.api.deps import StateDep
from kraken.core.db import Database
from kraken.models.results import ResultsReanalysis
from kraken.results import quarantine, reanalysis
from kraken.results.branch_stats import branch_stats
from kraken.results.queries import (
    InvalidCursor,
    InvalidFilter,
    Keyset,
    ResultFilter,
    Sort,
    decode_cursor,
    encode_cursor,
    page_sql,
)
from kraken.results.statuses import CHANGE_NAMES, PERF_NAMES, STATUS_NAMES, flaky_rules
from kraken.results.summary import combine, flow_summary, job_summaries, run_summary
from kraken.schemas.ints import Count, Id
from kraken.schemas.results import (
    BranchStatsOut,
    FlowSummaryOut,
    HistoryItemOut,
    IssueOut,
    IssuesPage,
    ReanalysisOut,
    ResultsPage,
    RunSummaryOut,
    TestCaseBrief,
    TestHistoryOut,
    TestResultOut,
)

router = APIRouter(tags=["results"])

IssueSort = Literal["id", "new"]
UNANALYSED_AGE = 2**31 - 1
"""The sort key of an issue the analysis has not reached (no age yet): after every real age."""


def get_db(request: Request) -> Database:
    state = request.app.state
    kraken_state = getattr(state, "kraken", None)
    if kraken_state is not None:
        return kraken_state.runtime.db  # type: ignore[no-any-return]
    return state.db  # type: ignore[no-any-return]


DbDep = Annotated[Database, Depends(get_db)]


def _json(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, str) else v


async def _run_exists(db: Database, run_id: int) -> None:
    async with db.session() as s:
        found = (await s.execute(sa.text("SELECT 1 FROM run WHERE id = :r"), {"r": run_id})).scalar()
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")


def _result(r: RowMapping, quarantined: bool = False) -> TestResultOut:
    return TestResultOut(
        id=r["id"],
        test=r["test"],
        test_case_id=r["test_case_id"],
        status=STATUS_NAMES[r["status"]],
        change=CHANGE_NAMES[r["change"]],
        age=r["age"],
        instability=r["instability"],
        flaky=bool(r["flaky"]),
        flaky_rules=flaky_rules(r["flaky_rule"]),
        relevancy=r["relevancy"],
        duration=r["duration"],
        job_id=r["job_id"],
        system=r["system"],
        agents_group=r["agents_group"],
        config=r["config"] or None,
        message=r["message"],
        values=_json(r["values_json"]),
        perf_change=PERF_NAMES[r["perf_change"]] if r["perf_change"] else None,
        quarantined=quarantined,
    )


@router.get("/runs/{run_id}/results", response_model=ResultsPage, dependencies=[viewer("run_id")])
async def run_results(
    run_id: Id,
    db: DbDep,
    status_: Annotated[str | None, Query(alias="status", description="comma-separated statuses")] = None,
    change: Annotated[str | None, Query(description="comma-separated: new, fix, regression, none")] = None,
    flaky: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the test name")] = None,
    job_id: Id | None = None,
    age_min: Annotated[Count | None, Query(description="at least this many runs with the same status")] = None,
    age_max: Annotated[Count | None, Query(description="at most this many runs with the same status")] = None,
    instability_min: Annotated[Count | None, Query(description="at least this many status changes")] = None,
    instability_max: Annotated[Count | None, Query(description="at most this many status changes")] = None,
    agents_group: Annotated[str | None, Query(max_length=200, description="the jobs' agents group")] = None,
    sort: Annotated[Sort, Query(description="relevancy (default), id, -id, -duration")] = "relevancy",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> ResultsPage:
    try:
        flt = ResultFilter.parse(
            run_id,
            status=status_,
            change=change,
            flaky=flaky,
            job_id=job_id,
            name=q,
            age=(age_min, age_max),
            instability=(instability_min, instability_max),
            agents_group=agents_group,
        )
    except InvalidFilter as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
    keyset = Keyset(sort)
    await _run_exists(db, run_id)
    async with db.session() as s:
        jobs = await job_summaries(s, run_id, job_id)
        if flt.counted_by_matrix:
            total = flt.matrix_total(combine(jobs)["matrix"])
        else:
            flt = replace(flt, project_id=jobs[0].project_id if jobs else 0)
            total = int((await s.execute(sa.text(flt.count_sql(db.is_sqlite)), flt.params())).scalar() or 0)
        if total == 0:
            return ResultsPage(total=0, items=[], next_cursor=None)
        if not flt.counted_by_matrix and not flt.name:  # the triage filters: said the indexes' way
            combos = (await s.execute(sa.text(flt.combos_sql(db.is_sqlite)), flt.params())).all()
            envs = (await s.execute(sa.text(flt.envs_sql()), flt.params())).all() if flt.agents_group else []
            flt = flt.narrowed([(int(a), int(b)) for a, b in combos], [(int(a), int(b)) for a, b in envs])
        try:
            sql = page_sql(flt, keyset, cursor, limit, db.is_sqlite)
        except InvalidCursor as e:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
        rows = (await s.execute(sa.text(sql), flt.params())).mappings().all()
        more = len(rows) > limit
        rows = rows[:limit]
        held = await quarantine.among(s, jobs[0].branch_id, {int(r["test_case_id"]) for r in rows}) if jobs else set()
    return ResultsPage(
        total=total,
        items=[_result(r, r["test_case_id"] in held) for r in rows],
        next_cursor=keyset.cursor_of(rows[-1]) if more and rows else None,
    )


def _reanalysis(run_id: int, row: ResultsReanalysis | None) -> ReanalysisOut:
    if row is None:
        return ReanalysisOut(run_id=run_id, state="none", generation=0, version=0)
    return ReanalysisOut.model_validate(row, from_attributes=True)


@router.post(
    "/runs/{run_id}/reanalyze",
    response_model=ReanalysisOut,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[member("run_id")],
)
async def reanalyze(run_id: Id, db: DbDep, state: StateDep) -> ReanalysisOut:
    """Analyse the run's results again against their history, replacing the figures (not adding
    rows), in a background task: the answer is the queued re-analysis, or the one already queued
    or running (no second one starts). ``GET /runs/{id}/reanalysis`` and the event ``reanalysis``
    say when it is ``done`` (``version`` + 1) or ``failed``."""
    await _run_exists(db, run_id)
    async with state.write() as (session, effects):
        row, _ = await reanalysis.request(session, run_id, effects)
        out = _reanalysis(run_id, row)
    return out


@router.get("/runs/{run_id}/reanalysis", response_model=ReanalysisOut, dependencies=[viewer("run_id")])
async def get_reanalysis(run_id: Id, db: DbDep) -> ReanalysisOut:
    await _run_exists(db, run_id)
    async with db.session() as s:
        return _reanalysis(run_id, await reanalysis.state_of(s, run_id))


@router.get("/runs/{run_id}/summary", response_model=RunSummaryOut, dependencies=[viewer("run_id")])
async def get_run_summary(run_id: Id, db: DbDep) -> RunSummaryOut:
    await _run_exists(db, run_id)
    async with db.session() as s:
        out = await run_summary(s, run_id)
    return RunSummaryOut.model_validate({"run_id": run_id, **out})


@router.get("/flows/{flow_id}/summary", response_model=FlowSummaryOut, dependencies=[viewer("flow_id")])
async def get_flow_summary(flow_id: Id, db: DbDep) -> FlowSummaryOut:
    async with db.session() as s:
        found = (await s.execute(sa.text("SELECT 1 FROM flow WHERE id = :f"), {"f": flow_id})).scalar()
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow {flow_id} not found")
        out = await flow_summary(s, flow_id)
    return FlowSummaryOut.model_validate({"flow_id": flow_id, **out})


@router.get("/runs/{run_id}/issues", response_model=IssuesPage, dependencies=[viewer("run_id")])
async def run_issues(
    run_id: Id,
    db: DbDep,
    new: bool | None = None,
    job_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    sort: Annotated[
        IssueSort,
        Query(description="id: in the order found; new: new issues first, then the youngest, not yet analysed last"),
    ] = "id",
) -> IssuesPage:
    """A run's linter issues, a page at a time (``limit`` at most 1000, keyset ``next_cursor``).

    ``sort=new`` puts new issues first, then the others by age, youngest first: the analysis
    gives a new issue age 0 and a known one its predecessor's age + 1, so "new first, then by
    age" is the order of ``age`` (issues not analysed yet have none and come last), then id."""
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
        key = f"COALESCE(age, {UNANALYSED_AGE})"
        if cursor:
            try:
                parts = [int(p) for p in decode_cursor(cursor, 2 if sort == "new" else 1)]
            except InvalidCursor as e:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
            if sort == "new":
                params["c1"], params["c2"] = parts
                where.append(f"({key} > :c1 OR ({key} = :c1 AND id > :c2))")
            else:
                params["c1"] = parts[0]
                where.append("id > :c1")
        order = f"{key}, id" if sort == "new" else "id"
        rows = (
            (
                await s.execute(
                    sa.text(
                        "SELECT id, job_id, tool, path, line, col, symbol, message, issue_type, is_new, age "
                        f"FROM issue WHERE {' AND '.join(where)} ORDER BY {order} LIMIT :limit"
                    ),
                    params,
                )
            )
            .mappings()
            .all()
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        age = UNANALYSED_AGE if last["age"] is None else int(last["age"])
        next_cursor = encode_cursor(age, last["id"]) if sort == "new" else encode_cursor(last["id"])
    items = [
        IssueOut(
            id=r["id"],
            job_id=r["job_id"],
            tool=r["tool"],
            path=r["path"],
            line=r["line"],
            column=r["col"],
            symbol=r["symbol"],
            message=r["message"],
            type=r["issue_type"],
            new=None if r["is_new"] is None else bool(r["is_new"]),
            age=r["age"],
        )
        for r in rows
    ]
    return IssuesPage(total=total, items=items, next_cursor=next_cursor)


@router.get("/branches/{branch_id}/stats", response_model=BranchStatsOut, dependencies=[viewer("branch_id")])
async def get_branch_stats(
    branch_id: Id,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500, description="the last N CI flows")] = 30,
) -> BranchStatsOut:
    async with db.session() as s:
        found = (await s.execute(sa.text("SELECT 1 FROM branch WHERE id = :b"), {"b": branch_id})).scalar()
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        flows = await branch_stats(s, branch_id, limit)
    return BranchStatsOut.model_validate({"branch_id": branch_id, "flows": flows})


@router.get("/test-cases/{test_case_id}/history", response_model=TestHistoryOut, dependencies=[viewer("test_case_id")])
async def test_case_history(
    test_case_id: Id,
    db: DbDep,
    branch_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> TestHistoryOut:
    async with db.session() as s:
        tc = (
            (await s.execute(sa.text("SELECT id, project_id, name FROM test_case WHERE id = :t"), {"t": test_case_id}))
            .mappings()
            .one_or_none()
        )
        if tc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"test case {test_case_id} not found")
        where = "r.test_case_id = :t"
        params: dict[str, Any] = {"t": test_case_id, "limit": limit}
        if branch_id is not None:
            where += " AND r.branch_id = :b"
            params["b"] = branch_id
        rows = (
            (
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
            )
            .mappings()
            .all()
        )
    items = [
        HistoryItemOut(
            id=r["id"],
            flow_id=r["flow_id"],
            flow_kind="ci" if r["flow_kind"] == 0 else "dev",
            flow_seq=r["flow_seq"],
            run_id=r["run_id"],
            job_id=r["job_id"],
            branch_id=r["branch_id"],
            status=STATUS_NAMES[r["status"]],
            change=CHANGE_NAMES[r["change"]],
            age=r["age"],
            instability=r["instability"],
            flaky=bool(r["flaky"]),
            flaky_rules=flaky_rules(r["flaky_rule"]),
            duration=r["duration"],
            values=_json(r["values_json"]),
            perf_change=PERF_NAMES[r["perf_change"]] if r["perf_change"] else None,
            perf=_json(r["perf"]),
            system=r["system"],
            agents_group=r["agents_group"],
            config=r["config"] or None,
        )
        for r in rows
    ]
    return TestHistoryOut(test_case=TestCaseBrief.model_validate(dict(tc)), items=items)
