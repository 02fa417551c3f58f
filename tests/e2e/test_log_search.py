"""Search across job logs: a real server (SQLite and PostgreSQL), a real agent whose jobs print
lines, the background indexer, the caller's project roles, pagination and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Server, kraken, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

PASSWORD = "search-pass-123456"
PRINTER = """
def stage(ctx):
    return {"jobs": [{"name": "print", "steps": [{"tool": "shell", "script": SCRIPT}],
                      "environments": [{"system": "any"}]}]}
"""


def script(project: str) -> str:
    lines = [
        "set -e",
        'for i in $(seq 1 60); do echo "step line $i of PROJECT"; done',
        "echo 'ERROR: ConnectTimeoutError while fetching db-7f3a (PROJECT)'",
        """echo 'a "double quoted" word'""",
        "echo",
    ]
    return repr("\n".join(lines).replace("PROJECT", project) + "\n")


@pytest.fixture
def search_server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path, database_url=database_url, KRAKEN_LOG_INDEX_INTERVAL="0.2")
    yield srv
    srv.stop()


@pytest.fixture
async def admin(search_server: Server) -> AsyncIterator[Api]:
    client = Api(search_server.url)
    await client.login()
    yield client
    await client.close()


async def indexed(api: Api, q: str, want: int, **params: Any) -> dict[str, Any]:
    """Searches until ``want`` hits are there (the index is filled in the background: no event
    tells when a line was indexed, so this asks again every 0.1 s, for at most 30 s)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        page: dict[str, Any] = await api.get("/logs/search", params={"q": q, **params})
        if len(page["hits"]) >= want or asyncio.get_running_loop().time() > deadline:
            return page
        await asyncio.sleep(0.1)


async def run_printer(api: Api, name: str) -> tuple[int, int, dict[str, Any]]:
    project_id, branch_id = await api.project_with_branch(name)
    await api.stage(branch_id, "print", PRINTER.replace("SCRIPT", script(name)))
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    assert flow["result"] == "passed", flow
    [job] = await api.jobs(flow["runs"][0]["id"])
    return project_id, branch_id, job


async def test_search_finds_lines_with_roles_pages_and_refuses_bad_input(
    tmp_path: Path, search_server: Server, admin: Api
) -> None:
    agent = start_agent(tmp_path, search_server.url, f"search-{tmp_path.name}")
    wait_agent_connected(agent)
    try:
        alpha, _, job_a = await run_printer(admin, "alpha")
        beta, beta_branch, job_b = await run_printer(admin, "beta")
    finally:
        agent.stop()

    # a substring of a word finds both jobs' error line, newest first, highlighted
    page = await indexed(admin, "timeout", 2)
    assert [h["job_id"] for h in page["hits"]] == [job_b["id"], job_a["id"]]
    hit = page["hits"][1]
    log_lines = (await admin.log(job_a["id"])).split("\n")
    assert log_lines[hit["line"]] == hit["text"] == "ERROR: ConnectTimeoutError while fetching db-7f3a (alpha)"
    assert (hit["project_id"], hit["project_name"], hit["branch_name"], hit["job_name"]) == (
        alpha,
        "alpha",
        "main",
        "print",
    )
    assert hit["flow_id"] and hit["run_id"] == job_a["run_id"] and hit["step_index"] == 0 and hit["time"]
    assert [hit["text"][s:e] for s, e in hit["highlights"]] == ["Timeout"]
    assert page["next_cursor"] is None and "3 characters" in page["syntax"]

    # every term must occur; a quoted phrase is exact text; filters narrow
    both = await admin.get("/logs/search", params={"q": "error db-7f3a beta"})
    assert [h["job_id"] for h in both["hits"]] == [job_b["id"]]
    phrase = await admin.get("/logs/search", params={"q": '"double quoted" word', "project_id": alpha})
    assert [h["text"] for h in phrase["hits"]] == ['a "double quoted" word']
    assert (await admin.get("/logs/search", params={"q": '"quoted word"'}))["hits"] == []
    by_job = await admin.get("/logs/search", params={"q": "timeout", "job_id": job_a["id"]})
    assert [h["job_id"] for h in by_job["hits"]] == [job_a["id"]]
    by_branch = await admin.get("/logs/search", params={"q": "timeout", "branch_id": beta_branch})
    assert [h["project_id"] for h in by_branch["hits"]] == [beta]
    future = await admin.get("/logs/search", params={"q": "timeout", "since": "2999-01-01T00:00:00Z"})
    assert future["hits"] == []
    past = await admin.get("/logs/search", params={"q": "timeout", "until": "2000-01-01T00:00:00+00:00"})
    assert past["hits"] == []

    # pagination: 120 "step line" lines in pages of 25, each exactly once, newest first
    await indexed(admin, "step line", 50, limit=50)
    seen: list[tuple[int, int]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"q": "step line", "limit": 25}
        if cursor:
            params["cursor"] = cursor
        page = await admin.get("/logs/search", params=params)
        pages += 1
        seen += [(h["job_id"], h["line"]) for h in page["hits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and len(seen) == len(set(seen)) == 120
    assert seen == sorted(seen, reverse=True)
    # a cursor past every line id (the OpenSearch store's are 64-bit): the first page again
    far = await admin.get("/logs/search", params={"q": "step line", "limit": 25, "cursor": str(2**40)})
    assert [(h["job_id"], h["line"]) for h in far["hits"]] == seen[:25]

    # roles: a viewer of alpha sees alpha's hits only; beta's never appear, even when asked for
    me = await admin.post("/users", {"username": "alpha-viewer", "password": PASSWORD}, 201)
    r = await admin.http.put(f"/projects/{alpha}/members", json=[{"user_id": me["id"], "role": "viewer"}])
    assert r.status_code == 200, r.text
    viewer = Api(search_server.url)
    await viewer.login("alpha-viewer", PASSWORD)
    try:
        mine = await viewer.get("/logs/search", params={"q": "timeout"})
        assert [h["project_id"] for h in mine["hits"]] == [alpha]
        assert (await viewer.get("/logs/search", params={"q": "timeout", "project_id": beta}))["hits"] == []
        assert (await viewer.get("/logs/search", params={"q": "timeout", "job_id": job_b["id"]}))["hits"] == []
    finally:
        await viewer.close()
    async with httpx.AsyncClient(base_url=search_server.url + "/api") as anonymous:
        assert (await anonymous.get("/logs/search", params={"q": "timeout"})).status_code == 401

    # bad input: a 422 naming the parameter and what is wrong
    bad = {
        "": ("q", "empty"),
        "ab": ("q", "shorter than 3"),
        'error "unclosed': ("q", "not closed"),
    }
    for q, (key, words) in bad.items():
        r = await admin.http.get("/logs/search", params={"q": q})
        assert r.status_code == 422, (q, r.text)
        [detail] = r.json()["detail"]
        assert detail["loc"] == ["query", key] and words in detail["msg"], (q, detail)
    for params, key in (
        ({"q": "timeout", "cursor": "abc"}, "cursor"),
        ({"q": "timeout", "service": "server"}, "service"),
        ({"q": "timeout", "level": "error"}, "level"),
        ({"q": "timeout", "limit": 0}, "limit"),
        ({"q": "timeout", "limit": 201}, "limit"),
        ({"q": "timeout", "project_id": 0}, "project_id"),
        ({"q": "timeout", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"q": "timeout", "since": "yesterday"}, "since"),
    ):
        r = await admin.http.get("/logs/search", params=params)
        assert r.status_code == 422, (params, r.text)
        assert any(d["loc"][-1] == key for d in r.json()["detail"]), (params, r.text)
    r = await admin.http.get("/logs/search", params={"q": "timeout", "service": "server"})
    assert "service logs" in r.json()["detail"][0]["msg"]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_scale_out_the_worker_indexes_what_the_controller_queues(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """kraken server + controller + worker on PostgreSQL and Redis: the controller queues
    ``index_logs`` through arq, a worker runs it, the server's search finds the lines."""
    common = ["--database-url", pg_url, "--redis-url", redis_url]
    env = {"KRAKEN_LOG_INDEX_INTERVAL": "0.2"}
    server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_url)
    controller = kraken(["controller", *common], tmp_path, "controller", **env)
    worker = kraken(["worker", *common], tmp_path, "worker")
    agent = start_agent(tmp_path, server.url, f"scale-{tmp_path.name}")
    api = Api(server.url)
    try:
        controller.wait_line(lambda line: "kraken controller: running" in line)
        worker.wait_line(lambda line: "kraken worker: running" in line)
        wait_agent_connected(agent)
        await api.login()
        _, _, job = await run_printer(api, "scaled")
        page = await indexed(api, "connecttimeout", 1)
        assert [(h["job_id"], h["project_name"]) for h in page["hits"]] == [(job["id"], "scaled")]
        assert page["indexed_lines"] == 62  # 60 + 2 lines; the blank one is not indexed
    finally:
        await api.close()
        agent.stop()
        worker.stop()
        controller.stop()
        server.stop()
