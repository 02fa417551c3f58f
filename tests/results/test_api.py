"""The results API over a bare FastAPI app (the router + app.state.db), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kraken.api.routes.results import router
from tests.results.conftest import World, admin_client


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(world.db, router) as c:
        yield c


def res(n: int, failing: set[int] = frozenset(), error: set[int] = frozenset()) -> list[list[Any]]:  # type: ignore[assignment]
    out: list[list[Any]] = []
    for i in range(n):
        status = "failed" if i in failing else "error" if i in error else "passed"
        out.append([f"suite::test_{i:04d}", status, i / 1000, "boom" if status != "passed" else None, None])
    return out


async def all_pages(client: httpx.AsyncClient, url: str) -> tuple[int, list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    total = -1
    cursor = None
    while True:
        r = await client.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        total = body["total"]
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return total, items


async def test_results_filters_sorting_and_keyset_pages(world: World, client: httpx.AsyncClient) -> None:
    await world.ci_flow(res(300, failing={5}))
    _, job = await world.ci_flow(res(300, failing={5, 10, 11, 12}, error={20}))
    run = await world.run_of(job)

    total, items = await all_pages(client, f"/api/runs/{run}/results?limit=7")
    assert total == 300 == len(items)
    assert len({i["id"] for i in items}) == 300  # no row twice across pages
    rel = [i["relevancy"] for i in items]
    assert rel == sorted(rel, reverse=True)
    top = items[:5]
    assert {i["test"] for i in top} == {f"suite::test_{k:04d}" for k in (5, 10, 11, 12, 20)}
    assert items[0]["change"] == "regression" and items[0]["status"] == "failed"
    assert set(items[0]) >= {
        "id",
        "test",
        "status",
        "change",
        "age",
        "instability",
        "flaky",
        "duration",
        "job_id",
        "system",
        "config",
    }
    assert items[0]["system"] == "linux" and items[0]["job_id"] == job

    total, regs = await all_pages(client, f"/api/runs/{run}/results?change=regression&limit=2")
    assert total == 4 and {i["test"] for i in regs} == {f"suite::test_{k:04d}" for k in (10, 11, 12, 20)}
    total, failed = await all_pages(client, f"/api/runs/{run}/results?status=failed&change=regression&limit=2")
    assert total == 3 and len(failed) == 3
    total, passed = await all_pages(client, f"/api/runs/{run}/results?status=passed&limit=100")
    assert total == 295 == len(passed)
    total, found = await all_pages(client, f"/api/runs/{run}/results?q=test_001&limit=4")
    assert total == 10 and all("test_001" in i["test"] for i in found)
    total, found = await all_pages(client, f"/api/runs/{run}/results?q=%25&limit=4")
    assert total == 0 and found == []  # % is a literal character, not a wildcard
    total, by_id = await all_pages(client, f"/api/runs/{run}/results?sort=id&limit=50&job_id={job}")
    assert [i["id"] for i in by_id] == sorted(i["id"] for i in by_id) and total == 300
    total, by_dur = await all_pages(client, f"/api/runs/{run}/results?sort=-duration&limit=33")
    durations = [i["duration"] for i in by_dur]
    assert durations == sorted(durations, reverse=True) and len(by_dur) == 300
    total, flaky = await all_pages(client, f"/api/runs/{run}/results?flaky=true&limit=5")
    assert total == 0 and flaky == []

    assert (await client.get(f"/api/runs/{run}/results?status=bogus")).status_code == 422
    assert (await client.get(f"/api/runs/{run}/results?cursor=%%%")).status_code == 400
    assert (await client.get(f"/api/runs/{run}/results?sort=name")).status_code == 422
    assert (await client.get("/api/runs/999999/results")).status_code == 404


async def test_summary_issues_and_history(world: World, client: httpx.AsyncClient) -> None:
    flow1, _ = await world.ci_flow(res(10))
    flow = await world.flow()
    job = await world.job(flow)
    await world.send(job, res(10, failing={3}))
    await world.send_issues(job, [["a.py", 1, 1, "F401", "unused", "error"]])
    await world.complete_job(job)
    run = await world.run_of(job)

    pending = (await client.get(f"/api/runs/{run}/summary")).json()
    assert pending["analysis"] == "pending" and pending["pending_results"] == 10
    assert (await client.get(f"/api/runs/{run}/results")).json()["total"] == 0

    await world.finish_job(job)
    await world.finish_flow(flow)
    summary = (await client.get(f"/api/runs/{run}/summary")).json()
    assert summary["analysis"] == "done"
    assert (summary["total"], summary["passed"], summary["failed"], summary["regressions"]) == (10, 9, 1, 1)
    assert (summary["issues"], summary["new_issues"]) == (1, 1)
    flow_summary = (await client.get(f"/api/flows/{flow}/summary")).json()
    assert flow_summary["regressions"] == 1

    issues = (await client.get(f"/api/runs/{run}/issues")).json()
    assert issues["total"] == 1
    assert issues["items"][0] | {"id": 0} == {
        "id": 0,
        "job_id": job,
        "tool": "ruff",
        "path": "a.py",
        "line": 1,
        "column": 1,
        "symbol": "F401",
        "message": "unused",
        "type": "error",
        "new": True,
        "age": 0,
    }

    page = (await client.get(f"/api/runs/{run}/results?status=failed")).json()
    tc = page["items"][0]["test_case_id"]
    hist = (await client.get(f"/api/test-cases/{tc}/history?branch_id={world.branch_id}")).json()
    assert hist["test_case"]["name"] == "suite::test_0003"
    assert [(h["flow_id"], h["status"], h["change"]) for h in hist["items"]] == [
        (flow, "failed", "regression"),
        (flow1, "passed", "new"),
    ]
    assert (await client.get("/api/test-cases/999999/history")).status_code == 404


async def test_results_age_instability_and_agents_group_filters(world: World, client: httpx.AsyncClient) -> None:
    """The ranges and the group select exactly the rows whose fields match (compared with the
    unfiltered page), and count them; a range whose min is above its max is refused."""
    await world.ci_flow(res(20))
    _, second_job = await world.ci_flow(res(20, failing={1, 2, 3}))
    await world.ci_flow(res(20, failing={2, 3}))
    # a run whose every job is in the group: the page needs no condition for it, the total is all
    second = await world.run_of(second_job)
    n, items = await all_pages(client, f"/api/runs/{second}/results?limit=7&agents_group=all")
    assert n == 20 == len({i["id"] for i in items})
    n, items = await all_pages(client, f"/api/runs/{second}/results?limit=2&agents_group=all&age_max=0")
    assert n == 3 and {i["test"] for i in items} == {f"suite::test_{k:04d}" for k in (1, 2, 3)}
    flow = await world.flow()
    job = await world.job(flow)
    other = await world.job(flow, name="gpu", run_id=await world.run_of(job))
    async with world.db.transaction() as s:
        await s.execute(sa.text("UPDATE job SET agents_group = 'gpu-boxes' WHERE id = :j"), {"j": other})
    await world.send(job, res(20, failing={3}))
    await world.send(other, [[f"gpu::test_{i}", "passed", 0.1, None, None] for i in range(4)])
    for j in (job, other):
        await world.finish_job(j)
    await world.finish_flow(flow)
    run = await world.run_of(job)

    total, everything = await all_pages(client, f"/api/runs/{run}/results?limit=100")
    assert total == 24
    ages = {i["age"] for i in everything}
    instabilities = {i["instability"] for i in everything}
    assert len(ages) > 1 and len(instabilities) > 1  # the data can tell the filters apart

    async def check(query: str, keep: Any) -> None:
        n, got = await all_pages(client, f"/api/runs/{run}/results?limit=3&{query}")
        want = {i["id"] for i in everything if keep(i)}
        assert want and {i["id"] for i in got} == want and n == len(want), query

    await check("age_min=1", lambda i: i["age"] >= 1)
    await check("age_max=0", lambda i: i["age"] <= 0)
    await check("age_min=1&age_max=1", lambda i: i["age"] == 1)
    await check("instability_min=1", lambda i: i["instability"] >= 1)
    await check("instability_max=0", lambda i: i["instability"] == 0)
    await check("agents_group=gpu-boxes", lambda i: i["agents_group"] == "gpu-boxes")
    await check("agents_group=all&status=failed", lambda i: i["agents_group"] == "all" and i["status"] == "failed")
    await check(
        "instability_min=1&agents_group=all&sort=-duration",
        lambda i: i["instability"] >= 1 and i["agents_group"] == "all",
    )
    n, none = await all_pages(client, f"/api/runs/{run}/results?agents_group=nobody")
    assert (n, none) == (0, [])

    for bad, name in (
        ("age_min=3&age_max=2", "age_min"),
        ("instability_min=5&instability_max=1", "instability_min"),
        ("age_min=-1", "age_min"),
        ("instability_max=99999999999", "instability_max"),
        ("agents_group=" + "x" * 201, "agents_group"),
    ):
        r = await client.get(f"/api/runs/{run}/results?{bad}")
        assert r.status_code == 422 and name in r.text, (bad, r.text)


async def test_branch_stats_over_the_last_flows(world: World, client: httpx.AsyncClient) -> None:
    """Per CI flow, oldest first: totals, pass ratio, failures, regressions, fixes, flaky and
    duration; ``limit`` keeps the last N; dev flows are left out."""
    flows = [(await world.ci_flow(res(10)))[0]]
    flows.append((await world.ci_flow(res(10, failing={1, 2})))[0])
    flows.append((await world.ci_flow(res(10, failing={2}, error={3})))[0])
    dev = await world.flow("dev")
    await world.send(await world.job(dev), res(10, failing={7}))
    empty = await world.flow()  # a CI flow still running, without results

    body = (await client.get(f"/api/branches/{world.branch_id}/stats")).json()
    assert body["branch_id"] == world.branch_id
    got = [
        (f["flow_id"], f["total"], f["passed"], f["failed"], f["regressions"], f["fixes"], f["pass_ratio"])
        for f in body["flows"]
    ]
    assert got == [
        (flows[0], 10, 10, 0, 0, 0, 1.0),
        (flows[1], 10, 8, 2, 2, 0, 0.8),
        (flows[2], 10, 8, 2, 1, 1, 0.8),
        (empty, 0, 0, 0, 0, 0, None),
    ]
    assert [f["seq"] for f in body["flows"]] == [1, 2, 3, 4]
    assert all(f["flaky"] == 0 for f in body["flows"])
    assert body["flows"][-1]["duration"] is None and body["flows"][-1]["state"] == "running"

    async with world.db.transaction() as s:
        await s.execute(
            sa.text("UPDATE flow SET started = :a, finished = :b WHERE id = :f"),
            {"a": datetime(2026, 1, 1, 10, 0, 0), "b": datetime(2026, 1, 1, 10, 1, 30), "f": flows[1]},
        )
    body = (await client.get(f"/api/branches/{world.branch_id}/stats")).json()
    assert body["flows"][1]["duration"] == 90.0

    last2 = (await client.get(f"/api/branches/{world.branch_id}/stats?limit=2")).json()["flows"]
    assert [f["flow_id"] for f in last2] == [flows[2], empty]
    assert (await client.get(f"/api/branches/{world.branch_id}/stats?limit=0")).status_code == 422
    assert "limit" in (await client.get(f"/api/branches/{world.branch_id}/stats?limit=501")).text
    assert (await client.get("/api/branches/999999/stats")).status_code == 404


async def test_issues_new_first_then_by_age_in_keyset_pages(world: World, client: httpx.AsyncClient) -> None:
    """``sort=new``: new issues, then known ones youngest first, then those not analysed yet;
    one issue a page still gives each once, in that order; ``sort=id`` keeps the order found."""
    a = ["a.py", 1, 1, "F401", "unused", "error"]
    b = ["b.py", 2, 1, "E501", "long", "warning"]
    c = ["c.py", 3, 1, "E711", "none", "warning"]
    d = ["d.py", 4, 1, "F841", "unused var", "error"]
    for issues in ([a, b], [a, b, c]):
        flow = await world.flow()
        job = await world.job(flow)
        await world.send_issues(job, issues)
        await world.finish_job(job)
        await world.finish_flow(flow)
    flow = await world.flow()
    job = await world.job(flow)
    await world.send_issues(job, [a, c, d])
    await world.finish_job(job)
    run = await world.run_of(job)
    pending = await world.job(flow, name="lint", run_id=run)
    await world.send_issues(pending, [["e.py", 5, 1, "W291", "space", "warning"]])

    by_new = (await client.get(f"/api/runs/{run}/issues?sort=new")).json()
    got = [(i["path"], i["new"], i["age"]) for i in by_new["items"]]
    assert got == [("d.py", True, 0), ("c.py", False, 1), ("a.py", False, 2), ("e.py", None, None)]
    assert by_new["total"] == 4 and by_new["next_cursor"] is None
    total, paged = await all_pages(client, f"/api/runs/{run}/issues?sort=new&limit=1")
    assert total == 4 and [i["path"] for i in paged] == ["d.py", "c.py", "a.py", "e.py"]
    by_id = (await client.get(f"/api/runs/{run}/issues")).json()["items"]
    assert [i["path"] for i in by_id] == ["a.py", "c.py", "d.py", "e.py"]
    only_new = (await client.get(f"/api/runs/{run}/issues?sort=new&new=true")).json()["items"]
    assert [i["path"] for i in only_new] == ["d.py"]

    assert (await client.get(f"/api/runs/{run}/issues?sort=age")).status_code == 422
    id_cursor = (await client.get(f"/api/runs/{run}/issues?limit=1")).json()["next_cursor"]
    bad = await client.get(f"/api/runs/{run}/issues?sort=new&cursor={id_cursor}")
    assert bad.status_code == 400 and "cursor" in bad.text
