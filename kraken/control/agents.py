"""Agents as the server sees them: enrollment and approval, presence (their job messages: ``job_message_dispatch``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.core.security import new_secret
from kraken.core.sql import insert_ignore
from kraken.models import Agent, AgentGroup, AgentGroupLink, Job
from kraken.models.base import utcnow
from kraken.models.enums import Result, State
from kraken.protocol import agent_channel

log = logging.getLogger(__name__)

ALL_GROUP = "all"
# to the hub holding a revoked agent's websocket (bus channel ``agent:<id>``): close it
REVOKED = "_revoked"
NAME_MAX = 200  # Agent.name


async def ensure_groups(session: AsyncSession, names: list[str]) -> list[AgentGroup]:
    """The groups of these names, created where missing (two agents enrolling at once may both
    create 'all': the second insert does nothing, never a unique violation)."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    for name in wanted:
        await insert_ignore(session, AgentGroup, {"name": name})
    rows = await session.execute(select(AgentGroup).where(col(AgentGroup.name).in_(wanted)))
    have = {g.name: g for g in rows.scalars()}
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


async def agent_groups(
    session: AsyncSession, agent_ids: list[int], among: Sequence[Any] | None = None
) -> dict[int, list[str]]:
    """Each agent's groups. ``among``: conditions on ``Agent`` that select exactly ``agent_ids``,
    used instead of listing the ids (for every schedulable agent: a thousand ids in the query)."""
    query = (
        select(AgentGroupLink.agent_id, AgentGroup.name)
        .join(AgentGroup, col(AgentGroup.id) == AgentGroupLink.group_id)
        .order_by(col(AgentGroup.name))
    )
    if among is None:
        query = query.where(col(AgentGroupLink.agent_id).in_(agent_ids))
    else:
        query = query.join(Agent, col(Agent.id) == AgentGroupLink.agent_id).where(*among)
    rows = await session.execute(query)
    out: dict[int, list[str]] = {a: [] for a in agent_ids}
    for agent_id, name in rows:
        out.setdefault(agent_id, []).append(name)  # (an agent approved since agent_ids were read)
    return out


class AgentRefused(Exception):
    """A connection (or approval) the server does not accept; the message says why."""


def credential_hash(credential: str) -> str:
    """What the server keeps of an agent's credential (a random 256-bit secret: SHA-256 suffices)."""
    return hashlib.sha256(credential.encode()).hexdigest()


async def credential_known(db: Database, credential: str) -> bool:
    async with db.session(quick=True) as session:
        found = await session.execute(select(Agent.id).where(Agent.credential_hash == credential_hash(credential)))
        return found.first() is not None


def _seen(agent: Agent, *, capabilities: dict[str, Any], conn_id: str, address: str | None) -> None:
    agent.connected_to = conn_id
    agent.last_seen = utcnow()
    agent.capabilities = capabilities
    agent.address = address


async def enroll_agent(
    db: Database,
    *,
    name: str,
    requested_groups: list[str],
    capabilities: dict[str, Any],
    conn_id: str,
    address: str | None,
    approve: bool,
    server_own: bool = False,
) -> tuple[Agent, str]:
    """An agent that came with the shared enrollment token: returns it and its new credential.

    A new name makes a new agent, pending unless ``approve``.  A name that holds a credential
    (pending or approved) is refused: enrolling never takes an agent over.  A revoked agent
    (no credential) enrolls again, pending.  ``server_own``: the server's own local agent, which
    the server vouches for: approved, in the groups it asks for (``kraken serve``'s
    ``KRAKEN_GROUPS``), and it may replace the credential of its name."""
    if len(name) > NAME_MAX:
        raise AgentRefused(f"an agent name has at most {NAME_MAX} characters")
    credential = new_secret()
    try:
        async with db.transaction(quick=True) as session:
            agent = (await session.execute(select(Agent).where(Agent.name == name))).scalar_one_or_none()
            if agent is None:
                agent = Agent(name=name)
                session.add(agent)
            elif agent.credential_hash is not None and not server_own:
                # (the agent of that name connects with its own credential; an administrator may
                # revoke it to free the name)
                raise AgentRefused(f"agent name '{name}' is enrolled already")
            agent.credential_hash = credential_hash(credential)
            agent.approved = approve or server_own
            agent.requested_groups = sorted(set(requested_groups))
            _seen(agent, capabilities=capabilities, conn_id=conn_id, address=address)
            await session.flush()
            # every agent is in 'all'; the server's own agent also in the groups its operator configured
            await set_agent_groups(session, agent, requested_groups if server_own else [], replace=False)
    except sa.exc.IntegrityError as exc:  # another connection enrolled the same new name just now
        raise AgentRefused(f"agent name '{name}' is enrolled already") from exc
    return agent, credential


async def authenticate_agent(
    db: Database, *, credential: str, name: str, capabilities: dict[str, Any], conn_id: str, address: str | None
) -> Agent:
    """An agent that came with its own credential (approved or still pending)."""
    async with db.transaction(quick=True) as session:
        agent = (
            await session.execute(select(Agent).where(Agent.credential_hash == credential_hash(credential)))
        ).scalar_one_or_none()
        if agent is None:
            raise AgentRefused("unknown or revoked agent credential")
        if agent.name != name:
            raise AgentRefused(f"this credential belongs to agent '{agent.name}'")
        _seen(agent, capabilities=capabilities, conn_id=conn_id, address=address)
    return agent


async def approve_agent(session: AsyncSession, agent: Agent) -> None:
    if agent.credential_hash is None:
        raise AgentRefused(
            f"agent '{agent.name}' was revoked: it must enroll again (restart it without its credential file) "
            "before it can be approved"
        )
    agent.approved = True


async def revoke_agent(session: AsyncSession, agent_id: int, effects: Effects) -> None:
    """Unapprove the agent and forget its credential; its running job ends with ``error``.

    The hub holding its websocket closes it (``agent:<id>`` message ``REVOKED``)."""
    running = (
        (await session.execute(select(Job.id).where(Job.agent_id == agent_id, col(Job.state) == State.RUNNING)))
        .scalars()
        .all()
    )
    for job_id in running:  # jobs first: orchestration's lock order ends with the agent
        await orchestration.complete_job(session, job_id, Result.ERROR, effects, "agent revoked by an administrator")
    await session.execute(
        sa.update(Agent).where(col(Agent.id) == agent_id).values(approved=False, credential_hash=None)
    )
    effects.publish.append((agent_channel(agent_id), {"type": REVOKED}))  # for the hub, not the agent


async def touch_agents(db: Database, seen: dict[int, str]) -> set[int]:
    """Heartbeats: ``last_seen`` of each agent (id -> the connection it pinged on) is now, in one
    statement for all (an agent that has connected elsewhere since is left alone; one marked
    offline while it was still on that connection is online again).

    An agent row locked at that moment (a transaction of its job in progress: an assignment, a
    ``job_done``) is skipped, not waited for (PostgreSQL's ``SKIP LOCKED``): one statement over a
    thousand rows that waited for each busy agent's transaction, and made every later one that
    touches an agent it had updated wait for it, queued the whole fleet's job messages behind it.
    Returns the ids stored; the caller stores the others at its next flush."""
    if not seen:
        return set()
    pairs = list(seen.items())
    async with db.transaction(quick=True) as session:
        on_it = sa.tuple_(col(Agent.id), col(Agent.connected_to)).in_(pairs)
        stored = await _touch(session, on_it, utcnow())
        # marked offline meanwhile (by the watchdog, when a flush came later than ``agent_timeout``:
        # a busy replica) while still on that connection: a heartbeat brings it back online (it
        # stayed offline, connected, until it reconnected)
        rest = [(agent_id, conn_id) for agent_id, conn_id in pairs if agent_id not in stored]
        if rest:
            offline = sa.and_(col(Agent.id).in_([a for a, _ in rest]), col(Agent.connected_to).is_(None))
            back = sa.case(*((col(Agent.id) == a, c) for a, c in rest), else_=col(Agent.connected_to))
            stored |= await _touch(session, offline, utcnow(), connected_to=back)
        return stored


async def _touch(session: AsyncSession, which: Any, now: datetime, **values: Any) -> set[int]:
    """``last_seen`` (and ``values``) of the agents ``which`` selects that no transaction holds."""
    free = sa.select(col(Agent.id)).where(which).with_for_update(skip_locked=True)
    stored = await session.execute(
        sa.update(Agent)
        .where(col(Agent.id).in_(free.scalar_subquery()))
        .values(last_seen=now, **values)
        .returning(col(Agent.id))
        .execution_options(synchronize_session=False)
    )
    return {int(agent_id or 0) for agent_id in stored.scalars()}


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
