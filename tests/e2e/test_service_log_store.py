"""Kraken's own logs in the log store (``KRAKEN_SERVICE_LOGS_STORE=true``): a real ``kraken serve``
and a real ``kraken agent`` (SQLite and PostgreSQL; the OpenSearch store against the
``osmem-server`` emulator) each log an error; ``GET /api/logs/search?service=&level=`` finds
both, with service, host, level and the ids of the job's flow and run; a non-administrator gets
none; job search works as before; with the option off, ``service=`` is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.opensearch_emulator import OpenSearchEmulator
from tests.support.procs import Proc, Server, free_port, kraken, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

PASSWORD = "svc-viewer-pass-123"
OIDC_SECRET = "oidc-client-secret-4f1d9a"
# an environment variable whose name holds "=" cannot be given to a process: the shell tool crashes
# (an error the agent logs, with the traceback, while it runs the job); the step before prints a
# line for the job search
CRASHING = """
def stage(ctx):
    return {"jobs": [{"name": "crash", "environments": [{"system": "any"}], "steps": [
        {"tool": "shell", "cmd": "echo findable-job-line", "when": "always"},
        {"tool": "shell", "cmd": "true", "env": {"A=B": "x"}, "when": "always"}]}]}
"""


def _env(port: int, **extra: str) -> dict[str, str]:
    """The option on, and an OpenID Connect provider that does not answer: the login's start
    logs an error (``OpenID Connect provider: ...``) on the server."""
    return {
        "KRAKEN_SERVICE_LOGS_STORE": "true",
        "KRAKEN_LOG_INDEX_INTERVAL": "0.2",
        "KRAKEN_OIDC_ISSUER": f"http://127.0.0.1:{free_port()}",
        "KRAKEN_OIDC_CLIENT_ID": "kraken",
        "KRAKEN_OIDC_CLIENT_SECRET": OIDC_SECRET,
        "KRAKEN_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **extra,
    }


# a line each role logs at the start (info)
WHAT_EACH_ROLE_SAYS = {
    "server": "connected from",
    "controller": "controller running its services",
    "worker": "serving tasks",
    "agent": '"connected to"',
}


async def found(api: Api, want: int, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
    """Searches until ``want`` hits are there: records are stored by a background flusher and
    nothing tells when (asks again every 0.2 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        page: dict[str, Any] = await api.get("/logs/search", params=params)
        if len(page["service_hits"]) + len(page["hits"]) >= want or loop.time() > deadline:
            return page
        await asyncio.sleep(0.2)


@pytest.fixture(params=["database", "opensearch"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The database store, or the OpenSearch store against the emulator (on each database)."""
    if request.param == "database":
        yield {}
        return
    em = OpenSearchEmulator()
    em.start()
    try:
        yield {"KRAKEN_LOGS_STORE": "opensearch", "KRAKEN_OPENSEARCH_URL": em.url}
    finally:
        em.stop()


@pytest.fixture
def system(tmp_path: Path, database_url: str, store_env: dict[str, str]) -> Iterator[tuple[Server, Proc]]:
    port = free_port()
    server = Server(tmp_path, database_url=database_url, port=port, **_env(port, **store_env))
    agent = start_agent(tmp_path, server.url, f"svc-{tmp_path.name}", KRAKEN_SERVICE_LOGS_STORE="true")
    try:
        wait_agent_connected(agent)
        yield server, agent
    finally:
        agent.stop()
        server.stop()


@pytest.fixture
async def admin(system: tuple[Server, Proc]) -> AsyncIterator[Api]:
    client = Api(system[0].url)
    await client.login()
    yield client
    await client.close()


async def test_errors_of_the_server_and_the_agent_are_found_by_service_and_level(
    system: tuple[Server, Proc], admin: Api
) -> None:
    server, _ = system
    # the server's error
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get("/api/auth/oidc/start")).status_code == 503
    page = await found(admin, 1, q='"OpenID Connect provider"', service="serve", level="error")
    [hit] = page["service_hits"]
    assert hit["service"] == "serve" and hit["level"] == "error" and hit["logger"].startswith("kraken")
    assert hit["host"] and hit["pid"] > 0 and page["hits"] == []
    assert hit["highlights"] and hit["text"][slice(*hit["highlights"][0])].lower() == "openid connect provider"
    # the diagnostics page's last errors of each service still come from the process's memory
    diagnostics = await admin.get("/diagnostics")
    errors = [e["message"] for p in diagnostics["processes"] for e in p["errors"]]
    assert any(m.startswith("OpenID Connect provider") for m in errors), errors

    # the agent's error, while it ran a job: named by the job, its run and its flow
    _, branch_id = await admin.project_with_branch("svc")
    await admin.stage(branch_id, "crash", CRASHING)
    flow = await admin.wait_flow((await admin.flow(branch_id))["id"])
    [job] = await admin.jobs(flow["runs"][0]["id"])
    page = await found(admin, 1, q="tool shell crashed", service="agent", level="error")
    [hit] = page["service_hits"]
    assert hit["service"] == "agent" and hit["level"] == "error" and hit["host"].startswith("svc-")
    assert (hit["job_id"], hit["run_id"], hit["flow_id"]) == (job["id"], job["run_id"], flow["id"])
    assert hit["text"].startswith("tool shell crashed\nTraceback")  # the traceback after the message
    traceback = await admin.get("/logs/search", params={"q": '"illegal environment variable"', "service": "agent"})
    assert [h["job_id"] for h in traceback["service_hits"]] == [job["id"]]

    # filters: another service, a higher level, every service, the job's flow
    assert (await admin.get("/logs/search", params={"q": "tool shell crashed", "service": "serve"}))[
        "service_hits"
    ] == []
    assert (await admin.get("/logs/search", params={"q": "crashed", "service": "agent", "level": "critical"}))[
        "service_hits"
    ] == []
    both = await found(admin, 2, q="error", service="all", level="error")
    assert {"serve", "agent"} <= {h["service"] for h in both["service_hits"]}
    mine = await admin.get("/logs/search", params={"q": "crashed", "service": "all", "flow_id": flow["id"]})
    assert [h["job_id"] for h in mine["service_hits"]] == [job["id"]]
    # info records too (the option's default level), and the secret of the settings never
    info = await found(admin, 1, q="connected from", service="serve", level="info")
    assert all(h["level"] in ("info", "warning", "error", "critical") for h in info["service_hits"])
    assert (await admin.get("/logs/search", params={"q": OIDC_SECRET, "service": "all"}))["service_hits"] == []

    # job search as before: job lines only, the service records never among them
    jobs = await found(admin, 1, q="findable-job-line")
    assert [h["job_id"] for h in jobs["hits"]] == [job["id"]] and jobs["service_hits"] == []
    assert (await admin.get("/logs/search", params={"q": "OpenID Connect provider"}))["hits"] == []

    # a non-administrator: refused, even on a project of their own
    me = await admin.post("/users", {"username": "svc-viewer", "password": PASSWORD}, 201)
    assert me["id"]
    viewer = Api(server.url)
    await viewer.login("svc-viewer", PASSWORD)
    try:
        r = await viewer.http.get("/logs/search", params={"q": "crashed", "service": "all"})
        assert r.status_code == 403 and "administrator" in r.text
        assert (await viewer.get("/logs/search", params={"q": "crashed"}))["service_hits"] == []
    finally:
        await viewer.close()

    # bad input: 422 naming the parameter
    for params, key in (
        ({"q": "crashed", "service": "nginx"}, "service"),
        ({"q": "crashed", "service": "all", "level": "loud"}, "level"),
        ({"q": "crashed", "level": "error"}, "level"),
        ({"q": "crashed", "service": "all", "project_id": 1}, "project_id"),
    ):
        r = await admin.http.get("/logs/search", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", key], r.text


async def test_with_the_option_off_service_search_is_refused_and_agent_records_dropped(
    tmp_path: Path, database_url: str
) -> None:
    server = Server(tmp_path, database_url=database_url)
    agent = start_agent(tmp_path, server.url, f"off-{tmp_path.name}", KRAKEN_SERVICE_LOGS_STORE="true")
    api = Api(server.url)
    try:
        wait_agent_connected(agent)
        await api.login()
        r = await api.http.get("/logs/search", params={"q": "connected", "service": "all"})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["query", "service"]
        assert "KRAKEN_SERVICE_LOGS_STORE is off" in r.json()["detail"][0]["msg"]
        # the agent ships (its option is on), this server says once that it drops them
        server.proc.wait_line(lambda line: "does not store service logs" in line, timeout=30)
    finally:
        await api.close()
        agent.stop()
        server.stop()


def test_service_log_settings_without_the_option_are_refused(tmp_path: Path) -> None:
    proc = kraken(
        ["serve", "--no-local-agent", "--data-dir", str(tmp_path / "d")],
        tmp_path,
        "refused",
        KRAKEN_SERVICE_LOGS_RETENTION_DAYS="3",
    )
    assert proc.proc.wait(60) == 2
    assert "service_logs_retention_days: used only with service_logs_store=true" in proc.output


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_scale_out_every_role_stores_its_own_records(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    """kraken server + controller + worker on PostgreSQL and Redis, and an agent: each role's
    records are stored under its own service name."""
    common = ["--database-url", pg_url, "--redis-url", redis_url]
    env = {"KRAKEN_SERVICE_LOGS_STORE": "true", "KRAKEN_LOG_INDEX_INTERVAL": "0.2"}
    server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_url, **env)
    controller = kraken(["controller", *common], tmp_path, "controller", **env)
    worker = kraken(["worker", *common], tmp_path, "worker", **env)
    agent = start_agent(tmp_path, server.url, f"scale-{tmp_path.name}", **env)
    api = Api(server.url)
    try:
        controller.wait_line(lambda line: "kraken controller: running" in line)
        worker.wait_line(lambda line: "kraken worker: running" in line)
        wait_agent_connected(agent)
        await api.login()
        for service, q in WHAT_EACH_ROLE_SAYS.items():
            page = await found(api, 1, q=q, service=service)
            assert page["service_hits"], (service, q)
            assert {h["service"] for h in page["service_hits"]} == {service}
        # the worker runs index_logs every 0.2 s: arq's two info lines per task are not stored
        assert (await api.get("/logs/search", params={"q": "index_logs", "service": "worker"}))["service_hits"] == []
    finally:
        await api.close()
        agent.stop()
        worker.stop()
        controller.stop()
        server.stop()
