"""After-commit effects while Redis is away: never raised to the caller; a frame for an agent is
delivered once Redis is back, an assignment is left to the watchdog."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from kraken.control import effects as effects_module
from kraken.control.effects import Effects
from kraken.core.bus import RedisBus
from kraken.protocol import Cancel
from kraken.workers.queue import InProcessQueue
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e


async def test_a_frame_for_an_agent_is_delivered_once_redis_is_back(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    bus = RedisBus(redis_server.url)
    await bus.start()
    client = aioredis.from_url(redis_server.url)
    try:
        redis_server.stop()
        effects = Effects()
        effects.to_agent(7, Cancel(job_id=42))
        effects.event("job", id=42)
        await effects.apply(bus, InProcessQueue())  # Redis is down: logged, not raised
        assert effects_module._retrying, "the frame for the agent is not being retried"

        redis_server.start()
        pubsub = client.pubsub()
        await pubsub.subscribe("kraken:agent:7")
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is not None:
                assert orjson.loads(msg["data"]) == {"type": "cancel", "job_id": 42}
                break
            assert asyncio.get_running_loop().time() < deadline, "the frame never reached Redis"
        await pubsub.aclose()
    finally:
        for task in list(effects_module._retrying):
            task.cancel()
        await client.aclose()
        await bus.close()
        redis_server.stop()
