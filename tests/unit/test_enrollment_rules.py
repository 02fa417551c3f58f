"""Enrollment rules on the real databases: no takeover (not even by two racing connections),
credentials that name one agent, revoke frees the name, the server's own agent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kraken.control import agents as ctl
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.models import Agent


def enroll(db: Database, name: str, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "requested_groups": ["gpu"],
        "capabilities": {},
        "conn_id": "c",
        "address": "a",
        "approve": False,
    }
    return ctl.enroll_agent(db, name=name, **{**args, **kw})


def authenticate(db: Database, credential: str, name: str) -> Any:
    return ctl.authenticate_agent(db, credential=credential, name=name, capabilities={}, conn_id="d", address=None)


async def test_enrollment_rules(db: Database) -> None:
    agent, credential = await enroll(db, "a1")
    assert agent.approved is False and agent.credential_hash == ctl.credential_hash(credential) != credential
    with pytest.raises(ctl.AgentRefused, match="enrolled already"):
        await enroll(db, "a1", approve=True)
    same = await authenticate(db, credential, "a1")
    assert same.id == agent.id
    with pytest.raises(ctl.AgentRefused, match="belongs to agent 'a1'"):
        await authenticate(db, credential, "b1")
    async with db.session() as session:
        assert (await ctl.agent_groups(session, [agent.id]))[agent.id] == ["all"]  # type: ignore[index,list-item]

    async with db.transaction() as session:
        await ctl.revoke_agent(session, agent.id, Effects())  # type: ignore[arg-type]
    assert not await ctl.credential_known(db, credential)
    with pytest.raises(ctl.AgentRefused, match="unknown or revoked"):
        await authenticate(db, credential, "a1")
    async with db.transaction() as session:
        row = await session.get(Agent, agent.id)
        assert row is not None
        with pytest.raises(ctl.AgentRefused, match="must enroll again"):
            await ctl.approve_agent(session, row)
    again, new_credential = await enroll(db, "a1")  # the revoke freed the name: pending again
    assert again.id == agent.id and again.approved is False and new_credential != credential

    own, _ = await enroll(db, "a1", server_own=True, requested_groups=["lab"])  # the server vouches
    assert own.id == agent.id and own.approved is True
    async with db.session() as session:
        assert (await ctl.agent_groups(session, [agent.id]))[agent.id] == ["all", "lab"]  # type: ignore[index,list-item]
    with pytest.raises(ctl.AgentRefused, match="at most 200"):
        await enroll(db, "x" * 201)


async def test_racing_enrollments_of_one_name_make_one_agent(db: Database) -> None:
    results = await asyncio.gather(*(enroll(db, "racer") for _ in range(4)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1, results
    assert all(isinstance(r, ctl.AgentRefused) for r in results if isinstance(r, BaseException)), results


async def test_agents_of_different_names_enrolling_at_once_are_all_enrolled(db: Database) -> None:
    """They all create the 'all' group the first time: none may be refused for it (PostgreSQL
    raised a unique violation, reported as 'enrolled already')."""
    results = await asyncio.gather(*(enroll(db, f"racer{i}") for i in range(6)), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(agent.name for agent, _ in results) == [f"racer{i}" for i in range(6)]
