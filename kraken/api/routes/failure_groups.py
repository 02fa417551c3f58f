"""A run's failures grouped by cause (``kraken.results.groups``).

- ``GET /runs/{id}/failure-groups``: "312 failures, 3 causes": each cause with its count, a
  representative message, its signature, its first tests and whether it failed tests in the
  branch's earlier CI flows (known) or not (new), with the earliest and latest such flows;
- ``GET /runs/{id}/failure-groups/{key}/tests``: all the failures of one cause, paged by result id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from kraken.api.authz import viewer
from kraken.api.routes.results import DbDep
from kraken.results.groups import FlowSeen, Group, group_tests, run_flow, run_groups
from kraken.results.statuses import CHANGE_NAMES, STATUS_NAMES
from kraken.schemas.ints import Count, Id
from kraken.schemas.results import (
    FailureFlowOut,
    FailureGroupOut,
    FailureGroupsOut,
    FailureTestOut,
    FailureTestsPage,
)

router = APIRouter(tags=["results"])

Key = Annotated[str, Path(pattern="^[0-9a-f]{16}$", description="a group's key (16 hex digits)")]


def _test(t: dict[str, object]) -> FailureTestOut:
    return FailureTestOut.model_validate(
        {**t, "status": STATUS_NAMES[int(t["status"])], "change": CHANGE_NAMES[int(t["change"])]}  # type: ignore[call-overload]
    )


def _flow(f: FlowSeen | None) -> FailureFlowOut | None:
    return None if f is None else FailureFlowOut(flow_id=f.flow_id, flow_seq=f.flow_seq, run_id=f.run_id, count=f.count)


def _group(g: Group, tests: int) -> FailureGroupOut:
    return FailureGroupOut(
        key=g.key,
        signature=g.signature,
        count=g.count,
        message=g.message,
        tests=[_test(t) for t in g.tests],
        more_tests=g.count > min(tests, len(g.tests)) if tests else g.count > 0,
        known=g.first_seen is not None,
        earlier_flows=g.earlier_flows,
        first_seen=_flow(g.first_seen),
        recent=[f for f in map(_flow, g.recent) if f is not None],
    )


async def _require_run(db: DbDep, run_id: int) -> None:
    async with db.session() as s:
        if await run_flow(s, run_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")


@router.get("/runs/{run_id}/failure-groups", response_model=FailureGroupsOut, dependencies=[viewer("run_id")])
async def failure_groups(
    run_id: Id,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500, description="groups returned, largest first")] = 50,
    tests: Annotated[int, Query(ge=0, le=200, description="tests listed per group")] = 20,
) -> FailureGroupsOut:
    await _require_run(db, run_id)
    async with db.session() as s:
        out = await run_groups(s, run_id, limit, tests)
    return FailureGroupsOut(
        run_id=run_id,
        failures=out.failures,
        causes=out.causes,
        unkeyed=out.unkeyed,
        groups=[_group(g, tests) for g in out.groups],
    )


@router.get(
    "/runs/{run_id}/failure-groups/{key}/tests", response_model=FailureTestsPage, dependencies=[viewer("run_id")]
)
async def failure_group_tests(
    run_id: Id,
    key: Key,
    db: DbDep,
    after: Annotated[Count, Query(description="the last result id of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FailureTestsPage:
    await _require_run(db, run_id)
    async with db.session() as s:
        rows = await group_tests(s, run_id, key, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return FailureTestsPage(items=[_test(t) for t in rows], next_after=rows[-1]["result_id"] if more else None)
