"""The event-loop lag probe: a timer that measures how late the loop wakes it."""

from __future__ import annotations

import asyncio
import time

from kraken.observability.metrics import LOOP_LAG, LOOP_LAG_LAST

INTERVAL = 0.5


async def probe(interval: float = INTERVAL) -> None:
    while True:
        t = time.monotonic()
        await asyncio.sleep(interval)
        lag = max(0.0, time.monotonic() - t - interval)
        LOOP_LAG.observe(lag)
        LOOP_LAG_LAST.set(lag)


def start() -> asyncio.Task[None]:
    return asyncio.create_task(probe(), name="metrics:loop-lag")
