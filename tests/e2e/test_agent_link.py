"""The agent's link to its server: reconnecting fast after outages, leaving a half-open link in time.

A real server and agent, with the TCP proxy of tests/support/proxy.py between them playing the
network (and the load balancer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server, agent_connected, start_agent
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
async def proxy(server: Server) -> AsyncIterator[CuttableProxy]:
    p = CuttableProxy(server.port)
    await p.start()
    yield p
    await p.close()


async def test_backoff_starts_over_after_each_welcome(tmp_path: Path, server: Server, proxy: CuttableProxy) -> None:
    """Outage after outage, the agent is back within about the outage's length, not later and later."""
    agent = start_agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "bouncer", api_url=server.url)
    try:
        await agent_connected(agent)
        delays = []
        for _ in range(5):
            start = len(agent.lines)
            proxy.refusing = True  # the server is down: every attempt fails
            proxy.cut()
            await asyncio.sleep(1.5)  # the outage itself
            proxy.refusing = False
            back = time.monotonic()
            await agent_connected(agent, timeout=30, start=start)
            delays.append(time.monotonic() - back)
        # attempts 0.1-0.2 s, 0.2-0.4 s, ... after the cut: the one after the outage comes within 1.6 s
        assert max(delays) < 3.5, f"reconnected {', '.join(f'{d:.1f}' for d in delays)} s after the outages"
    finally:
        agent.stop()


@pytest.fixture
def slow_watchdog_server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path, database_url=database_url, KRAKEN_AGENT_TIMEOUT="8")
    yield srv
    srv.stop()


async def test_half_open_link_shorter_than_the_window_loses_no_job(
    tmp_path: Path, slow_watchdog_server: Server
) -> None:
    """The server goes silent without closing the connection (heartbeats 1 s, agent_timeout 8 s):
    the agent gives up on the link and is back on a new one before the job is declared lost."""
    server = slow_watchdog_server
    proxy = CuttableProxy(server.port)
    await proxy.start()
    api = Api(server.url)
    await api.login()
    agent = start_agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "halfopen", api_url=server.url)
    try:
        await agent_connected(agent)
        n = 150
        script = f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line-$i; sleep 0.05; done"
        code = f"""
def stage(ctx):
    return {{"jobs": [{{"name": "j", "steps": [{{"tool": "shell", "cmd": "{script}"}}],
                        "environments": [{{"system": "any"}}]}}]}}
"""
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", code)
        flow = await api.flow(branch_id)
        run_id = flow["runs"][0]["id"]

        async def some_lines() -> bool:
            [job] = await api.jobs(run_id)
            return bool(job["log_lines"] > 10)

        await api.wait_until(some_lines, 30, "first lines")
        start = len(agent.lines)
        proxy.stall()
        stalled_at = time.monotonic()
        await agent_connected(agent, timeout=30, start=start)
        back_after = time.monotonic() - stalled_at
        flow = await api.wait_flow(flow["id"], timeout=60)
        [job] = await api.jobs(run_id)
        assert flow["result"] == "passed", (job, f"back after {back_after:.1f} s")
        lines = [ln for ln in (await api.log(job["id"])).splitlines() if ln.startswith("line-")]
        assert lines == [f"line-{i}" for i in range(1, n + 1)]
        # 2 silent heartbeats + at most 2 s of closing handshake + the reconnect
        assert back_after < 6, f"back after {back_after:.1f} s"
        assert proxy.connections == 2
    finally:
        agent.stop()
        await api.close()
        await proxy.close()
