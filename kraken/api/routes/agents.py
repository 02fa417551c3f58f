"""Agents: list, approve/revoke, enable/disable, groups; the shared token with which agents enroll."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.authz import AdminOnly
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.api.state import ServerState
from kraken.control.agents import (
    AgentRefused,
    agent_groups,
    approve_agent,
    online_clause,
    revoke_agent,
    set_agent_groups,
)
from kraken.models import Agent, AgentGroup, User
from kraken.schemas.api import AgentOut, AgentPatch, AgentTokenOut
from kraken.schemas.ints import Id

log = logging.getLogger(__name__)
router = APIRouter(tags=["agents"])


async def agents_out(session: AsyncSession, agents: list[Agent], timeout: float) -> list[AgentOut]:
    ids = [a.id for a in agents if a.id is not None]
    groups = await agent_groups(session, ids)
    online = set((await session.execute(select(Agent.id).where(online_clause(timeout)))).scalars())
    return [
        AgentOut(
            id=a.id,
            name=a.name,
            online=a.id in online,
            enabled=a.enabled,
            groups=groups.get(a.id, []),  # type: ignore[arg-type]
            capabilities=a.capabilities,
            current_job_id=a.current_job_id,
            last_seen=a.last_seen,
            address=a.address,
            approved=a.approved,
            enrolled=a.credential_hash is not None,
            requested_groups=a.requested_groups or [],
        )
        for a in agents
    ]


@router.get("/agents", response_model=list[AgentOut], dependencies=[AdminOnly])
async def list_agents(session: SessionDep, state: StateDep, _: UserDep) -> list[AgentOut]:
    agents = list((await session.execute(select(Agent).order_by(col(Agent.name)))).scalars())
    return await agents_out(session, agents, state.runtime.settings.agent_timeout)


@router.get("/agents/{agent_id}", response_model=AgentOut, dependencies=[AdminOnly])
async def get_agent(agent_id: Id, session: SessionDep, state: StateDep, _: UserDep) -> AgentOut:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
    return (await agents_out(session, [agent], state.runtime.settings.agent_timeout))[0]


def require_admin(user: User, what: str) -> None:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only an administrator may {what}")


async def _agent_out(state: ServerState, agent_id: int) -> AgentOut:
    async with state.runtime.db.session() as session:
        agent = await session.get(Agent, agent_id)
        assert agent is not None
        return (await agents_out(session, [agent], state.runtime.settings.agent_timeout))[0]


@router.patch("/agents/{agent_id}", response_model=AgentOut, dependencies=[AdminOnly])
async def patch_agent(agent_id: Id, body: AgentPatch, state: StateDep, user: UserDep) -> AgentOut:
    """Enable or disable an agent, set its groups (administrators only: groups decide which jobs,
    and so which secrets, reach an agent)."""
    require_admin(user, "change agents")
    async with state.write() as (session, effects):
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
        if body.enabled is not None:
            agent.enabled = body.enabled
        if body.groups is not None:
            bad = [g for g in body.groups if not g.strip()]
            if bad:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "group names must not be empty")
            await set_agent_groups(session, agent, body.groups, replace=True)
        effects.wake_scheduler = True
        effects.event("agent", id=agent_id, enabled=agent.enabled)
    return await _agent_out(state, agent_id)


@router.post("/agents/{agent_id}/approve", response_model=AgentOut, dependencies=[AdminOnly])
async def approve(agent_id: Id, state: StateDep, user: UserDep) -> AgentOut:
    """Let an enrolled agent run jobs (409 for a revoked agent: it must enroll again first)."""
    require_admin(user, "approve agents")
    async with state.write() as (session, effects):
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
        try:
            await approve_agent(session, agent)
        except AgentRefused as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        effects.wake_scheduler = True
        effects.event("agent", id=agent_id, approved=True)
    return await _agent_out(state, agent_id)


@router.post("/agents/{agent_id}/revoke", response_model=AgentOut, dependencies=[AdminOnly])
async def revoke(agent_id: Id, state: StateDep, user: UserDep) -> AgentOut:
    """Cut an agent off at once: its credential stops working, its websocket is closed, its running
    job ends with ``error``.  It may enroll again (pending) under its name."""
    require_admin(user, "revoke agents")
    async with state.write() as (session, effects):
        if await session.get(Agent, agent_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
        await revoke_agent(session, agent_id, effects)
        effects.event("agent", id=agent_id, approved=False)
    log.warning("agent %s revoked by %s", agent_id, user.username)
    return await _agent_out(state, agent_id)


@router.get("/agent-groups", response_model=list[str], dependencies=[AdminOnly])
async def list_groups(session: SessionDep, _: UserDep) -> list[str]:
    return list((await session.execute(select(AgentGroup.name).order_by(col(AgentGroup.name)))).scalars())


@router.get("/settings/agent-token", response_model=AgentTokenOut, dependencies=[AdminOnly])
async def agent_token(state: StateDep, user: UserDep) -> AgentTokenOut:
    require_admin(user, "read the agent token")
    return AgentTokenOut(token=state.agent_token)
