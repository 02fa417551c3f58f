"""Agents' heartbeats are stored together (``touch_agents``, flushed by the agent hub): each agent's
``last_seen`` moves only while it is on the connection that pinged."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from kraken.control.agents import touch_agents
from kraken.core.clock import utcnow
from kraken.core.db import Database
from kraken.models import Agent


def _aware(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


async def test_touch_agents_updates_every_agent_on_the_connection_that_pinged(db: Database) -> None:
    long_ago = utcnow() - timedelta(minutes=10)
    async with db.transaction() as s:
        agents = [Agent(name=f"hb-{n}", approved=True, connected_to=f"c{n}", last_seen=long_ago) for n in range(3)]
        s.add_all(agents)
    a, b, c = (agent.id for agent in agents)
    assert a is not None and b is not None and c is not None
    before = utcnow()
    # b pinged on a connection it has since left (it connected elsewhere as c9); c did not ping
    assert await touch_agents(db, {a: "c0", b: "old"}) == {a}
    assert await touch_agents(db, {}) == set()  # nothing to store: no statement
    async with db.session() as s:
        seen = {x.name: _aware(x.last_seen) for x in (await s.execute(select(Agent))).scalars()}
    assert seen["hb-0"] >= before
    assert seen["hb-1"] == _aware(long_ago) and seen["hb-2"] == _aware(long_ago)


async def test_an_agent_busy_in_a_transaction_is_skipped_not_waited_for(db: Database) -> None:
    """PostgreSQL: the flush does not wait for an agent row that a job's transaction holds (nor
    make that transaction's next statements wait for it); the agent is stored at the next flush."""
    import asyncio

    import sqlalchemy as sa

    long_ago = utcnow() - timedelta(minutes=10)
    async with db.transaction() as s:
        agents = [Agent(name=f"hb-{n}", approved=True, connected_to=f"c{n}", last_seen=long_ago) for n in range(2)]
        s.add_all(agents)
    a, b = (agent.id for agent in agents)
    assert a is not None and b is not None
    if db.is_sqlite:  # one writer at a time: nothing is held by another transaction meanwhile
        assert await touch_agents(db, {a: "c0", b: "c1"}) == {a, b}
        return
    async with db.transaction() as busy:  # as an assignment does: the agent's row locked
        await busy.execute(sa.update(Agent).where(Agent.id == b).values(current_job_id=None))  # type: ignore[arg-type]
        stored = await asyncio.wait_for(touch_agents(db, {a: "c0", b: "c1"}), 10)
    assert stored == {a}
    assert await touch_agents(db, {b: "c1"}) == {b}  # the next flush
    async with db.session() as s:
        seen = {x.name: _aware(x.last_seen) for x in (await s.execute(select(Agent))).scalars()}
    assert seen["hb-0"] > _aware(long_ago) and seen["hb-1"] > _aware(long_ago)


async def test_a_heartbeat_brings_back_online_an_agent_marked_offline_on_that_connection(db: Database) -> None:
    """The watchdog marked the agent offline (its heartbeats were stored too late: a busy replica)
    while it stayed on its connection: its next heartbeat makes it online again on that connection;
    one that connected elsewhere meanwhile is left alone."""
    long_ago = utcnow() - timedelta(minutes=10)
    async with db.transaction() as s:
        agents = [
            Agent(name="hb-off", approved=True, connected_to=None, last_seen=long_ago),
            Agent(name="hb-moved", approved=True, connected_to="elsewhere", last_seen=long_ago),
        ]
        s.add_all(agents)
    off, moved = (agent.id for agent in agents)
    assert off is not None and moved is not None
    assert await touch_agents(db, {off: "c0", moved: "c1"}) == {off}
    async with db.session() as s:
        rows = {x.name: x for x in (await s.execute(select(Agent))).scalars()}
    assert rows["hb-off"].connected_to == "c0" and _aware(rows["hb-off"].last_seen) > _aware(long_ago)
    assert rows["hb-moved"].connected_to == "elsewhere" and _aware(rows["hb-moved"].last_seen) == _aware(long_ago)
