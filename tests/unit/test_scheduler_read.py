"""What a scheduler pass reads of the agents (``schedulable_agents``, ``agent_groups(among=...)``):
plain columns instead of ORM objects, the same facts."""

from __future__ import annotations

from kraken.control.agents import agent_groups, set_agent_groups
from kraken.control.scheduler import SCHEDULABLE, schedulable_agents
from kraken.core.db import Database
from kraken.models import Agent

CAPS = {"executors": {"direct": {}}, "systems": ["debian-12"]}


async def test_schedulable_agents_are_read_as_plain_rows_with_their_groups(db: Database) -> None:
    async with db.transaction() as s:
        agents = [
            Agent(name="sr-a", approved=True, connected_to="c1", capabilities=CAPS, current_job_id=None),
            Agent(name="sr-pending", approved=False, capabilities=CAPS),
            Agent(name="sr-off", approved=True, enabled=False, capabilities=CAPS),
            Agent(name="sr-b", approved=True, capabilities={"executors": {"docker": {}}}),
            Agent(name="sr-c", approved=True, capabilities=CAPS),
        ]
        s.add_all(agents)
        await s.flush()
        await set_agent_groups(s, agents[0], ["gpu"], replace=False)
        await set_agent_groups(s, agents[3], [], replace=False)
    a, _, _, b, c = agents
    async with db.session() as s:
        read = await schedulable_agents(s)
        by_ids = await agent_groups(s, [x.id for x in read])
        among = await agent_groups(s, [x.id for x in read], among=SCHEDULABLE)
    assert [x.id for x in read] == [a.id, b.id, c.id]  # approved and enabled, in id order
    assert read[0].capabilities == CAPS and read[1].capabilities == {"executors": {"docker": {}}}
    assert read[0].connected_to == "c1" and read[0].current_job_id is None
    assert read[2].capabilities is read[0].capabilities  # the same capabilities decoded once
    assert among == by_ids and "gpu" in among[a.id or 0] and among[c.id or 0] == []
