"""Failures grouped by cause, end to end: a real git repository, real pytest runs through the agent's
tools and the direct executor, results ingested, analysed and read through the API, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kraken.api.routes.failure_groups import router
from tests.results.conftest import World, admin_client
from tests.results.test_pytest_flows import flow as run_flow
from tests.support.gitrepo import commit, make_repo

LIB = """\
import tempfile


class Conn:
    pass


def connect(port):
    conn = Conn()
    raise ConnectionError(f"cannot reach 127.0.0.1:{port} with {conn!r} in {tempfile.mkdtemp()}")


def lookup(key):
    return {}[key]


def ratio(a, b):
    return a / b
"""

TESTS_1 = """\
from lib import connect, lookup


def test_connect_a():
    connect(8001)


def test_connect_b():
    connect(9002)


def test_connect_c():
    connect(31337)


def test_lookup_x():
    lookup("user-17")


def test_lookup_y():
    lookup("user-4242")


def test_fine():
    assert True
"""

# flow 2: the connection failures go on, the lookups are fixed, a new cause appears
TESTS_2 = (
    (
        TESTS_1.replace("import connect, lookup", "import connect, lookup, ratio")
        .replace('lookup("user-17")', "assert True")
        .replace('lookup("user-4242")', "assert True")
    )
    + """

def test_ratio_1():
    ratio(1, 0)


def test_ratio_2():
    ratio(7, 0)
"""
)


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(world.db, router) as c:
        yield c


async def groups_of(world: World, client: httpx.AsyncClient, results: dict[str, Any], **params: Any) -> dict[str, Any]:
    run = await world.run_of(await job_of(world, results))
    r = await client.get(f"/api/runs/{run}/failure-groups", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def job_of(world: World, results: dict[str, Any]) -> int:
    import sqlalchemy as sa

    rid = next(iter(results.values()))["id"]
    async with world.db.session() as s:
        return int((await s.execute(sa.text("SELECT job_id FROM test_result WHERE id = :i"), {"i": rid})).scalar_one())


def by_test(body: dict[str, Any]) -> dict[frozenset[str], dict[str, Any]]:
    return {frozenset(t["test"].rsplit("::", 1)[1] for t in g["tests"]): g for g in body["groups"]}


async def test_failures_grouped_by_cause_known_and_new(world: World, client: httpx.AsyncClient, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, {"lib.py": LIB, "tests/test_app.py": TESTS_1})
    second = commit(repo, {"tests/test_app.py": TESTS_2}, "fix lookups, add ratio")
    work = tmp_path / "agent"

    r1 = await run_flow(world, work, repo, first, flip=False)
    assert sum(1 for r in r1.values() if r["status"] == "failed") == 5
    body1 = await groups_of(world, client, r1)
    assert (body1["failures"], body1["causes"], body1["unkeyed"]) == (5, 2, 0), body1
    groups1 = by_test(body1)
    conn = groups1[frozenset({"test_connect_a", "test_connect_b", "test_connect_c"})]
    look = groups1[frozenset({"test_lookup_x", "test_lookup_y"})]
    assert [g["count"] for g in body1["groups"]] == [3, 2]  # largest first
    assert conn["signature"].startswith("ConnectionError | lib.py < test_app.py | ConnectionError: cannot reach")
    assert "8001" in conn["message"] or "9002" in conn["message"] or "31337" in conn["message"]
    assert look["signature"].startswith("KeyError | lib.py < test_app.py | KeyError: '")
    for g in (conn, look):
        assert (g["known"], g["earlier_flows"], g["first_seen"], g["recent"]) == (False, 0, None, [])
        assert not g["more_tests"]

    r2 = await run_flow(world, work, repo, second, flip=False)
    body2 = await groups_of(world, client, r2)
    assert (body2["failures"], body2["causes"]) == (5, 2)
    groups2 = by_test(body2)
    conn2 = groups2[frozenset({"test_connect_a", "test_connect_b", "test_connect_c"})]
    ratio = groups2[frozenset({"test_ratio_1", "test_ratio_2"})]
    assert conn2["key"] == conn["key"]
    assert conn2["known"] and conn2["earlier_flows"] == 1
    run1 = await world.run_of(await job_of(world, r1))
    assert conn2["first_seen"]["run_id"] == run1 and conn2["first_seen"]["count"] == 3
    assert conn2["recent"] == [conn2["first_seen"]]
    assert ratio["signature"].startswith("ZeroDivisionError | lib.py < test_app.py | ZeroDivisionError")
    assert not ratio["known"] and ratio["first_seen"] is None
    assert look["key"] not in {g["key"] for g in body2["groups"]}

    # a dev flow on the first commit: its causes are known from the CI flows before it
    rd = await run_flow(world, work, repo, first, flip=False, kind="dev")
    bodyd = await groups_of(world, client, rd)
    lookd = by_test(bodyd)[frozenset({"test_lookup_x", "test_lookup_y"})]
    assert lookd["known"] and lookd["first_seen"]["run_id"] == run1

    # first N tests, then the rest page by page
    few = await groups_of(world, client, r2, tests=1, limit=1)
    assert len(few["groups"]) == 1 and few["causes"] == 2
    top = few["groups"][0]
    assert top["key"] == conn2["key"] and len(top["tests"]) == 1 and top["more_tests"]
    run2 = await world.run_of(await job_of(world, r2))
    seen: list[int] = []
    after = 0
    while True:
        r = await client.get(f"/api/runs/{run2}/failure-groups/{top['key']}/tests", params={"after": after, "limit": 2})
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [t["result_id"] for t in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == sorted(t["result_id"] for t in conn2["tests"])


async def test_bad_requests(world: World, client: httpx.AsyncClient) -> None:
    r = await client.get("/api/runs/999999/failure-groups")
    assert r.status_code == 404 and "run 999999" in r.text
    run = await world.run_of(await world.job(await world.flow("ci")))  # a run the caller may see
    r = await client.get(f"/api/runs/{run}/failure-groups/NOT-A-KEY/tests")
    assert r.status_code == 422 and "key" in r.text
    r = await client.get(f"/api/runs/{run}/failure-groups", params={"tests": 5000})
    assert r.status_code == 422 and "tests" in r.text
