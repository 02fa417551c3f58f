"""Flows: start, list, read, cancel; start a stage (a manual one) in an existing flow."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api import idempotency
from kraken.api.authz import member, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.api.idempotency import IdempotencyKeyHeader
from kraken.api.state import ServerState
from kraken.control import orchestration
from kraken.control.archive import archived_reason
from kraken.control.effects import Effects
from kraken.models import Branch, Flow, Run
from kraken.models.enums import FlowKind
from kraken.schemas.api import FlowIn, FlowOut, FlowPage, RunBrief, RunOut, RunStart
from kraken.schemas.ints import Count, Id

router = APIRouter(tags=["flows"])


async def flow_out(session: SessionDep, flow: Flow) -> FlowOut:
    runs = (await session.execute(select(Run).where(Run.flow_id == flow.id).order_by(col(Run.id)))).scalars()
    out = FlowOut.model_validate(flow)
    out.runs = [RunBrief.model_validate(r) for r in runs]
    return out


async def _read_flow(state: ServerState, flow_id: int) -> FlowOut:
    async with state.runtime.db.session() as session:
        flow = await session.get(Flow, flow_id)
        assert flow is not None
        return await flow_out(session, flow)


@router.post(
    "/branches/{branch_id}/flows",
    response_model=FlowOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[member("branch_id")],
)
async def create_flow(
    branch_id: Id, body: FlowIn, state: StateDep, user: UserDep, idempotency_key: IdempotencyKeyHeader = None
) -> FlowOut:
    """Start a flow.  With an ``Idempotency-Key`` header, the same request sent again answers
    with the flow the first one started."""

    async def create(session: AsyncSession, effects: Effects) -> int:  # stage code is evaluated after the commit
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        if archived := await archived_reason(session, branch):
            raise HTTPException(status.HTTP_409_CONFLICT, f"{archived}: no new flows (unarchive it first)")
        flow = await orchestration.create_flow(
            session, branch, FlowKind(body.kind), body.args, effects, {"reason": "manual", "user": user.username}
        )
        assert flow.id is not None
        return flow.id

    flow_id = await idempotency.once(state, user, idempotency_key, f"POST /branches/{branch_id}/flows", create)
    return await _read_flow(state, flow_id)


@router.get("/branches/{branch_id}/flows", response_model=FlowPage, dependencies=[viewer("branch_id")])
async def list_flows(
    branch_id: Id,
    session: SessionDep,
    _: UserDep,
    kind: FlowKind | None = None,
    limit: int = Query(20, ge=1, le=200),
    offset: Count = 0,
) -> FlowPage:
    where = [col(Flow.branch_id) == branch_id]
    if kind is not None:
        where.append(col(Flow.kind) == kind.value)
    total = (await session.execute(select(sa.func.count()).select_from(Flow).where(*where))).scalar_one()
    flows = (
        (await session.execute(select(Flow).where(*where).order_by(col(Flow.id).desc()).limit(limit).offset(offset)))
        .scalars()
        .all()
    )
    runs = (
        (await session.execute(select(Run).where(col(Run.flow_id).in_([f.id for f in flows])).order_by(col(Run.id))))
        .scalars()
        .all()
    )
    items = []
    for f in flows:
        fo = FlowOut.model_validate(f)
        fo.runs = [RunBrief.model_validate(r) for r in runs if r.flow_id == f.id]
        items.append(fo)
    return FlowPage(total=total, items=items)


@router.get("/flows/{flow_id}", response_model=FlowOut, dependencies=[viewer("flow_id")])
async def get_flow(flow_id: Id, session: SessionDep, _: UserDep) -> FlowOut:
    flow = await session.get(Flow, flow_id)
    if flow is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow {flow_id} not found")
    return await flow_out(session, flow)


@router.post("/flows/{flow_id}/cancel", response_model=FlowOut, dependencies=[member("flow_id")])
async def cancel_flow(flow_id: Id, state: StateDep, _: UserDep) -> FlowOut:
    async with state.write() as (session, effects):
        if await session.get(Flow, flow_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow {flow_id} not found")
        await orchestration.cancel_flow(session, flow_id, effects)
    return await _read_flow(state, flow_id)


@router.post(
    "/flows/{flow_id}/runs",
    response_model=RunOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[member("flow_id")],
)
async def start_stage(
    flow_id: Id, body: RunStart, state: StateDep, user: UserDep, idempotency_key: IdempotencyKeyHeader = None
) -> Run:
    """Start a stage in this flow: a manual stage that is ready (``manual_stages``), or any
    enabled stage of the branch that has not run in this flow.  A completed flow reopens.
    With an ``Idempotency-Key`` header, the same request sent again answers with the run the
    first one started."""

    async def create(session: AsyncSession, effects: Effects) -> int:
        if await session.get(Flow, flow_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow {flow_id} not found")
        try:
            run = await orchestration.start_stage(session, flow_id, body.stage_name, effects)
        except orchestration.StartRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        assert run.id is not None
        return run.id

    request = f"POST /flows/{flow_id}/runs {body.stage_name}"
    run_id = await idempotency.once(state, user, idempotency_key, request, create)
    async with state.runtime.db.session() as session:
        started = await session.get(Run, run_id)
        assert started is not None
        return started
