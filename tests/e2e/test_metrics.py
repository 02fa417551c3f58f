"""Prometheus metrics scraped from real processes during a flow: kraken serve with a real agent
(SQLite and PostgreSQL), and the scale-out roles' listeners (PostgreSQL and Redis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.metrics import Samples, scrape, value, wait_metrics
from tests.support.procs import Server, free_port, kraken, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-for-tests"
PRINTED = 7  # lines the step prints

CMD = f"for i in $(seq 1 {PRINTED}); do echo metrics-line-$i; done; while [ ! -e GATE ]; do sleep 0.05; done"
STAGE = """
def stage(ctx):
    return {
        "parent": "root",
        "jobs": [{
            "name": "talk",
            "steps": [{"tool": "shell", "cmd": "CMD"}],
            "environments": [{"system": "any", "agents_group": "all", "executor": "direct"}],
        }],
    }
""".replace("CMD", CMD)


def jobs(s: Samples, state: str) -> float:
    return value(s, "kraken_jobs", state=state)


async def test_metrics_move_with_a_flow(tmp_path: Path, database_url: str) -> None:
    server = Server(tmp_path, database_url=database_url, KRAKEN_METRICS_TOKEN=TOKEN)
    url = f"{server.url}/metrics"
    api = Api(server.url)
    agent = None
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 401
            assert (await client.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
        await api.login()
        _, branch_id = await api.project_with_branch()
        gate = tmp_path / "gate"
        await api.stage(branch_id, "talk", STAGE.replace("GATE", str(gate)))
        before = await scrape(url, TOKEN)
        assert value(before, "kraken_build_info", role="serve") == 1
        assert jobs(before, "queued") == 0 and jobs(before, "running") == 0

        flow = await api.flow(branch_id)  # no agent yet: the job waits in the queue
        queued = await wait_metrics(url, lambda s: jobs(s, "queued") == 1, TOKEN, what="one queued job")
        assert value(queued, "kraken_queue_jobs", agents_group="all") == 1
        assert value(queued, "kraken_queue_oldest_wait_seconds", agents_group="all") >= 0
        assert value(queued, "kraken_agents", status="online") == 0
        diag = await api.get("/diagnostics")
        assert diag["jobs"]["queued"] == 1 and diag["agents"] == [] and diag["shared"] is False
        assert [(q["agents_group"], q["queued"]) for q in diag["queues"]] == [("all", 1)]
        [me] = diag["processes"]
        assert me["service"] == "serve" and me["scheduler_passes"], me  # the pass that found no agent
        assert me["scheduler_passes"][0]["assigned"] == 0

        agent = start_agent(tmp_path, server.url, "metrics-agent")
        wait_agent_connected(agent)
        running = await wait_metrics(
            url,
            lambda s: jobs(s, "running") == 1 and value(s, "kraken_agents", status="busy") == 1,
            TOKEN,
            what="the job running on the busy agent",
        )
        assert jobs(running, "queued") == 0 and value(running, "kraken_queue_jobs", agents_group="all") == 0
        assert value(running, "kraken_agents", status="online") == 1
        wait = "kraken_job_queued_to_assigned_seconds_count"
        assert value(running, wait, agents_group="all") == value(before, wait, agents_group="all") + 1

        gate.touch()
        flow = await api.wait_flow(flow["id"])
        assert flow["result"] == "passed", flow
        after = await wait_metrics(
            url,
            lambda s: jobs(s, "running") == 0 and value(s, "kraken_agents", status="busy") == 0,
            TOKEN,
            what="no job running",
        )
        assert jobs(after, "queued") == 0
        done = "kraken_jobs_completed_total"
        assert value(after, done, result="passed") == value(before, done, result="passed") + 1
        took = "kraken_flow_trigger_to_completed_seconds_count"
        assert value(after, took, result="passed") == value(before, took, result="passed") + 1

        job = (await api.jobs(flow["runs"][0]["id"]))[0]
        log = await api.log(job["id"])
        assert all(f"metrics-line-{i}" in log for i in range(1, PRINTED + 1))
        stored = job["log_lines"] if "log_lines" in job else len(log.splitlines())
        grown = value(after, "kraken_log_lines_total") - value(before, "kraken_log_lines_total")
        assert grown == stored and grown >= PRINTED

        # request latency by route template, never by raw path
        create = "kraken_http_request_duration_seconds_count"
        route = "/api/branches/{branch_id}/flows"
        assert value(after, create, route=route, method="POST", status="201") == 1
        assert value(after, create, route="/api/flows/{flow_id}", method="GET") >= 1
        routes = {dict(ls).get("route", "") for (n, ls) in after if n == create}
        assert not any(str(flow["id"]) in r.split("/") for r in routes), routes
        # background tasks ran in-process; the event loop was probed; the pool is reported
        assert value(after, "kraken_background_tasks_total", task="job_completed", outcome="ok") >= 1
        assert value(after, "kraken_event_loop_lag_seconds_count") >= 1
        assert value(after, "kraken_db_pool_connections", pool="main", state="size") >= 1
        assert value(after, "kraken_database_up") == 1

        diag = await api.get("/diagnostics")
        assert diag["queues"] == [] and diag["jobs"] == {"queued": 0, "running": 0}
        [seen] = diag["agents"]
        assert seen["name"] == "metrics-agent" and seen["online"] and seen["current_job_id"] is None
        assert 0 <= seen["seconds_since_contact"] < 10
        [me] = diag["processes"]
        assert any(p["assigned"] == 1 for p in me["scheduler_passes"])
        assert me["tasks"]["job_completed"]["ok"] >= 1 and me["task_failures"] == []
        await _diagnostics_for_admins_only(server.url, database_url)
    finally:
        await api.close()
        if agent is not None:
            agent.stop()
        server.stop()


async def _diagnostics_for_admins_only(url: str, database_url: str) -> None:
    from kraken.core.db import Database
    from kraken.core.security import hash_password
    from kraken.models import User

    db = Database(database_url)
    try:
        async with db.transaction() as session:
            session.add(User(username="plain", password_hash=hash_password("plain-pw"), is_admin=False))
    finally:
        await db.dispose()
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/api/diagnostics")).status_code == 401
    plain = Api(url)
    try:
        await plain.login("plain", "plain-pw")
        r = await plain.http.get("/diagnostics")
        assert r.status_code == 403 and "administrator" in r.text
    finally:
        await plain.close()


@pytest.fixture
async def pg_url() -> object:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_controller_and_worker_listeners(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    common = ["--database-url", pg_url, "--redis-url", redis_url]
    server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_url)
    cport, wport = free_port(), free_port()
    controller = kraken(["controller", *common, "--metrics-port", str(cport)], tmp_path, "controller")
    worker = kraken(["worker", *common], tmp_path, "worker", KRAKEN_METRICS_PORT=str(wport), KRAKEN_METRICS_TOKEN=TOKEN)
    agent = start_agent(tmp_path, server.url, "scale-agent")
    api = Api(server.url)
    try:
        controller.wait_line(lambda line: "kraken controller: running" in line)
        worker.wait_line(lambda line: "kraken worker: running" in line)
        wait_agent_connected(agent)
        curl, wurl = f"http://127.0.0.1:{cport}/metrics", f"http://127.0.0.1:{wport}/metrics"
        async with httpx.AsyncClient() as client:
            assert (await client.get(wurl)).status_code == 401  # the token applies to the listener too
            assert (await client.get(f"http://127.0.0.1:{cport}/other")).status_code == 404
        c0 = await scrape(curl)
        assert value(c0, "kraken_build_info", role="controller") == 1
        w0 = await scrape(wurl, TOKEN)
        assert value(w0, "kraken_build_info", role="worker") == 1

        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "talk", STAGE.replace("GATE", "/"))  # the gate exists: no wait
        flow = await api.wait_flow((await api.flow(branch_id))["id"])
        assert flow["result"] == "passed", flow

        c1 = await scrape(curl)
        assert value(c1, "kraken_scheduler_assigned_total") == value(c0, "kraken_scheduler_assigned_total") + 1
        assert value(c1, "kraken_scheduler_passes_total", outcome="ok") > value(
            c0, "kraken_scheduler_passes_total", outcome="ok"
        )
        wait = "kraken_job_queued_to_assigned_seconds_count"
        assert value(c1, wait, agents_group="all") == value(c0, wait, agents_group="all") + 1
        assert value(c1, "kraken_event_loop_lag_seconds_count") >= 1
        assert value(c1, "kraken_db_pool_connections", pool="main", state="size") >= 1
        tasks = "kraken_background_tasks_total"
        w1 = await wait_metrics(
            wurl,
            lambda s: value(s, tasks, task="flow_completed", outcome="ok") >= 1,
            TOKEN,
            what="the worker ran flow_completed",
        )
        assert value(w1, tasks, task="job_completed", outcome="ok") >= 1
        assert value(w1, tasks, outcome="failed") == 0
        s = await scrape(f"{server.url}/metrics")  # no token set for the server: open
        assert value(s, "kraken_build_info", role="server") == 1
        assert value(s, "kraken_jobs_completed_total", result="passed") == 1  # the agent reported to this server
        assert value(s, "kraken_agents", status="online") == 1

        # the diagnostics of a replica list every process, through Redis (each rewrites its journal every 5 s)
        async def every_role() -> dict[str, Any] | None:
            diag = await api.get("/diagnostics")
            by_role = {p["service"]: p for p in diag["processes"]}
            if not {"server", "controller", "worker"} <= set(by_role):
                return None
            if not any(p["assigned"] == 1 for p in by_role["controller"]["scheduler_passes"]):
                return None
            return by_role if by_role["worker"]["tasks"].get("flow_completed", {}).get("ok") else None

        by_role = await api.wait_until(every_role, timeout=30, what="every role's journal")
        assert by_role["worker"]["task_failures"] == [] and by_role["server"]["host"]
    finally:
        await api.close()
        for p in (agent, worker, controller):
            p.stop()
        server.stop()


async def test_serve_metrics_on_a_port_of_their_own(tmp_path: Path) -> None:
    port = free_port()
    server = Server(tmp_path, KRAKEN_METRICS_PORT=str(port))
    try:
        server.proc.wait_line(lambda line: f"metrics on http://127.0.0.1:{port}/metrics" in line)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/metrics")).status_code == 404  # not on the API's port
        samples = await scrape(f"http://127.0.0.1:{port}/metrics")
        assert value(samples, "kraken_build_info", role="serve") == 1
        assert (
            value(samples, "kraken_database_up") == 1 and ("kraken_jobs", frozenset({("state", "queued")})) in samples
        )
    finally:
        server.stop()
