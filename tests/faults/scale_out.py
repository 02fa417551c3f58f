"""A scale-out Kraken of real processes for the fault tests: ``kraken server``, controller and an
agent on a fresh PostgreSQL database and the test's own ``redis-server``; workers are the test's
to start (``ScaleOut.worker``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.api import Api
from tests.support.procs import Proc, Server, kraken, start_agent, wait_agent_connected
from tests.support.redis_server import RedisServer


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@dataclass
class ScaleOut:
    tmp_path: Path
    pg_url: str
    redis: RedisServer
    api: Api
    conn: asyncpg.Connection
    branch_id: int = 0
    procs: list[Any] = field(default_factory=list)
    server: Server | None = None
    agent: Proc | None = None

    def worker(self, name: str, lease: float = 15.0) -> Proc:
        args = ["worker", "--database-url", self.pg_url, "--redis-url", self.redis.url]
        proc = kraken(args, self.tmp_path, name, KRAKEN_TASK_LEASE=str(lease))
        self.procs.append(proc)
        proc.wait_line(lambda line: "connected to Redis, serving tasks" in line)
        return proc


@contextlib.asynccontextmanager
async def scale_out(tmp_path: Path, pg_url: str) -> AsyncIterator[ScaleOut]:
    """A server, a controller, an agent, the test's Redis and a database connection; workers are
    the test's to start."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    procs: list[Any] = []
    api: Api | None = None
    conn: asyncpg.Connection | None = None
    try:
        server = Server(tmp_path, role="server", database_url=pg_url, redis_url=redis_server.url)
        procs.append(server)
        ctl = kraken(["controller", "--database-url", pg_url, "--redis-url", redis_server.url], tmp_path, "ctl")
        procs.append(ctl)
        agent = start_agent(tmp_path, server.url, "kw-agent")
        procs.append(agent)
        ctl.wait_line(lambda line: "kraken controller: running" in line)
        wait_agent_connected(agent)
        api = Api(server.url)
        await api.login()
        conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
        env = ScaleOut(tmp_path, pg_url, redis_server, api, conn, procs=procs, server=server, agent=agent)
        _, env.branch_id = await api.project_with_branch()
        yield env
    finally:
        if conn is not None:
            await conn.close()
        if api is not None:
            await api.close()
        for p in reversed(procs):
            p.stop()
        redis_server.stop()


async def analysed(env: ScaleOut, run_id: int, timeout: float) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        summary = await env.api.get(f"/runs/{run_id}/summary")
        return summary if summary["analysis"] == "done" else None

    return await env.api.wait_until(done, timeout, "the run's results analysed")  # type: ignore[no-any-return]
