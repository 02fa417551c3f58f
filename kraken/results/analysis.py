"""Analysis of a job's test results against history, as set-based SQL (SQLite and PostgreSQL).

For each result the history is that of the same test on the same branch and environment
(system, agents group, config) in CI flows.  Its previous CI result carries the running
state (``age``, ``last_exec``, the ``flips`` mask), so one join gives every figure:

- ``change``: ``new`` (no history), ``fix`` (passed, the last executed result was not),
  ``regression`` (failed or error, the last executed result passed), else ``none``;
- ``age``: the previous result's age + 1 when the status is the same, else 0;
- ``instability``: pass/fail flips among the last 10 executed results (a 9-bit mask);
- ``flaky``: rule ``same_commit`` (passed and failed on the same commit in the same
  environment: reruns and retries in a job, several jobs of a flow, or jobs of flows of the
  project that ran on the same commit, ``Flow.commit``; every such result is marked) or
  ``flip_rate`` (instability >= FLIP_THRESHOLD);
- ``relevancy`` (0-8, failures only): not passed, failed (not error), instability <= 3,
  age < 5, regression (2 points), not flaky, no root-cause comment on the branch (see
  ``kraken.results.comments``);
- performance: each value (and durations >= PERF_MIN_DURATION) against the median and
  spread of the last PERF_WINDOW values;
- ``failure_key`` (failed and error results): the hash of the normalised signature of the
  message and traceback (``kraken.results.signatures``), which groups a run's failures by cause
  (``kraken.results.groups``).

Ordering.  CI flows are analysed in flow order: ``results_branch.sealed_seq`` is the
highest CI flow seq up to which every CI flow of the branch is completed and analysed.
Jobs of the lowest unsealed CI flow are analysed as soon as they complete (their history
is the sealed flows); jobs of later flows wait.  When that flow completes and all its
jobs are analysed it is sealed, and the same loop goes on with the next flow's waiting
jobs.  So a later flow that finishes first waits for the earlier one, and the answer does
not depend on the order in which jobs finish.  Dev flows are compared with the sealed CI
history and never change it (history only ever reads CI rows).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections import Counter
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.db import Database
from kraken.models import Job, Run
from kraken.models.base import utcnow
from kraken.models.results import ResultsBranch, ResultsHist, ResultsJob
from kraken.observability import metrics
from kraken.results import quarantine
from kraken.results.comments import root_caused_clause
from kraken.results.ingest import PERF_MIN_DURATION, is_postgres, stage_table
from kraken.results.locks import lock_branch
from kraken.results.signatures import failure_key
from kraken.results.statuses import (
    CHANGE_NAMES,
    KIND_CI,
    PERF_IMPROVEMENT,
    PERF_NAMES,
    PERF_NONE,
    PERF_REGRESSION,
    STATUS_NAMES,
)
from kraken.workers.registry import TaskContext, task

log = logging.getLogger(__name__)

FLIP_THRESHOLD = 3  # flips among the last 10 executed results that make a test flaky
PERF_WINDOW = 10
PERF_MIN_HISTORY = 3  # values needed before a change can be told
PERF_REL_THRESHOLD = 0.2  # a change must be past 20 % of the median...
PERF_SIGMAS = 3.0  # ...and past 3 robust standard deviations (1.4826 * MAD)
PERF_MIN_DURATION_DELTA = 0.05  # seconds: smaller duration changes are noise

_POPCOUNT = " + ".join(f"((nflips >> {i}) & 1)" for i in range(9))


PROFILE = os.environ.get("KRAKEN_RESULTS_PROFILE") == "1"  # log each statement's time


async def _exec(session: AsyncSession, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run raw SQL; returns the SQLAlchemy result (rows untyped)."""
    if not PROFILE:
        return await session.execute(sa.text(sql), params or {})
    t = time.perf_counter()
    res = await session.execute(sa.text(sql), params or {})
    log.warning("%.3fs %s", time.perf_counter() - t, " ".join(sql.split())[:100])
    return res


def _of_jobs(jobs: list[tuple[int, int]], alias: str = "") -> str:
    """Rows of (run_id, job_id) pairs: test_result is indexed by run, not by job."""
    a = f"{alias}." if alias else ""
    runs = ", ".join(sorted({str(int(r)) for r, _ in jobs}))
    ids = ", ".join(str(int(j)) for _, j in jobs)
    return f"{a}run_id IN ({runs}) AND {a}job_id IN ({ids})"


def _prev_sql(lp_jobs: list[tuple[int, int]], dedup: bool) -> str:
    cols = "test_case_id, id, status, age, last_exec, flips"
    if not lp_jobs:
        return f"SELECT {cols} FROM test_result WHERE 1 = 0"
    if not dedup:
        return f"SELECT {cols} FROM test_result WHERE {_of_jobs(lp_jobs)}"
    return (
        f"SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY test_case_id "
        f"ORDER BY job_id DESC, id DESC) AS rn FROM test_result WHERE {_of_jobs(lp_jobs)}) latest WHERE rn = 1"
    )


def _insert_sql(pg: bool, rj: ResultsJob, stage: str, lp: str, sealed: int, watermark: int | None) -> str:
    """One INSERT ... SELECT: staged rows joined with their test cases and their previous CI result,
    every analysis figure computed on the way.  The previous result comes from the latest flow
    (``lp``, a join) or, for tests missing there, from one probe of the history index each."""
    b, e = int(rj.branch_id), int(rj.env_id)
    if watermark is not None:
        # test cases created by this analysis (id > watermark) have no history: no probe
        probe = f"""CASE WHEN lp.id IS NULL AND cur.tc <= {int(watermark)} THEN (
                SELECT {{what}} FROM test_result h
                WHERE h.test_case_id = cur.tc AND h.branch_id = {b} AND h.env_id = {e}
                  AND h.flow_kind = {KIND_CI} AND h.flow_seq <= {int(sealed)}
                ORDER BY h.flow_seq DESC, h.job_id DESC, h.id DESC LIMIT 1) END"""
        # the previous result's state packed in one integer: status, last_exec, flips, age
        packed = "h.status + 8 * COALESCE(h.last_exec + 1, 0) + 32 * h.flips + 16384 * CAST(h.age AS BIGINT)"
        fb_id, fb_packed = probe.format(what="h.id"), probe.format(what=packed)
    else:
        fb_id = fb_packed = "CAST(NULL AS BIGINT)"
    vals = "CAST(y.vals AS JSON)" if pg else "y.vals"
    true, false = ("TRUE", "FALSE") if pg else ("1", "0")
    ft = int(FLIP_THRESHOLD)
    # SQLite: materialize each step (it would rescan test_result to index the latest flow's rows, and
    # copy the probes into every expression that uses them); walk the staged rows first.
    # PostgreSQL: one pipeline of hash joins.  Both: a subquery with an OFFSET is not merged into the
    # query that reads it, so each step's figures are computed once per row; merged, every use of
    # ``nflips`` (nine in ``inst``, which the outer query uses five times) would copy its expression,
    # and evaluating those copies took half the statement's time.
    m = "" if pg else "MATERIALIZED "
    once = " OFFSET 0" if pg else " LIMIT -1 OFFSET 0"
    return f"""
    WITH cur AS {m}(
        SELECT s.ord, s.step_index, s.status, s.duration, s.message, s.vals, t.id AS tc
        FROM {stage} s {"JOIN" if pg else "CROSS JOIN"} test_case t
            ON t.project_id = {int(rj.project_id)} AND t.name = s.name
    ),
    lp AS {m}({lp}),
    x0 AS {m}(
        SELECT cur.ord, cur.step_index, cur.status, cur.duration, cur.message, cur.vals, cur.tc,
            lp.id AS lid, lp.status AS lstatus, lp.age AS lage, lp.last_exec AS llast, lp.flips AS lflips,
            {fb_id} AS fid, {fb_packed} AS fpacked
        FROM cur LEFT JOIN lp ON lp.test_case_id = cur.tc{once if pg else ""}
    ),
    p AS (
        SELECT ord, step_index, status, duration, message, vals, tc,
            COALESCE(lid, fid) AS pid,
            COALESCE(lstatus, fpacked % 8) AS pstatus,
            COALESCE(lage, fpacked / 16384) AS page,
            CASE WHEN lid IS NOT NULL THEN llast
                 WHEN fpacked IS NOT NULL AND (fpacked / 8) % 4 > 0 THEN (fpacked / 8) % 4 - 1 END AS plast,
            COALESCE(lflips, (fpacked / 32) % 512) AS pflips
        FROM x0{once}
    ),
    x AS (
        SELECT p.*,
            CASE
                WHEN status > 2 THEN COALESCE(pflips, 0)
                WHEN plast IS NULL THEN 0
                ELSE ((pflips * 2) + CASE WHEN (CASE WHEN status = 0 THEN 0 ELSE 1 END) <> plast
                                          THEN 1 ELSE 0 END) & 511
            END AS nflips
        FROM p{once}
    ),
    y AS (
        SELECT x.*,
            CASE WHEN pid IS NULL THEN 1
                 WHEN status = 0 AND plast = 1 THEN 2
                 WHEN status IN (1, 2) AND plast = 0 THEN 3
                 ELSE 0 END AS chg,
            CASE WHEN pid IS NOT NULL AND pstatus = status THEN page + 1 ELSE 0 END AS nage,
            CASE WHEN status = 0 THEN 0 WHEN status IN (1, 2) THEN 1 ELSE plast END AS nlast,
            {_POPCOUNT} AS inst
        FROM x{once}
    )
    INSERT INTO test_result (job_id, run_id, flow_id, branch_id, test_case_id, env_id, flow_kind, flow_seq,
        step_index, ord, status, duration, message, values_json, prev_id, change, age, last_exec, flips,
        instability, flaky, flaky_rule, relevancy)
    SELECT {int(rj.job_id)}, {int(rj.run_id)}, {int(rj.flow_id)}, {b}, y.tc, {e}, {int(rj.flow_kind)},
        {int(rj.flow_seq)}, y.step_index, y.ord, y.status, y.duration, y.message, {vals}, y.pid, y.chg, y.nage,
        y.nlast, y.nflips, y.inst,
        CASE WHEN y.inst >= {ft} THEN {true} ELSE {false} END,
        CASE WHEN y.inst >= {ft} THEN 2 ELSE 0 END,
        CASE WHEN y.status IN (1, 2) THEN
            1 + CASE WHEN y.status = 1 THEN 1 ELSE 0 END + CASE WHEN y.inst <= 3 THEN 1 ELSE 0 END
              + CASE WHEN y.nage < 5 THEN 1 ELSE 0 END + CASE WHEN y.chg = 3 THEN 2 ELSE 0 END
              + CASE WHEN y.inst >= {ft} THEN 0 ELSE 1 END
              + CASE WHEN {root_caused_clause("y.tc", rj.branch_id)} THEN 0 ELSE 1 END
        ELSE 0 END
    FROM y ORDER BY y.tc"""


def _flaky_update(pg: bool, jobs: list[tuple[int, int]], where_tc: str) -> str:
    """Mark flaky (rule ``same_commit``) the results of ``jobs`` of the tests ``where_tc`` selects."""
    true = "TRUE" if pg else "1"
    return f"""
    UPDATE test_result SET flaky = {true}, flaky_rule = flaky_rule | 1,
        relevancy = CASE WHEN status IN (1, 2) AND flaky_rule = 0 THEN relevancy - 1 ELSE relevancy END
    WHERE {_of_jobs(jobs)} AND (flaky_rule & 1) = 0
      AND test_case_id IN ({where_tc})"""


async def _same_commit_jobs(session: AsyncSession, rj: ResultsJob) -> list[tuple[int, int]]:
    """The other analysed jobs in this environment that ran on the same commit: of this flow, and
    of every flow of the project that recorded the same commit (``Flow.commit``)."""
    params = {"f": rj.flow_id, "e": rj.env_id, "j": rj.job_id, "p": rj.project_id}
    sql = "SELECT run_id, job_id FROM results_job WHERE flow_id = :f AND env_id = :e AND job_id <> :j AND analysed > 0"
    commit = (await _exec(session, 'SELECT "commit" FROM flow WHERE id = :f', {"f": rj.flow_id})).scalar()
    if commit:
        sql += (
            " UNION SELECT rj.run_id, rj.job_id FROM flow f JOIN results_job rj ON rj.flow_id = f.id"
            ' WHERE f."commit" = :c AND f.id <> :f AND rj.project_id = :p AND rj.env_id = :e AND rj.analysed > 0'
        )
        params["c"] = commit
    return sorted((int(r[0]), int(r[1])) for r in (await _exec(session, sql, params)).all())


async def job_summary(session: AsyncSession, run_id: int, job_id: int) -> dict[str, Any]:
    """The job's summary (counts, the filter matrix); its ``results_hist`` rows are rewritten
    from the same pass over its results (inside the caller's write transaction)."""
    rows = (
        await _exec(
            session,
            "SELECT status, change, flaky, perf_change, instability, age, count(*) FROM test_result "
            "WHERE run_id = :r AND job_id = :j GROUP BY status, change, flaky, perf_change, instability, age",
            {"r": run_id, "j": job_id},
        )
    ).all()
    hist: Counter[tuple[int, int, bool, int, int]] = Counter()
    for status, change, flaky, _perf, instability, age, n in rows:
        hist[(int(status), int(change), bool(flaky), int(instability), int(age))] += int(n)
    await _exec(session, "DELETE FROM results_hist WHERE job_id = :j", {"j": job_id})
    if hist:
        await session.execute(
            sa.insert(ResultsHist),
            [
                {
                    "job_id": job_id,
                    "run_id": run_id,
                    "status": s,
                    "change": c,
                    "flaky": f,
                    "instability": i,
                    "age": a,
                    "n": n,
                }
                for (s, c, f, i, a), n in sorted(hist.items())
            ],
        )
    counts: Counter[str] = Counter()
    matrix: Counter[tuple[int, int, int]] = Counter()
    for status, change, flaky, perf, _instability, _age, n in rows:
        counts["total"] += n
        counts[STATUS_NAMES[status]] += n
        counts[CHANGE_NAMES[change]] += n
        if flaky:
            counts["flaky"] += n
        if perf:
            counts[f"perf_{PERF_NAMES[perf]}"] += n
        matrix[(int(status), int(change), 1 if flaky else 0)] += n
    out: dict[str, Any] = {
        "total": counts["total"],
        **{name: counts[name] for name in STATUS_NAMES},
        "new": counts["new"],
        "fixes": counts["fix"],
        "regressions": counts["regression"],
        "no_change": counts["none"],
        "flaky": counts["flaky"],
        "perf_regressions": counts["perf_regression"],
        "perf_improvements": counts["perf_improvement"],
        # [status, change, flaky, count]: exact totals for any combination of these filters
        "matrix": [[s, c, f, n] for (s, c, f), n in sorted(matrix.items())],
    }
    return out


async def _issue_summary(session: AsyncSession, job_id: int) -> dict[str, int]:
    row = (
        await _exec(
            session,
            "SELECT count(*), sum(CASE WHEN is_new THEN 1 ELSE 0 END) FROM issue WHERE job_id = :j",
            {"j": job_id},
        )
    ).one()
    return {"issues": int(row[0] or 0), "new_issues": int(row[1] or 0)}


# ------------------------------------------------------------------------------ performance


def _median_spread(values: list[float]) -> tuple[float, float]:
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values])
    return med, 1.4826 * mad


def perf_compare(name: str, value: float, history: list[float]) -> dict[str, Any] | None:
    """A change of ``value`` against ``history`` past the thresholds, or None."""
    if len(history) < PERF_MIN_HISTORY:
        return None
    med, spread = _median_spread(history)
    delta = value - med
    limit = max(PERF_SIGMAS * spread, PERF_REL_THRESHOLD * abs(med))
    if name == "duration":
        limit = max(limit, PERF_MIN_DURATION_DELTA)
    if abs(delta) <= limit:
        return None
    return {
        "kind": "regression" if delta > 0 else "improvement",  # higher is worse (times, sizes)
        "value": value,
        "median": med,
        "spread": spread,
        "delta_pct": (100.0 * delta / abs(med)) if med else None,
    }


async def _analyse_perf(session: AsyncSession, run_id: int, job_id: int) -> int:
    rows = (
        await _exec(
            session,
            "SELECT cur.id, cur.values_json, cur.duration, prev.perf FROM test_result cur "
            "LEFT JOIN test_result prev ON prev.id = cur.prev_id "
            "WHERE cur.run_id = :r AND cur.job_id = :j AND (cur.values_json IS NOT NULL OR cur.duration >= :d)",
            {"r": run_id, "j": job_id, "d": PERF_MIN_DURATION},
        )
    ).all()
    updates: list[dict[str, Any]] = []
    for rid, values, duration, prev_perf in rows:
        if isinstance(values, str):
            values = orjson.loads(values)
        if isinstance(prev_perf, str):
            prev_perf = orjson.loads(prev_perf)
        current: dict[str, float] = dict(values or {})
        if duration is not None and duration >= PERF_MIN_DURATION:
            current["duration"] = float(duration)
        old_window: dict[str, list[float]] = (prev_perf or {}).get("window") or {}
        window: dict[str, list[float]] = {}
        changes: dict[str, Any] = {}
        for name, value in current.items():
            history = [float(v) for v in old_window.get(name, [])]
            change = perf_compare(name, value, history)
            if change is not None:
                changes[name] = change
            window[name] = [*history, value][-PERF_WINDOW:]
        kind = PERF_NONE
        if any(c["kind"] == "regression" for c in changes.values()):
            kind = PERF_REGRESSION
        elif changes:
            kind = PERF_IMPROVEMENT
        perf = {"window": window, "changes": changes}
        updates.append({"id": rid, "pc": kind, "perf": orjson.dumps(perf).decode()})
    if updates:
        cast = "CAST(:perf AS JSON)" if is_postgres(session) else ":perf"
        await session.execute(
            sa.text(f"UPDATE test_result SET perf_change = :pc, perf = {cast} WHERE id = :id"), updates
        )
    return sum(1 for u in updates if u["pc"] != PERF_NONE)


# ------------------------------------------------------------------------------ issues


async def _analyse_issues(session: AsyncSession, rj: ResultsJob, sealed: int) -> None:
    """Match the job's new issues with the previous CI run's issues of the same job (same path,
    symbol and type, line within ±5; the nearest wins) in one join, then write all flags at once."""
    prev_seq = (
        await _exec(
            session,
            "SELECT max(flow_seq) FROM results_job WHERE branch_id = :b AND job_key = :k AND flow_kind = :ci "
            "AND issues_reported AND flow_seq <= :sealed AND job_id <> :j",
            {"b": rj.branch_id, "k": rj.job_key, "ci": KIND_CI, "sealed": sealed, "j": rj.job_id},
        )
    ).scalar()
    best: dict[int, tuple[int, int, int]] = {}  # issue id -> (distance, prev id, prev age)
    if prev_seq is not None:
        pairs = (
            await _exec(
                session,
                """SELECT cur.id, prev.id, prev.age, abs(prev.line - cur.line) FROM issue cur JOIN issue prev
                    ON prev.branch_id = :b AND prev.job_key = :k AND prev.flow_kind = :ci AND prev.flow_seq = :ps
                   AND prev.path = cur.path AND prev.symbol = cur.symbol AND prev.issue_type = cur.issue_type
                   AND prev.line BETWEEN cur.line - 5 AND cur.line + 5
                WHERE cur.job_id = :j AND cur.is_new IS NULL""",
                {"b": rj.branch_id, "k": rj.job_key, "ci": KIND_CI, "ps": int(prev_seq), "j": rj.job_id},
            )
        ).all()
        for cid, pid, page, dist in pairs:
            key = (int(dist), int(pid), int(page or 0))
            if cid not in best or key < best[cid]:
                best[cid] = key
    if best:
        await session.execute(
            sa.text("UPDATE issue SET prev_id = :pid, is_new = :f, age = :age WHERE id = :id"),
            [{"id": cid, "pid": pid, "age": age + 1, "f": False} for cid, (_, pid, age) in best.items()],
        )
    await _exec(
        session,
        "UPDATE issue SET is_new = :t, age = 0 WHERE job_id = :j AND is_new IS NULL",
        {"j": rj.job_id, "t": True},
    )


# ------------------------------------------------------------------------------ one job


async def analyse_job_tx(session: AsyncSession, job_id: int, sealed: int, after_quarantine: bool = True) -> int | None:
    """Analyse what a job has staged (results, issues), within the caller's transaction, which
    holds the branch lock.  Returns the number of results analysed, None when nothing was to do.
    ``after_quarantine=False`` (a re-analysis): the quarantine's counters saw these results once."""
    pg = is_postgres(session)
    stmt = sa.select(ResultsJob).where(ResultsJob.job_id == job_id)  # type: ignore[arg-type]
    if pg:
        stmt = stmt.with_for_update()
    rj = (await session.execute(stmt)).scalar_one_or_none()
    if rj is None or (rj.staged == 0 and rj.issues_pending == 0):
        return None
    started = time.perf_counter()
    done = 0
    if rj.staged > 0:
        done = await _analyse_results(session, rj, sealed, pg)
    if rj.issues_pending > 0:
        await _analyse_issues(session, rj, sealed)
        rj.issues_pending = 0
    summary = await job_summary(session, rj.run_id, job_id)
    summary.update(await _issue_summary(session, job_id))
    rj.summary = summary
    if done and after_quarantine:
        await quarantine.after_analysis(session, rj)
    rj.analysed_at = utcnow()
    rj.analysis_seconds = round(time.perf_counter() - started, 3)
    metrics.analysis_done(time.perf_counter() - started, done)
    session.add(rj)
    await session.flush()
    log.info("job %s: %d results analysed in %.2fs", job_id, done, rj.analysis_seconds)
    return done


async def _create_test_cases(session: AsyncSession, project_id: int, stage: str) -> None:
    """Create the staged tests the project does not know yet.

    A plain INSERT: with ``ON CONFLICT DO NOTHING`` PostgreSQL inserts each row speculatively
    (check, insert, confirm), which made a project's first million tests take 7 s instead of 4.
    Only an analysis of another branch of the project creating the same tests at the same time
    can make it fail; then it runs again, skipping what exists by then."""
    sql = f"""INSERT INTO test_case (project_id, name)
        SELECT {project_id}, s.name FROM {stage} s
        WHERE NOT EXISTS (SELECT 1 FROM test_case t WHERE t.project_id = {project_id} AND t.name = s.name)
        GROUP BY s.name ORDER BY s.name"""
    try:
        async with session.begin_nested():
            await _exec(session, sql)
    except IntegrityError:
        await _exec(session, f"{sql} ON CONFLICT (project_id, name) DO NOTHING")


async def _analyse_results(session: AsyncSession, rj: ResultsJob, sealed: int, pg: bool) -> int:
    stage = stage_table(rj.job_id)
    if pg:
        # Fresh rows have no statistics yet: the planner would take the previous flow's million rows
        # for a handful and loop over them.  Hash joins are right whatever the sizes.
        await _exec(session, "SET LOCAL work_mem = '256MB'")
        await _exec(session, "SET LOCAL enable_nestloop = off")
        await _exec(session, "SET LOCAL enable_mergejoin = off")
        # JIT-compiling these large expressions costs far more than it saves (tens of seconds)
        await _exec(session, "SET LOCAL jit = off")
        if rj.staged > 10000:
            # row counts and the names' distinctness are all the plans need: a sample of 3 000 rows
            # (instead of 30 000) gives them in a tenth of the time
            await _exec(session, "SET LOCAL default_statistics_target = 10")
            await _exec(session, f"ANALYZE {stage}")
    watermark = int((await _exec(session, "SELECT COALESCE(max(id), 0) FROM test_case")).scalar() or 0)
    await _create_test_cases(session, int(rj.project_id), stage)
    # the latest CI flow (of the sealed history) with results in this environment
    # the latest sealed CI flow with results of this job (same stage and job name) in this
    # environment, else of any job in this environment: most tests find their previous result there
    hist: list[Any] = []
    for same_job in (True, False):
        key = "AND job_key = :k " if same_job else ""
        hist = list(
            (
                await _exec(
                    session,
                    f"SELECT run_id, job_id, dup_count FROM results_job WHERE branch_id = :b AND env_id = :e {key}"
                    "AND flow_kind = :ci AND flow_seq = (SELECT max(flow_seq) FROM results_job WHERE branch_id = :b "
                    f"AND env_id = :e {key}AND flow_kind = :ci AND flow_seq <= :sealed AND analysed > 0) "
                    "AND analysed > 0",
                    {"b": rj.branch_id, "e": rj.env_id, "ci": KIND_CI, "sealed": sealed, "k": rj.job_key},
                )
            ).all()
        )
        if hist:
            break
    lp_jobs = [(int(r[0]), int(r[1])) for r in hist]
    dedup = len(lp_jobs) > 1 or any(r[2] for r in hist)
    any_history = bool(hist)
    sql = _insert_sql(pg, rj, stage, _prev_sql(lp_jobs, dedup), sealed, watermark if any_history else None)
    res = await _exec(session, sql)
    inserted = int(res.rowcount)
    if inserted < 0 and not pg:  # pysqlite does not count statements that start with WITH
        inserted = int((await _exec(session, "SELECT changes()")).scalar() or 0)
    await _exec(session, f"DROP TABLE {stage}")
    await _store_failure_keys(session, rj, pg)

    # results of a test already seen in this job (the rows were inserted in test order: the distinct
    # count sorts presorted input instead of grouping a million tests in a hash table)
    dups = int(
        (
            await _exec(
                session,
                "SELECT count(*) - count(DISTINCT test_case_id) FROM test_result WHERE run_id = :r AND job_id = :j",
                {"r": rj.run_id, "j": rj.job_id},
            )
        ).scalar()
        or 0
    )
    # same commit: passed and failed in this job (reruns), or here and in another job of this
    # environment on the same commit (of this flow or of another flow that ran on the commit)
    this = [(rj.run_id, rj.job_id)]
    others = await _same_commit_jobs(session, rj)
    marked = 0
    if dups:
        res = await _exec(
            session,
            _flaky_update(
                pg,
                this + others,
                f"SELECT test_case_id FROM test_result WHERE {_of_jobs(this)} "
                "GROUP BY test_case_id "
                "HAVING sum(CASE WHEN status = 0 THEN 1 ELSE 0 END) > 0 "
                "AND sum(CASE WHEN status IN (1, 2) THEN 1 ELSE 0 END) > 0",
            ),
        )
        marked += res.rowcount
    if others:
        res = await _exec(
            session,
            _flaky_update(
                pg,
                this + others,
                "SELECT mine.test_case_id FROM test_result mine "
                "JOIN test_result other ON other.test_case_id = mine.test_case_id "
                f"WHERE {_of_jobs(this, 'mine')} AND {_of_jobs(others, 'other')} "
                "AND ((mine.status = 0 AND other.status IN (1, 2)) OR (mine.status IN (1, 2) AND other.status = 0))",
            ),
        )
        marked += res.rowcount
    if marked != 0:
        for _, other in others:
            await _refresh_summary(session, other)
    if rj.perf_candidates > 0:
        await _analyse_perf(session, rj.run_id, rj.job_id)
    rj.dup_count = dups
    rj.analysed += inserted
    rj.staged = 0
    rj.perf_candidates = 0
    return inserted


async def _store_failure_keys(session: AsyncSession, rj: ResultsJob, pg: bool) -> int:
    """Key each failed or error result of the job by its failure signature (``kraken.results.signatures``).

    Only failures are read (through the run index: every failure has relevancy >= 1); a message is
    normalised once however many results share it; one statement writes every key."""
    rows = (
        await _exec(
            session,
            "SELECT id, message FROM test_result WHERE run_id = :r AND relevancy > 0 AND job_id = :j "
            "AND status IN (1, 2)",
            {"r": rj.run_id, "j": rj.job_id},
        )
    ).all()
    if not rows:
        return 0
    keys: dict[str | None, str] = {}
    ids: list[int] = []
    values: list[str] = []
    for rid, message in rows:
        key = keys.get(message)
        if key is None:
            key = keys[message] = failure_key(message)
        ids.append(int(rid))
        values.append(key)
    if pg:
        # by primary key, row by row: the hash joins set for the analysis would scan the whole table
        await _exec(session, "SET LOCAL enable_nestloop = on")
        await _exec(
            session,
            "UPDATE test_result t SET failure_key = v.k FROM unnest(CAST(:ids AS BIGINT[]), CAST(:keys AS TEXT[])) "
            "AS v(id, k) WHERE t.id = v.id",
            {"ids": ids, "keys": values},
        )
        await _exec(session, "SET LOCAL enable_nestloop = off")
    else:
        await session.execute(
            sa.text("UPDATE test_result SET failure_key = :k WHERE id = :id"),
            [{"id": i, "k": k} for i, k in zip(ids, values, strict=True)],
        )
    return len(ids)


async def _refresh_summary(session: AsyncSession, job_id: int) -> None:
    rj = await session.get(ResultsJob, job_id)
    if rj is not None:
        summary = await job_summary(session, rj.run_id, job_id)
        summary.update(await _issue_summary(session, job_id))
        rj.summary = summary
        session.add(rj)


# ------------------------------------------------------------------------------ ordering


async def _sealed(session: AsyncSession, branch_id: int) -> int:
    rb = await session.get(ResultsBranch, branch_id)
    return rb.sealed_seq if rb is not None else 0


async def _job_info(db: Database, job_id: int) -> tuple[int, str] | None:
    """(branch_id, flow kind) of a job."""
    async with db.session(quick=True) as s:  # runs for every job: one keyed read
        row = (
            await _exec(
                s,
                "SELECT f.branch_id, f.kind FROM job j JOIN run r ON r.id = j.run_id JOIN flow f ON f.id = r.flow_id "
                "WHERE j.id = :j",
                {"j": job_id},
            )
        ).one_or_none()
    return (int(row[0]), str(row[1])) if row is not None else None


async def analyze_job(db: Database, job_id: int) -> list[int]:
    """Analyse a completed job's results (idempotent): now for a dev flow or when its CI flow's
    history is sealed; otherwise it stays staged until the earlier CI flows are.

    Returns the jobs whose results were analysed now (this one and CI jobs that waited)."""
    info = await _job_info(db, job_id)
    if info is None:
        return []
    branch_id, kind = info
    if kind != "ci":
        async with db.transaction() as s:
            await lock_branch(s, branch_id)
            await analyse_job_tx(s, job_id, await _sealed(s, branch_id))
        return [job_id]
    return await advance_branch(db, branch_id, ready={job_id})


async def _has_unsealed_results(db: Database, branch_id: int) -> bool:
    """Whether a CI flow of the branch that is not sealed yet has results or issues (a read, no lock)."""
    async with db.session(quick=True) as s:  # runs for every job and flow: one indexed read
        row = (
            await _exec(
                s,
                "SELECT 1 FROM results_job WHERE branch_id = :b AND flow_kind = 0 AND flow_seq > "
                "COALESCE((SELECT sealed_seq FROM results_branch WHERE branch_id = :b), 0) LIMIT 1",
                {"b": branch_id},
            )
        ).first()
    return row is not None


async def advance_branch(db: Database, branch_id: int, ready: set[int] | None = None) -> list[int]:
    """Analyse waiting CI jobs and seal CI flows of a branch, in flow order, as far as possible.

    Flows without results are sealed lazily, when a later flow with results needs them sealed:
    most jobs report no test results, and their completion must not take the write lock here.

    ``ready``: jobs known to be complete (their task was called) even if not marked so yet.
    Returns the jobs analysed."""
    ready = ready or set()
    done: list[int] = []
    if not await _has_unsealed_results(db, branch_id):
        return done
    while True:
        async with db.transaction() as s:
            await lock_branch(s, branch_id)
            sealed = await _sealed(s, branch_id)
            flow = (
                await _exec(
                    s,
                    "SELECT id, seq FROM flow WHERE branch_id = :b AND kind = 'ci' AND seq > :sealed "
                    "ORDER BY seq LIMIT 1",
                    {"b": branch_id, "sealed": sealed},
                )
            ).one_or_none()
            if flow is None:
                return done
            flow_id, flow_seq = int(flow[0]), int(flow[1])
            pending = [
                int(r[0])
                for r in (
                    await _exec(
                        s,
                        "SELECT rj.job_id, j.state FROM results_job rj JOIN job j ON j.id = rj.job_id "
                        "WHERE rj.flow_id = :f AND (rj.staged > 0 OR rj.issues_pending > 0)",
                        {"f": flow_id},
                    )
                ).all()
                if r[1] == "completed" or int(r[0]) in ready
            ]
        for job_id in pending:
            async with db.transaction() as s:
                await lock_branch(s, branch_id)
                if await _sealed(s, branch_id) != sealed:
                    break  # another worker moved on; start over
                await analyse_job_tx(s, job_id, sealed)
            done.append(job_id)
        async with db.transaction() as s:
            await lock_branch(s, branch_id)
            if await _sealed(s, branch_id) != sealed:
                continue
            state = (await _exec(s, "SELECT state FROM flow WHERE id = :f", {"f": flow_id})).scalar()
            open_jobs = (
                await _exec(
                    s,
                    "SELECT count(*) FROM job j JOIN run r ON r.id = j.run_id "
                    "WHERE r.flow_id = :f AND j.state <> 'completed'",
                    {"f": flow_id},
                )
            ).scalar()
            waiting = (
                await _exec(
                    s,
                    "SELECT count(*) FROM results_job WHERE flow_id = :f AND (staged > 0 OR issues_pending > 0)",
                    {"f": flow_id},
                )
            ).scalar()
            if state != "completed" or open_jobs or waiting:
                return done
            rb = await s.get(ResultsBranch, branch_id)
            if rb is None:
                rb = ResultsBranch(branch_id=branch_id)
            rb.sealed_seq = flow_seq
            rb.sealed_flow_id = flow_id
            s.add(rb)
            log.info("branch %s: CI flow %s (seq %s) sealed", branch_id, flow_id, flow_seq)


# ------------------------------------------------------------------------------ tasks


async def announce(ctx: TaskContext, job_ids: list[int]) -> None:
    """Tell live pages that these jobs' results are analysed (event ``results``)."""
    if not job_ids:
        return
    async with ctx.db.session() as s:
        rows = (
            await s.execute(
                select(Job.id, Run.id, Run.flow_id).join(Run, col(Run.id) == Job.run_id).where(col(Job.id).in_(job_ids))
            )
        ).all()
    for job_id, run_id, flow_id in rows:
        await ctx.bus.publish("events", {"kind": "results", "job_id": job_id, "run_id": run_id, "flow_id": flow_id})


@task
async def analyze_job_results(ctx: TaskContext, job_id: int) -> None:
    """Enqueued when a job completes: analyse its results (or keep them waiting for earlier CI flows)."""
    await announce(ctx, await analyze_job(ctx.db, job_id))


@task
async def analyze_flow_results(ctx: TaskContext, flow_id: int) -> None:
    """Enqueued when a flow completes: seal it and analyse the CI jobs that waited for it."""
    async with ctx.db.session(quick=True) as s:
        branch_id = (await _exec(s, "SELECT branch_id FROM flow WHERE id = :f", {"f": flow_id})).scalar()
    if branch_id is not None:
        await announce(ctx, await advance_branch(ctx.db, int(branch_id)))
