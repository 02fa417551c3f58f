"""Agents: list, enable/disable, groups; the agent token for starting new agents."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.control.agents import agent_groups, online_clause, set_agent_groups
from kraken.models import Agent, AgentGroup
from kraken.schemas.api import AgentOut, AgentPatch, AgentTokenOut
from kraken.schemas.ints import Id

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
        )
        for a in agents
    ]


@router.get("/agents", response_model=list[AgentOut])
async def list_agents(session: SessionDep, state: StateDep, _: UserDep) -> list[AgentOut]:
    agents = list((await session.execute(select(Agent).order_by(col(Agent.name)))).scalars())
    return await agents_out(session, agents, state.runtime.settings.agent_timeout)


@router.get("/agents/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: Id, session: SessionDep, state: StateDep, _: UserDep) -> AgentOut:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
    return (await agents_out(session, [agent], state.runtime.settings.agent_timeout))[0]


@router.patch("/agents/{agent_id}", response_model=AgentOut)
async def patch_agent(agent_id: Id, body: AgentPatch, state: StateDep, _: UserDep) -> AgentOut:
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
    async with state.runtime.db.session() as session:
        agent = await session.get(Agent, agent_id)
        assert agent is not None
        return (await agents_out(session, [agent], state.runtime.settings.agent_timeout))[0]


@router.get("/agent-groups", response_model=list[str])
async def list_groups(session: SessionDep, _: UserDep) -> list[str]:
    return list((await session.execute(select(AgentGroup.name).order_by(col(AgentGroup.name)))).scalars())


@router.get("/settings/agent-token", response_model=AgentTokenOut)
async def agent_token(state: StateDep, user: UserDep) -> AgentTokenOut:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin may read the agent token")
    return AgentTokenOut(token=state.agent_token)
