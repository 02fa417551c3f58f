"""The server's first frame on an agent's websocket is always ``welcome``: the agent takes
anything else for a broken server and gives up the connection. A scale-out replica used to list
the connection for its pings before it had queued the welcome (while it told the other replicas,
through Redis, that the agent is here now), so under load a ping could come first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.conftest import create_pg_database, drop_pg_database
from tests.support.procs import AGENT_TOKEN, Server
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

CONNECTIONS = 25


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_welcome_comes_before_any_ping(tmp_path: Path, pg_url: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    # the replica pings its agents every 2 ms: a ping queued before the welcome would show
    server = Server(
        tmp_path,
        role="server",
        database_url=pg_url,
        redis_url=redis_server.url,
        KRAKEN_HEARTBEAT_INTERVAL="0.002",
        KRAKEN_AUTO_APPROVE="true",
    )
    url = server.url.replace("http://", "ws://") + "/api/agent/ws"
    try:
        firsts = []
        for n in range(CONNECTIONS):
            async with connect(url, additional_headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as ws:
                hello = {"type": "hello", "name": f"wf-{n}", "capabilities": {"executors": {"direct": {}}}}
                await ws.send(orjson.dumps(hello).decode())
                firsts.append(orjson.loads(await ws.recv())["type"])
        assert firsts == ["welcome"] * CONNECTIONS, firsts
    finally:
        server.stop()
        redis_server.stop()
