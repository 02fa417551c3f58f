"""Agents enroll with the shared token, wait for an administrator's approval, then hold their own
credential; revoking cuts them off; names cannot be taken over; groups come from administrators;
artifact transfers need the job's own transfer token.  Real server and agent processes."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import (
    AGENT_TOKEN,
    PENDING,
    SECRET_KEY,
    Proc,
    Server,
    kraken,
    start_agent,
    transfer_token,
    wait_agent_connected,
)

pytestmark = pytest.mark.e2e

CREDENTIAL = "agent-credential"


def one_job(cmd: str, group: str = "all") -> str:
    return f"""
def stage(ctx):
    return {{"jobs": [{{"name": "j", "steps": [{{"tool": "shell", "cmd": "{cmd}"}}],
             "environments": [{{"system": "any", "agents_group": "{group}"}}]}}]}}
"""


def pending_id(proc: Proc) -> int:
    line = proc.wait_line(lambda line: "connected to" in line)
    m = PENDING.search(line)
    assert m is not None, f"the agent did not enroll as pending: {line}"
    return int(m.group(1))


def refused(proc: Proc) -> str:
    proc.proc.wait(60)
    assert proc.proc.returncode == 2, proc.output[-2000:]
    return proc.output


async def stored_hash(database_url: str, name: str) -> str | None:
    from kraken.core.db import Database
    from kraken.models import Agent

    db = Database(database_url)
    try:
        async with db.session() as session:
            return (await session.execute(select(Agent.credential_hash).where(Agent.name == name))).scalar_one()
    finally:
        await db.dispose()


async def only_job(api: Api, flow: dict[str, Any]) -> dict[str, Any]:
    [job] = await api.jobs(flow["runs"][0]["id"])
    return job


async def wait_reason(api: Api, flow: dict[str, Any]) -> dict[str, Any]:
    """The flow's job once the scheduler said why no agent takes it."""

    async def reason() -> dict[str, Any] | None:
        job = await only_job(api, flow)
        return job if job["reason"] else None

    return await api.wait_until(reason, 30, "a reason why the job waits")  # type: ignore[no-any-return]


async def test_enroll_approve_credential_restart_takeover_and_groups(
    tmp_path: Path, server: Server, api: Api, database_url: str
) -> None:
    agent = start_agent(tmp_path, server.url, "a1", "--group", "gpu", approve=False)
    agent_id = pending_id(agent)
    [a] = await api.get("/agents")
    assert (a["id"], a["approved"], a["enrolled"], a["online"]) == (agent_id, False, True, True)
    assert a["groups"] == ["all"] and a["requested_groups"] == ["gpu"]  # hello's groups are only a request

    # pending: gets no job
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job("echo ran-here"))
    flow = await api.flow(branch_id)
    job = await wait_reason(api, flow)
    assert job["state"] == "queued" and job["agent_name"] is None

    # its own credential: 0600, not the shared token; the server keeps only its SHA-256
    cred_file = tmp_path / "a1" / CREDENTIAL
    assert stat.S_IMODE(cred_file.stat().st_mode) == 0o600
    credential = cred_file.read_text().strip()
    assert len(credential) >= 40 and credential != AGENT_TOKEN
    assert await stored_hash(database_url, "a1") == hashlib.sha256(credential.encode()).hexdigest()

    # approved: it runs the job
    r = await api.http.post(f"/agents/{agent_id}/approve")
    assert r.status_code == 200 and r.json()["approved"] is True
    flow = await api.wait_flow(flow["id"])
    assert flow["result"] == "passed" and (await only_job(api, flow))["agent_name"] == "a1"

    # a job for group 'gpu' waits although the agent asked for it, until an administrator sets it
    _, gpu_branch = await api.project_with_branch("gpu")
    await api.stage(gpu_branch, "g", one_job("echo gpu", group="gpu"))
    flow = await api.flow(gpu_branch)
    job = await wait_reason(api, flow)
    assert job["state"] == "queued" and "group 'gpu'" in job["reason"]
    r = await api.http.patch(f"/agents/{agent_id}", json={"groups": ["gpu"]})
    assert r.status_code == 200 and r.json()["groups"] == ["all", "gpu"]
    assert (await api.wait_flow(flow["id"]))["result"] == "passed"

    # restarted, it uses its credential: it needs no shared token any more
    agent.stop()
    argv = ["agent", "--server", server.url, "--name", "a1", "--data-dir", str(tmp_path / "a1")]
    again = kraken(argv, tmp_path, "agent-a1-again", KRAKEN_AGENT_TOKEN="")
    line = again.wait_line(lambda line: "connected to" in line)
    assert PENDING.search(line) is None and f"({agent_id})" in line
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    assert flow["result"] == "passed"

    # the shared token under its name does not take it over, from another data dir
    (tmp_path / "elsewhere").mkdir()
    intruder = start_agent(tmp_path / "elsewhere", server.url, "a1", approve=False)
    assert "agent name 'a1' is enrolled already" in refused(intruder)
    assert not (tmp_path / "elsewhere" / "a1" / CREDENTIAL).exists()
    [a] = await api.get("/agents")
    assert (a["id"], a["approved"], a["online"]) == (agent_id, True, True)
    assert await stored_hash(database_url, "a1") == hashlib.sha256(credential.encode()).hexdigest()
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    assert (await only_job(api, flow))["agent_name"] == "a1"

    # its credential names it: under another name it is refused
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / CREDENTIAL).write_text(credential)
    other = start_agent(tmp_path, server.url, "b1", approve=False)
    assert "this credential belongs to agent 'a1'" in refused(other)
    assert [x["name"] for x in await api.get("/agents")] == ["a1"]
    again.stop()


async def test_revoke_cuts_the_agent_off_at_once(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    [a] = await api.get("/agents")
    assert a["approved"] is True
    pidfile = tmp_path / "pid"
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job(f"echo $$ > {pidfile}; exec sleep 300"))
    flow = await api.flow(branch_id)

    async def running() -> bool:
        job = await only_job(api, flow)
        return job["steps"][0]["state"] == "running" and pidfile.exists() and pidfile.read_text().strip() != ""

    await api.wait_until(running, 30, "step running")
    pid = int(pidfile.read_text())
    r = await api.http.post(f"/agents/{a['id']}/revoke")
    assert r.status_code == 200 and r.json()["approved"] is False and r.json()["enrolled"] is False
    job = await only_job(api, flow)  # ended in the revoke's own transaction
    assert job["state"] == "completed" and job["result"] == "error" and "revoked" in job["reason"]
    out = refused(agent)  # its websocket was closed: the agent stops
    assert "revoked by an administrator" in out
    assert not pid_alive(pid), "the revoked agent's step kept running"
    [a] = await api.get("/agents")
    assert a["online"] is False and a["current_job_id"] is None

    # its credential no longer works
    again = start_agent(tmp_path, server.url, "a1", approve=False)
    assert "refused this agent's credential" in refused(again)
    r = await api.http.post(f"/agents/{a['id']}/approve")
    assert r.status_code == 409 and "must enroll again" in r.json()["detail"]

    # without its credential file it enrolls again, pending (the revoke freed the name)
    (tmp_path / "a1" / CREDENTIAL).unlink()
    fresh = start_agent(tmp_path, server.url, "a1", approve=False)
    assert pending_id(fresh) == a["id"]
    flow = await api.flow(branch_id)
    assert (await wait_reason(api, flow))["state"] == "queued"
    fresh.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


@pytest.fixture
async def keyed(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Server, Api]]:
    """A server with a known signing key: the test mints transfer tokens as the hub does."""
    srv = Server(tmp_path, database_url=database_url, KRAKEN_SECRET_KEY=SECRET_KEY)
    client = Api(srv.url)
    await client.login()
    yield srv, client
    await client.close()
    srv.stop()


async def test_artifact_transfers_need_the_jobs_own_token(tmp_path: Path, keyed: tuple[Server, Api]) -> None:
    server, api = keyed
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    [a] = await api.get("/agents")
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job("echo first"))
    first = await only_job(api, await api.wait_flow((await api.flow(branch_id))["id"]))
    _, long_branch = await api.project_with_branch("long")
    await api.stage(long_branch, "s", one_job("exec sleep 300"))
    flow = await api.flow(long_branch)

    async def running() -> dict[str, Any] | None:
        job = await only_job(api, flow)
        return job if job["steps"][0]["state"] == "running" else None

    job = await api.wait_until(running, 30, "the second job running")
    assert job["agent_id"] == a["id"]

    async def put(token: str | None, job_id: int = job["id"]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with httpx.AsyncClient(base_url=server.url + "/api/agent/jobs", timeout=30) as http:
            return await http.put(f"/{job_id}/artifacts", params={"path": "x.txt"}, content=b"x", headers=headers)

    assert (await put(None)).status_code == 401  # no header-less way in
    assert (await put(AGENT_TOKEN)).status_code == 401  # the shared token opens nothing here
    assert (await put(api.token)).status_code == 401  # nor a login token
    assert (await put(transfer_token(job["id"], a["id"], secret_key="another-key"))).status_code == 401
    r = await put(transfer_token(first["id"], a["id"]))  # another job's token
    assert r.status_code == 403 and f"for job {first['id']}" in r.json()["detail"]
    r = await put(transfer_token(job["id"], a["id"] + 1))  # bound to another agent
    assert r.status_code == 403 and "not assigned to the token's agent" in r.json()["detail"]
    own = transfer_token(job["id"], a["id"])
    r = await put(own)
    assert r.status_code == 201, r.text  # the job's own token, on its agent: accepted
    r = await put(transfer_token(first["id"], a["id"]), job_id=first["id"])  # its job has ended
    assert r.status_code == 409
    assert (await api.post(f"/flows/{flow['id']}/cancel"))["state"] == "completed"
    assert (await put(own)).status_code == 409  # refused once the job ended
    agent.stop()


async def test_auto_approve_and_the_servers_own_agent(tmp_path: Path, database_url: str) -> None:
    server = Server(
        tmp_path, database_url=database_url, local_agent=True, KRAKEN_AUTO_APPROVE="true", KRAKEN_GROUPS='["lab"]'
    )
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "remote", "--group", "gpu", approve=False)
    try:
        await api.login()
        assert "trusted networks only" in server.proc.wait_line(lambda line: "--auto-approve" in line)
        line = agent.wait_line(lambda line: "connected to" in line)
        assert PENDING.search(line) is None  # approved at once
        (tmp_path / "other").mkdir()
        intruder = start_agent(tmp_path / "other", server.url, "remote", approve=False)
        assert "agent name 'remote' is enrolled already" in refused(intruder)  # still no takeover

        async def both() -> list[dict[str, Any]] | None:
            agents = await api.get("/agents")
            return agents if len(agents) == 2 and all(x["online"] for x in agents) else None

        agents = await api.wait_until(both, 30, "both agents online")
        assert {(x["name"], x["approved"]) for x in agents} == {("local", True), ("remote", True)}
        groups = {x["name"]: (x["groups"], x["requested_groups"]) for x in agents}
        # the operator's KRAKEN_GROUPS for the server's own agent; a remote agent's request stays one
        assert groups == {"local": (["all", "lab"], ["lab"]), "remote": (["all"], ["gpu"])}
        assert not (tmp_path / "server" / "agent" / CREDENTIAL).exists()  # kept in memory
    finally:
        agent.stop()
        await api.close()
        server.stop()


async def test_approve_and_revoke_are_for_administrators_only(server: Server, api: Api) -> None:
    async with httpx.AsyncClient(base_url=server.url + "/api", timeout=30) as anonymous:
        assert (await anonymous.post("/agents/1/approve")).status_code == 401
        assert (await anonymous.post("/agents/1/revoke")).status_code == 401
    assert (await api.http.post("/agents/999/approve")).status_code == 404
    assert (await api.http.post("/agents/999/revoke")).status_code == 404


async def test_revoke_through_another_replica(tmp_path: Path, redis_url: str) -> None:
    """Scale-out: the agent holds its websocket on replica 2; replica 1 revokes it."""
    pg_url = await create_pg_database()
    common = {"database_url": pg_url, "redis_url": redis_url, "KRAKEN_SECRET_KEY": SECRET_KEY}
    s1 = Server(tmp_path, role="server", name="server1", **common)
    s2 = Server(tmp_path, role="server", name="server2", **common)
    controller = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_url], tmp_path, "controller")
    agent = start_agent(tmp_path, s2.url, "far", approve=False)
    api = Api(s1.url)
    try:
        await api.login()
        agent_id = pending_id(agent)
        r = await api.http.post(f"/agents/{agent_id}/approve")  # on the other replica
        assert r.status_code == 200
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", one_job("exec sleep 300"))
        flow = await api.flow(branch_id)

        async def running() -> dict[str, Any] | None:
            job = await only_job(api, flow)
            return job if job["steps"][0]["state"] == "running" else None

        job = await api.wait_until(running, 60, "the job running")
        async with httpx.AsyncClient(base_url=s1.url + "/api/agent/jobs", timeout=30) as http:
            headers = {"Authorization": f"Bearer {transfer_token(job['id'], agent_id)}"}
            r = await http.put(f"/{job['id']}/artifacts", params={"path": "x"}, content=b"x", headers=headers)
            assert r.status_code == 201, r.text  # any replica checks the token
        r = await api.http.post(f"/agents/{agent_id}/revoke")
        assert r.status_code == 200
        assert "revoked by an administrator" in refused(agent)
        job = await only_job(api, flow)
        assert job["result"] == "error" and "revoked" in job["reason"]
    finally:
        agent.stop()
        await api.close()
        controller.stop()
        s1.stop()
        s2.stop()
        await drop_pg_database(pg_url)
