"""Ingestion of the ``test_results`` and ``issues`` messages agents send.

A ``test_results`` message is ``{"type": "test_results", "step_index": int, "tool": str,
"results": [[name, status, duration, message, values], ...]}`` (at most a few thousand
items; ``status`` is a name from ``statuses.STATUS_NAMES``).  Its results are appended in
bulk (COPY on PostgreSQL, executemany on SQLite) to the job's staging table
``results_stage_<job_id>``; the job's analysis (``kraken.results.analysis``) moves them,
analysed, into ``test_result`` in one set-based statement.

An ``issues`` message is ``{"type": "issues", "step_index": int, "tool": str, "issues":
[[path, line, column, symbol, message, type], ...]}``; a linter step always sends at least
one (possibly empty) so the server knows the linter ran.

The values of the secrets the job was given are masked (``******``) in test names, messages and
values' names, and in issues' paths, symbols and messages, as in the job's log.

The agent machinery applies each message exactly once, in the transaction of the handler.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.control.effects import Effects
from kraken.control.job_message_dispatch import handles
from kraken.models import Branch, Flow, Job, Run
from kraken.models.results import Issue, ResultsJob, TestEnv
from kraken.protocol import Issues, TestResults
from kraken.results import quarantine
from kraken.results.durations import results_key
from kraken.results.parsers.base import bound_message, bound_name
from kraken.results.statuses import ERROR, FAILED, ISSUE_TYPES, KIND_CI, KIND_DEV, STATUS_CODES
from kraken.secrets.refs import Masker
from kraken.secrets.store import job_masker

log = logging.getLogger(__name__)

PERF_MIN_DURATION = 1.0  # seconds: shorter durations are too noisy to compare
STAGE_COLUMNS = ["ord", "step_index", "name", "status", "duration", "message", "vals"]


def stage_table(job_id: int) -> str:
    return f"results_stage_{int(job_id)}"


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def results_job(session: AsyncSession, job: Job, *, lock: bool = True) -> ResultsJob:
    """The job's ``results_job`` row, created on its first results or issues (row-locked)."""
    assert job.id is not None
    stmt = sa.select(ResultsJob).where(ResultsJob.job_id == job.id)  # type: ignore[arg-type]
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    rj = (await session.execute(stmt)).scalar_one_or_none()
    if rj is not None:
        return rj
    run = await session.get(Run, job.run_id)
    assert run is not None
    flow = await session.get(Flow, run.flow_id)
    assert flow is not None
    branch = await session.get(Branch, flow.branch_id)
    assert branch is not None
    env_id = await ensure_env(session, job)
    rj = ResultsJob(
        job_id=job.id,
        run_id=run.id,  # type: ignore[arg-type]
        flow_id=flow.id,  # type: ignore[arg-type]
        branch_id=branch.id,  # type: ignore[arg-type]
        project_id=branch.project_id,
        env_id=env_id,
        flow_kind=KIND_CI if flow.kind == "ci" else KIND_DEV,
        flow_seq=flow.seq,
        job_key=results_key(run.stage_name, job),
    )
    session.add(rj)
    await session.flush()
    return rj


def env_config(job: Job) -> str:
    if job.config_name:
        return job.config_name[:200]
    if job.config:
        return orjson.dumps(job.config, option=orjson.OPT_SORT_KEYS).decode()[:200]
    return ""


async def ensure_env(session: AsyncSession, job: Job) -> int:
    key = {"system": job.system[:200], "agents_group": job.agents_group[:200], "config": env_config(job)}
    table = TestEnv.__table__  # type: ignore[attr-defined]
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await session.execute(pg_insert(table).values(**key).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        await session.execute(sqlite_insert(table).values(**key).on_conflict_do_nothing())
    env_id = (
        await session.execute(
            sa.select(table.c.id).where(
                table.c.system == key["system"],
                table.c.agents_group == key["agents_group"],
                table.c.config == key["config"],
            )
        )
    ).scalar_one()
    return int(env_id)


_SEQUENCE = (list, tuple)  # constants: ``list | tuple`` would build a union object for every result
_NUMBER = (int, float)


def _rows(
    items: list[Any], first_ord: int, step_index: int | None, masker: Masker | None = None
) -> tuple[list[tuple[Any, ...]], int, int]:
    """Validated staging rows (secrets masked), with the number of failed/error results and perf candidates."""
    rows: list[tuple[Any, ...]] = []
    failed = 0
    perf = 0
    codes = STATUS_CODES
    ord_ = first_ord
    for item in items:
        if not isinstance(item, _SEQUENCE) or len(item) < 2 or not isinstance(item[0], str):
            continue
        name = item[0]
        message = item[3] if len(item) > 3 and isinstance(item[3], str) else None
        values = item[4] if len(item) > 4 and isinstance(item[4], dict) and item[4] else None
        if masker:  # before bounding: a cut must not leave part of a secret
            name = masker.text(name)
            message = masker.text(message) if message is not None else None
            if values is not None:
                values = {masker.text(str(k)): masker.value(v) for k, v in values.items()}
        if len(name) > 500 or not name or name[0].isspace() or name[-1].isspace():
            name = bound_name(name) or "(unnamed)"
        status = codes.get(item[1], ERROR)
        duration = item[2] if len(item) > 2 and isinstance(item[2], _NUMBER) else None
        if message is not None and len(message) > 4096:
            message = bound_message(message)
        vals = orjson.dumps(values).decode() if values is not None else None
        if status in (FAILED, ERROR):
            failed += 1
        if values is not None or (duration is not None and duration >= PERF_MIN_DURATION):
            perf += 1
        rows.append((ord_, step_index, name, status, float(duration) if duration is not None else None, message, vals))
        ord_ += 1
    return rows, failed, perf


async def create_stage(session: AsyncSession, job_id: int) -> None:
    # names in test_case's collation (PostgreSQL: "C"), so that joins, sorts and groups need no conversion
    name = 'TEXT COLLATE "C"' if is_postgres(session) else "TEXT"
    conn = await session.connection()
    await conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {stage_table(job_id)} (ord INTEGER NOT NULL, step_index INTEGER, "
        f"name {name} NOT NULL, status SMALLINT NOT NULL, duration DOUBLE PRECISION, message TEXT, vals TEXT)"
    )


async def stage_rows(session: AsyncSession, job_id: int, rows: list[tuple[Any, ...]], exists: bool = False) -> None:
    """Bulk-append rows to the job's staging table, inside the session's transaction."""
    if not exists:
        await create_stage(session, job_id)
    conn = await session.connection()
    table = stage_table(job_id)
    if is_postgres(session):
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table, records=rows, columns=STAGE_COLUMNS)
    else:
        await conn.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(STAGE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )


async def ingest_results(
    session: AsyncSession,
    job: Job,
    step_index: int | None,
    items: list[Any],
    attempt: int = 1,
    rerun_clears: bool = True,
) -> int:
    """Stage a batch of results of ``job``; returns how many were kept.

    ``attempt`` > 1: a rerun of the tests that failed before (``TestResults.attempt``): its results
    are recorded as any others, but the job's test counts are those of its tests' first run, less
    the failures a rerun passed (with ``rerun_clears``); failures of quarantined tests are counted
    apart (``kraken.results.quarantine``)."""
    rj = await results_job(session, job)  # row-locked: serializes with the job's analysis
    masker = await job_masker(session, job.id)  # type: ignore[arg-type]
    rows, failed, perf = _rows(items, rj.next_ord, step_index, masker)
    if not rows:
        return 0
    await stage_rows(session, job.id, rows, exists=rj.staged > 0)  # type: ignore[arg-type]
    rj.next_ord += len(rows)
    rj.staged += len(rows)
    rj.received += len(rows)
    rj.received_failed += failed
    rj.perf_candidates += perf
    d_failed, d_quarantined = await quarantine.count_failures(session, rj.branch_id, rows, attempt, rerun_clears)
    if attempt == 1:
        job.tests_total += len(rows)
    job.tests_failed = max(0, job.tests_failed + d_failed)
    job.tests_quarantined = max(0, job.tests_quarantined + d_quarantined)
    session.add(rj)
    session.add(job)
    return len(rows)


@handles(TestResults)
async def on_test_results(session: AsyncSession, job: Job, msg: TestResults, effects: Effects) -> None:
    n = await ingest_results(session, job, msg.step_index, msg.results, msg.attempt, msg.rerun_clears)
    if n and job.state == "completed":
        # results after the job's end (not expected): analyse them too
        effects.enqueue("analyze_job_results", key=f"analyze_job_results:{job.id}:late", job_id=job.id)


def _issue_rows(
    rj: ResultsJob, step_index: int | None, tool: str, items: list[Any], masker: Masker
) -> list[dict[str, Any]]:
    rows = []
    for it in items:
        if not isinstance(it, list | tuple) or len(it) < 6:
            continue
        path, line, col, symbol, message, kind = it[:6]
        rows.append(
            {
                "job_id": rj.job_id,
                "run_id": rj.run_id,
                "flow_id": rj.flow_id,
                "branch_id": rj.branch_id,
                "flow_kind": rj.flow_kind,
                "flow_seq": rj.flow_seq,
                "job_key": rj.job_key,
                "step_index": step_index,
                "tool": tool[:50],
                "path": masker.text(str(path))[:1000],
                "line": int(line) if isinstance(line, int) else 0,
                "col": int(col) if isinstance(col, int) else 0,
                "symbol": masker.text(str(symbol))[:200],
                "message": bound_message(masker.text(str(message))) or "",
                "issue_type": str(kind) if kind in ISSUE_TYPES else "warning",
            }
        )
    return rows


@handles(Issues)
async def on_issues(session: AsyncSession, job: Job, msg: Issues, effects: Effects) -> None:
    rj = await results_job(session, job)
    masker = await job_masker(session, job.id)  # type: ignore[arg-type]
    rows = _issue_rows(rj, msg.step_index, msg.tool, msg.issues, masker)
    if rows:
        await session.execute(sa.insert(Issue), rows)
    rj.issues_reported = True
    rj.issues_pending += len(rows)
    rj.issues_total += len(rows)
    session.add(rj)


async def purge_orphans(session: AsyncSession) -> int:
    """Delete results and staging tables of jobs that no longer exist (deleted projects, retention)."""
    res = await session.execute(sa.text("DELETE FROM test_result WHERE job_id NOT IN (SELECT job_id FROM results_job)"))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
