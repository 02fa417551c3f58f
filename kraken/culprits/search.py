"""Culprit searches: created for a CI run's regressions, narrowed by bisection flows.

Life of a search (``CulpritSearch.state``):

- ``pending``: created (``start``); the ``culprit_prepare`` task reads the range from the
  repository (``kraken.culprits.history``);
- a range of one commit is ``found`` at once, without a flow; a longer one is ``bisecting``:
  a DEV flow of the run's stage runs on the middle commit with only the search's tests
  (``kraken.culprits.pin``); when it completes (``culprit_flow_completed``) the half that holds
  the first bad commit is kept, until one commit is left: ``found``.  Tests that pass on the
  middle commit while others of the group fail there have another cause: they move to a new
  search on the newer half (sharing the flows so far);
- ``range``: the range is known but not bisected (flaky tests, a range over MAX_RANGE commits);
- ``failed``: with ``reason`` (repository unreachable, no passing flow with a commit, a
  bisection flow that ended without running the tests).

Each step locks its search row and checks ``current_flow_id``, so a task that runs twice
changes nothing the second time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.culprits.history import MAX_RANGE, RangeError, commit_range
from kraken.culprits.known import FINISHED
from kraken.culprits.known import commit_info as commit_info  # the API reads it from here
from kraken.culprits.pin import CULPRIT_REASON
from kraken.culprits.ranges import regression_groups, test_outcomes
from kraken.models import Branch, Flow, Job, Run, Stage
from kraken.models.base import utcnow
from kraken.models.culprits import CulpritSearch, CulpritSetting
from kraken.models.enums import FlowKind, State
from kraken.results.analysis import analyze_job

log = logging.getLogger(__name__)

PREPARE_TASK = "culprit_prepare"
NOTIFY_TASK = "notify_culprit"  # kraken.notify.tasks: the run's channels hear how the search ended
PENDING, BISECTING, FOUND, RANGE, FAILED = "pending", "bisecting", "found", "range", "failed"


class NotSearchable(Exception):
    """The run cannot have culprit searches (not a CI run, results not analysed): the message says why."""


def mirrors_dir(data_dir: Path) -> Path:
    return data_dir / "culprit-repos"


async def searches_of(session: AsyncSession, run_id: int) -> list[CulpritSearch]:
    rows = await session.execute(
        select(CulpritSearch).where(CulpritSearch.run_id == run_id).order_by(col(CulpritSearch.id))
    )
    return list(rows.scalars().all())


async def auto_enabled(session: AsyncSession, branch_id: int) -> bool:
    setting = await session.get(CulpritSetting, branch_id)
    return bool(setting and setting.auto)


def _announce(search: CulpritSearch, effects: Effects) -> None:
    """Live pages (and waiting clients) hear of the search's new state (event ``culprit``); a
    finished search is also told to the run's notification channels (once: the task's key)."""
    effects.event("culprit", id=search.id, run_id=search.run_id, state=search.state, culprit=search.culprit)
    if search.state in FINISHED:
        effects.enqueue(NOTIFY_TASK, key=f"{NOTIFY_TASK}:{search.id}", search_id=search.id)


def _finish(search: CulpritSearch, state: str, reason: str | None = None, culprit: str | None = None) -> None:
    search.state = state
    search.reason = reason
    search.culprit = culprit
    search.current_flow_id = None
    search.finished = utcnow()


async def start(session: AsyncSession, run_id: int, effects: Effects) -> list[CulpritSearch]:
    """The run's searches, created now when it has none (one per range of its regressed tests).

    Inside a write transaction; a ``culprit_prepare`` task is recorded for each pending search."""
    from kraken.culprits.ranges import unanalysed_jobs

    flow, run = await orchestration.lock_run(session, run_id)
    existing = await searches_of(session, run_id)
    if existing:
        return existing
    if flow.kind != FlowKind.CI or (flow.trigger or {}).get("reason") == CULPRIT_REASON:
        raise NotSearchable(f"run {run_id} is not in a CI flow: culprits are searched for CI runs' regressions")
    if run.state != State.COMPLETED:
        raise NotSearchable(f"run {run_id} is {run.state}: culprits are searched once it has completed")
    if await unanalysed_jobs(session, run_id):
        raise NotSearchable(f"the results of run {run_id} are not analysed yet (earlier CI flows still run)")
    branch = await session.get(Branch, flow.branch_id)
    # the branch's repository (set by its maintainers), else the one the flow checked out
    repo_url = (branch.repo_url if branch else None) or (flow.commits[0].get("repo_url") if flow.commits else None)
    out: list[CulpritSearch] = []
    for group in await regression_groups(session, run_id):
        search = CulpritSearch(
            run_id=run_id,
            branch_id=flow.branch_id,
            stage_id=run.stage_id,
            tests=group.tests,
            good_commit=group.good_commit,
            bad_commit=group.bad_commit,
            repo_url=repo_url,
        )
        if group.flaky:
            _finish(search, RANGE, "flaky test: not bisected")
        elif not group.good_commit or not group.bad_commit:
            _finish(search, FAILED, "no commit is recorded for the flow where the tests last passed or first failed")
        elif group.good_commit == group.bad_commit:
            _finish(search, FAILED, "the tests passed and failed on the same commit: no commit to blame")
        elif not repo_url:
            _finish(search, FAILED, "neither the flow nor the branch names a repository")
        session.add(search)
        out.append(search)
    await session.flush()
    for search in out:
        _announce(search, effects)
        if search.state == PENDING:
            effects.enqueue(PREPARE_TASK, key=f"{PREPARE_TASK}:{search.id}", search_id=search.id)
    return out


async def prepare(db: Database, data_dir: Path, search_id: int, effects: Effects) -> None:
    """Read a pending search's range from the repository and start its bisection."""
    async with db.session() as s:
        search = await s.get(CulpritSearch, search_id)
    if search is None or search.state != PENDING:
        return
    assert search.repo_url and search.good_commit and search.bad_commit
    problem: str | None = None
    commits: list[dict[str, Any]] = []
    try:
        commits = await commit_range(mirrors_dir(data_dir), search.repo_url, search.good_commit, search.bad_commit)
    except RangeError as exc:
        problem = str(exc)
    async with db.transaction(quick=True) as s:
        search = await orchestration.lock_row(s, CulpritSearch, search_id)
        if search.state != PENDING:
            return
        if problem is not None:
            _finish(search, FAILED, problem)
        else:
            search.commits = commits
            search.lo, search.hi = 0, len(commits)
            if len(commits) > MAX_RANGE:
                _finish(search, RANGE, f"more than {MAX_RANGE} commits in the range: not bisected")
            else:
                await _step(s, search, effects)
        _announce(search, effects)


def _sha(search: CulpritSearch, index: int) -> str:
    """Commit ``index`` of ``[good] + commits``."""
    return str(search.good_commit) if index == 0 else str(search.commits[index - 1]["id"])


async def _step(session: AsyncSession, search: CulpritSearch, effects: Effects) -> None:
    """Name the culprit when one commit is left, else start the flow on the middle commit."""
    if search.hi - search.lo <= 1:
        _finish(search, FOUND, culprit=_sha(search, search.hi))
        return
    mid = (search.lo + search.hi) // 2
    stage = await session.get(Stage, search.stage_id) if search.stage_id is not None else None
    run = await session.get(Run, search.run_id)
    ci_flow = await session.get(Flow, run.flow_id) if run is not None else None
    branch = await session.get(Branch, search.branch_id)
    if stage is None or not stage.enabled or ci_flow is None or branch is None:
        _finish(search, FAILED, "the run's stage was deleted or disabled")
        return
    sha = _sha(search, mid)
    trigger = {"reason": CULPRIT_REASON, "search_id": search.id, "commit": sha, "tests": search.tests}
    flow = await orchestration.create_flow(session, branch, FlowKind.DEV, dict(ci_flow.args), effects, trigger, [stage])
    assert flow.id is not None
    search.state = BISECTING
    search.current_flow_id = flow.id
    search.flows = [*search.flows, flow.id]


async def flow_completed(db: Database, flow_id: int, effects: Effects) -> None:
    """A bisection flow completed: keep the half of its search's range that holds the culprit."""
    async with db.session() as s:
        search = (
            (await s.execute(select(CulpritSearch).where(CulpritSearch.current_flow_id == flow_id))).scalars().first()
        )
        jobs = select(Job.id).join(Run, col(Run.id) == Job.run_id).where(Run.flow_id == flow_id)
        job_ids = list((await s.execute(jobs)).scalars())
    if search is None:
        return
    for job_id in job_ids:  # its results are analysed before they are read (idempotent)
        assert job_id is not None
        await analyze_job(db, job_id)
    async with db.transaction(quick=True) as s:
        search = await orchestration.lock_row(s, CulpritSearch, int(search.id or 0))
        if search.current_flow_id != flow_id:
            return
        flow = await s.get(Flow, flow_id)
        outcomes = await test_outcomes(s, flow_id, search.tests)
        mid = (search.lo + search.hi) // 2
        sha = _sha(search, mid)
        if not outcomes:
            reason = await _run_reason(s, flow_id)
            _finish(
                search,
                FAILED,
                f"none of the tests ran in bisection flow {flow_id} on {sha[:12]} "
                f"(it ended {flow.result if flow else 'deleted'}{reason})",
            )
            _announce(search, effects)
            return
        bad = [t for t in search.tests if not outcomes.get(t, False)]  # a test that did not run counts as broken
        good = [t for t in search.tests if outcomes.get(t, False)]
        if bad and good:  # two causes: the passing tests broke later
            other = CulpritSearch(
                run_id=search.run_id,
                branch_id=search.branch_id,
                stage_id=search.stage_id,
                tests=good,
                good_commit=search.good_commit,
                bad_commit=search.bad_commit,
                repo_url=search.repo_url,
                commits=search.commits,
                lo=mid,
                hi=search.hi,
                flows=list(search.flows),
                state=BISECTING,
            )
            s.add(other)
            await s.flush()
            await _step(s, other, effects)
            _announce(other, effects)
            search.tests = bad
        if bad:
            search.hi = mid
        else:
            search.lo = mid
        await _step(s, search, effects)
        _announce(search, effects)


async def _run_reason(session: AsyncSession, flow_id: int) -> str:
    reasons = (
        (await session.execute(select(Run.reason).where(Run.flow_id == flow_id, col(Run.reason).is_not(None))))
        .scalars()
        .all()
    )
    return f": {reasons[0]}" if reasons else ""
