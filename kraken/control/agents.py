"""Agents as the server sees them: registration and presence (their job messages: ``agent_messages``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.db import Database
from kraken.models import Agent, AgentGroup, AgentGroupLink
from kraken.models.base import utcnow

log = logging.getLogger(__name__)

ALL_GROUP = "all"


async def ensure_groups(session: AsyncSession, names: list[str]) -> list[AgentGroup]:
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = await session.execute(select(AgentGroup).where(col(AgentGroup.name).in_(wanted)))
    have = {g.name: g for g in rows.scalars()}
    for name in wanted:
        if name not in have:
            group = AgentGroup(name=name)
            session.add(group)
            have[name] = group
    await session.flush()
    return [have[n] for n in wanted]


async def set_agent_groups(session: AsyncSession, agent: Agent, names: list[str], *, replace: bool) -> None:
    groups = await ensure_groups(session, [ALL_GROUP, *names])
    current = set(
        (await session.execute(select(AgentGroupLink.group_id).where(AgentGroupLink.agent_id == agent.id))).scalars()
    )
    wanted = {g.id for g in groups}
    for gid in wanted - current:
        session.add(AgentGroupLink(agent_id=agent.id, group_id=gid))  # type: ignore[arg-type]
    if replace and current - wanted:
        await session.execute(
            sa.delete(AgentGroupLink).where(
                col(AgentGroupLink.agent_id) == agent.id, col(AgentGroupLink.group_id).in_(current - wanted)
            )
        )


async def agent_groups(session: AsyncSession, agent_ids: list[int]) -> dict[int, list[str]]:
    rows = await session.execute(
        select(AgentGroupLink.agent_id, AgentGroup.name)
        .join(AgentGroup, col(AgentGroup.id) == AgentGroupLink.group_id)
        .where(col(AgentGroupLink.agent_id).in_(agent_ids))
        .order_by(col(AgentGroup.name))
    )
    out: dict[int, list[str]] = {a: [] for a in agent_ids}
    for agent_id, name in rows:
        out[agent_id].append(name)
    return out


async def register_agent(
    db: Database,
    *,
    name: str,
    groups: list[str],
    capabilities: dict[str, Any],
    conn_id: str,
    address: str | None,
) -> Agent:
    async with db.transaction(quick=True) as session:
        agent = (await session.execute(select(Agent).where(Agent.name == name))).scalar_one_or_none()
        if agent is None:
            agent = Agent(name=name)
            session.add(agent)
            await session.flush()
        agent.connected_to = conn_id
        agent.last_seen = utcnow()
        agent.capabilities = capabilities
        agent.address = address
        await set_agent_groups(session, agent, groups, replace=False)
    return agent


async def touch_agent(db: Database, agent_id: int, conn_id: str) -> None:
    async with db.transaction(quick=True) as session:
        await session.execute(
            sa.update(Agent)
            .where(col(Agent.id) == agent_id, col(Agent.connected_to) == conn_id)
            .values(last_seen=utcnow())
        )


async def agent_disconnected(db: Database, agent_id: int, conn_id: str) -> None:
    async with db.transaction(quick=True) as session:
        await session.execute(
            sa.update(Agent)
            .where(col(Agent.id) == agent_id, col(Agent.connected_to) == conn_id)
            .values(connected_to=None)
        )


def online_clause(timeout_seconds: float) -> Any:
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    return sa.and_(col(Agent.connected_to).is_not(None), col(Agent.last_seen) >= cutoff)
