"""Faults: wrong agent token, timeouts, lost agents, reconnects, cancels, jobs no agent can take."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent, wait_agent_connected
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.e2e


def one_job(steps: str, env: str = '{"system": "any"}', timeout: str = "") -> str:
    extra = f'"timeout": {timeout},' if timeout else ""
    return f"""
def stage(ctx):
    return {{"jobs": [{{"name": "j", {extra} "steps": [{steps}], "environments": [{env}]}}]}}
"""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


async def test_agent_with_wrong_token_is_refused_and_gets_no_job(tmp_path: Path, server: Server, api: Api) -> None:
    bad = start_agent(tmp_path, server.url, "intruder", token="wrong-token")
    bad.proc.wait(30)
    assert bad.proc.returncode == 2
    assert "refused the agent token" in bad.output
    server.proc.wait_line(lambda line: "refused: wrong or missing agent token" in line, timeout=10)
    assert await api.get("/agents") == []
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job('{"tool": "shell", "cmd": "true"}'))
    flow = await api.flow(branch_id)
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["state"] == "queued" and job["agent_name"] is None


async def test_step_timeout_kills_the_process_group(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    pidfile = tmp_path / "pids"
    cmd = f"sleep 300 & echo $! > {pidfile}; echo $$ >> {pidfile}; echo started; wait"
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job(f'{{"tool": "shell", "cmd": "{cmd}", "timeout": 1}}'))
    t0 = time.monotonic()
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=30)
    assert time.monotonic() - t0 < 15
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["result"] == "timeout" and flow["result"] == "timeout"
    assert job["steps"][0]["result"] == "timeout" and "timed out after 1s" in job["steps"][0]["message"]
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    assert not any(pid_alive(p) for p in pids), "the step's background child survived the timeout"
    assert "started" in await api.log(job["id"])
    agent.stop()


async def test_job_timeout_from_schema(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job('{"tool": "shell", "cmd": "sleep 300"}', timeout="2"))
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=30)
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["result"] == "timeout" and "job timed out after 2" in job["reason"]
    agent.stop()


async def test_agent_killed_mid_job_ends_job_with_error(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "victim")
    wait_agent_connected(agent)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job('{"tool": "shell", "cmd": "echo working; sleep 300"}'))
    flow = await api.flow(branch_id)
    run_id = flow["runs"][0]["id"]

    async def running() -> bool:
        [job] = await api.jobs(run_id)
        return job["steps"][0]["state"] == "running"

    await api.wait_until(running, 30, "step running")
    agent.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    flow = await api.wait_flow(flow["id"], timeout=30)
    waited = time.monotonic() - killed_at
    [job] = await api.jobs(run_id)
    assert job["result"] == "error" and job["reason"].startswith("agent lost"), job
    assert flow["result"] == "error" and flow["state"] == "completed"
    # KRAKEN_AGENT_TIMEOUT=4 s, watchdog every 0.5 s
    assert waited < 4 + 3, f"took {waited:.1f}s to notice the lost agent"
    [a] = await api.get("/agents")
    assert a["online"] is False and a["current_job_id"] is None


async def test_agent_reconnecting_mid_step_loses_and_doubles_no_line(tmp_path: Path, server: Server, api: Api) -> None:
    proxy = CuttableProxy(server.port)
    await proxy.start()
    agent = start_agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "flaky", api_url=server.url)
    await agent_connected(agent)
    n = 300
    script = f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line-$i; sleep 0.01; done"
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job(f'{{"tool": "shell", "cmd": "{script}"}}'))
    flow = await api.flow(branch_id)
    run_id = flow["runs"][0]["id"]

    async def some_lines() -> bool:
        [job] = await api.jobs(run_id)
        return bool(job["log_lines"] > 20)

    await api.wait_until(some_lines, 30, "first lines")
    cut_at = len(agent.lines)
    proxy.cut()
    await agent_connected(agent, start=cut_at)  # it reconnected while the step kept running
    assert proxy.connections >= 2
    flow = await api.wait_flow(flow["id"], timeout=60)
    assert flow["result"] == "passed"
    [job] = await api.jobs(run_id)
    lines = [ln for ln in (await api.log(job["id"])).splitlines() if ln.startswith("line-")]
    assert lines == [f"line-{i}" for i in range(1, n + 1)]
    await proxy.close()
    agent.stop()


async def test_cancel_flow_kills_the_running_step(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    pidfile = tmp_path / "pid"
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job(f'{{"tool": "shell", "cmd": "echo $$ > {pidfile}; exec sleep 300"}}'))
    flow = await api.flow(branch_id)
    run_id = flow["runs"][0]["id"]

    async def running() -> bool:
        [job] = await api.jobs(run_id)
        return job["steps"][0]["state"] == "running" and pidfile.exists() and pidfile.read_text().strip() != ""

    await api.wait_until(running, 30, "step running")
    pid = int(pidfile.read_text())
    flow = await api.post(f"/flows/{flow['id']}/cancel")
    assert flow["state"] == "completed" and flow["result"] == "cancelled"
    [job] = await api.jobs(run_id)
    assert job["result"] == "cancelled"
    for _ in range(100):  # the agent gets the cancel over its socket; give it up to 10 s
        if not pid_alive(pid):
            break
        await asyncio.sleep(0.1)
    assert not pid_alive(pid)

    async def agent_idle() -> bool:
        [a] = await api.get("/agents")
        return a["current_job_id"] is None

    await api.wait_until(agent_idle, 10, "agent idle")
    agent.stop()


async def test_job_no_agent_can_take_says_why(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1", "--executor", "direct")
    wait_agent_connected(agent)
    _, branch_id = await api.project_with_branch()
    await api.stage(
        branch_id,
        "s",
        one_job('{"tool": "shell", "cmd": "true"}', env='{"system": "x", "executor": "docker", "agents_group": "gpu"}'),
    )
    flow = await api.flow(branch_id)
    run_id = flow["runs"][0]["id"]

    async def reason() -> str | None:
        [job] = await api.jobs(run_id)
        return job["reason"]  # type: ignore[no-any-return]

    why = await api.wait_until(reason, 20, "a reason")
    assert re.search(r"no enabled agent in group 'gpu' has executor 'docker'", why), why
    # put the agent into group gpu: still no docker executor
    [a] = await api.get("/agents")
    r = await api.http.patch(f"/agents/{a['id']}", json={"groups": ["gpu"]})
    assert r.status_code == 200 and r.json()["groups"] == ["all", "gpu"]
    [job] = await api.jobs(run_id)
    assert job["state"] == "queued"
    agent.stop()


async def test_disabled_agent_gets_no_job_until_enabled(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    [a] = await api.get("/agents")
    r = await api.http.patch(f"/agents/{a['id']}", json={"enabled": False})
    assert r.json()["enabled"] is False
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", one_job('{"tool": "shell", "cmd": "echo ok"}'))
    flow = await api.flow(branch_id)

    async def has_reason() -> bool:
        [job] = await api.jobs(flow["runs"][0]["id"])
        return bool(job["reason"])

    await api.wait_until(has_reason, 20, "a reason")
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["state"] == "queued"
    await api.http.patch(f"/agents/{a['id']}", json={"enabled": True})
    flow = await api.wait_flow(flow["id"])
    assert flow["result"] == "passed"
    agent.stop()
