"""Comments on tests: the API, bad input, and the relevancy point of a root cause (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kraken.api.deps import current_user
from kraken.api.routes.comments import router
from kraken.api.state import ServerState
from kraken.models import Branch, Project, User
from tests.results.conftest import World


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router, prefix="/api")
    runtime = SimpleNamespace(db=world.db, bus=None, queue=None)  # no effects to apply here
    app.state.kraken = ServerState(runtime=runtime)  # type: ignore[arg-type]
    app.dependency_overrides[current_user] = lambda: User(id=1, username="alice", password_hash="", is_admin=True)
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
