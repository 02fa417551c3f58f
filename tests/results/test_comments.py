"""Comments on tests: the API, bad input, and the relevancy point of a root cause (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlmodel import SQLModel

from kraken.api.deps import SCOPES, Principal, current_principal
from kraken.api.routes.comments import router
from kraken.api.state import ServerState
from kraken.core.db import Database
from kraken.models import Branch, Project, User
from kraken.results import comments
from kraken.results.locks import lock_branch
from tests.conftest import create_pg_database, drop_pg_database
from tests.results.conftest import World


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router, prefix="/api")
    runtime = SimpleNamespace(db=world.db, bus=None, queue=None)  # no effects to apply here
    app.state.kraken = ServerState(runtime=runtime)  # type: ignore[arg-type]
    alice = User(id=1, username="alice", password_hash="", is_admin=True)
    app.dependency_overrides[current_principal] = lambda: Principal(alice, frozenset(SCOPES))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def res(n: int, failing: set[int]) -> list[list[Any]]:
    return [
        [f"suite::test_{i}", "failed" if i in failing else "passed", 0.001, "boom" if i in failing else None, None]
        for i in range(n)
    ]


async def case_ids(world: World) -> dict[str, int]:
    async with world.db.session() as s:
        rows = await s.execute(sa.text("SELECT name, id FROM test_case"))
        return {name: tc for name, tc in rows}


async def test_root_cause_comment_takes_one_relevancy_point(world: World, client: httpx.AsyncClient) -> None:
    await world.ci_flow(res(20, set()))
    _, job2 = await world.ci_flow(res(20, {5, 10}))
    ids = await case_ids(world)
    before = await world.results(job2)
    assert before["suite::test_5"]["relevancy"] == before["suite::test_10"]["relevancy"] > 0

    url = f"/api/test-cases/{ids['suite::test_5']}/comments"
    r = await client.get(url, params={"branch_id": world.branch_id})
    assert r.status_code == 200 and r.json()["state"] is None and r.json()["entries"] == []
    r = await client.post(url, json={"branch_id": world.branch_id, "text": "looking", "state": "investigating"})
    assert r.status_code == 201, r.text
    assert (await world.results(job2))["suite::test_5"]["relevancy"] == before["suite::test_5"]["relevancy"]

    root_cause = {"branch_id": world.branch_id, "text": "`parse()` breaks", "state": "bug-in-product"}
    r = await client.post(url, json=root_cause)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "bug-in-product"
    assert [(e["author"], e["text"], e["state"]) for e in body["entries"]] == [
        ("alice", "looking", "investigating"),
        ("alice", "`parse()` breaks", "bug-in-product"),
    ]
    after = await world.results(job2)
    assert after["suite::test_5"]["relevancy"] == before["suite::test_5"]["relevancy"] - 1
    assert after["suite::test_10"]["relevancy"] == before["suite::test_10"]["relevancy"]  # other tests keep theirs

    # sticky: the next flow's analysis counts the comment too
    _, job3 = await world.ci_flow(res(20, {5, 10}))
    third = await world.results(job3)
    assert third["suite::test_5"]["relevancy"] == third["suite::test_10"]["relevancy"] - 1

    # a comment without a root cause any more gives the point back, a text alone keeps the state
    r = await client.post(url, json={"branch_id": world.branch_id, "text": "not that after all"})
    assert r.status_code == 201 and r.json()["state"] == "bug-in-product"
    r = await client.post(url, json={"branch_id": world.branch_id, "state": "investigating"})
    assert r.status_code == 201 and len(r.json()["entries"]) == 4
    third = await world.results(job3)
    assert third["suite::test_5"]["relevancy"] == third["suite::test_10"]["relevancy"]


async def test_bad_comments_are_refused_and_store_nothing(world: World, client: httpx.AsyncClient) -> None:
    await world.ci_flow(res(3, {1}))
    ids = await case_ids(world)
    url = f"/api/test-cases/{ids['suite::test_1']}/comments"
    ok = await client.post(url, json={"branch_id": world.branch_id, "text": "first"})
    assert ok.status_code == 201

    async with world.db.transaction() as s:  # a branch of another project
        p = Project(name="other")
        s.add(p)
        await s.flush()
        other = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
        s.add(other)
    r = await client.post(url, json={"branch_id": other.id, "text": "x"})
    assert r.status_code == 422 and "branch_id" in r.json()["detail"]
    r = await client.post(url, json={"branch_id": world.branch_id, "text": "x", "state": "fixed-itself"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "state"
    r = await client.post(url, json={"branch_id": world.branch_id, "text": "   "})
    assert r.status_code == 422 and "text" in r.json()["detail"]
    r = await client.post(url, json={"branch_id": world.branch_id, "text": "x" * 70_000})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "text"
    r = await client.post("/api/test-cases/999999/comments", json={"branch_id": world.branch_id, "text": "x"})
    assert r.status_code == 404 and "999999" in r.json()["detail"]
    r = await client.get(url, params={"branch_id": world.branch_id})
    assert [e["text"] for e in r.json()["entries"]] == ["first"]
    assert r.json()["state"] == "new"


@pytest.fixture
async def pg_world() -> AsyncIterator[World]:
    """PostgreSQL only: SQLite's write transactions are serialized by one lock anyway."""
    url = await create_pg_database()
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    yield await World(db).setup()
    await db.dispose()
    await drop_pg_database(url)


async def test_comment_waits_for_an_analysis_in_flight(pg_world: World) -> None:
    """A root cause set while an analysis of the branch is writing results reaches those results too."""
    world = pg_world
    await world.ci_flow(res(5, set()))
    _, job2 = await world.ci_flow(res(5, {3}))
    failing = (await world.results(job2))["suite::test_3"]
    tc = (await case_ids(world))["suite::test_3"]

    async with world.db.transaction() as analysis:  # stands in for an analysis that holds the branch
        await lock_branch(analysis, world.branch_id)
        copied = (
            await analysis.execute(
                sa.text(
                    "INSERT INTO test_result (job_id, run_id, flow_id, branch_id, test_case_id, env_id, flow_kind, "
                    "flow_seq, ord, status, change, age, flips, instability, flaky, flaky_rule, relevancy) "
                    "SELECT job_id, run_id, flow_id, branch_id, test_case_id, env_id, flow_kind, flow_seq + 1, ord, "
                    "status, change, age, flips, instability, flaky, flaky_rule, relevancy FROM test_result "
                    "WHERE id = :id RETURNING id"
                ),
                {"id": failing["id"]},
            )
        ).scalar_one()

        async def comment() -> None:
            async with world.db.transaction() as s:
                await comments.add_entry(s, tc, world.branch_id, "alice", "found it", "bug-in-test")

        task = asyncio.create_task(comment())
        async with world.db.session() as watch:  # until the comment waits for the lock (or, wrongly, is done)
            for _ in range(500):
                waiting = (
                    await watch.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                        )
                    )
                ).scalar_one()
                if waiting or task.done():
                    break
                await asyncio.sleep(0.01)  # polling the database for an event it cannot push
        assert not task.done()
    await task
    async with world.db.session() as s:
        relevancy = (
            await s.execute(sa.text("SELECT relevancy FROM test_result WHERE id = :id"), {"id": copied})
        ).scalar_one()
    assert relevancy == failing["relevancy"] - 1
