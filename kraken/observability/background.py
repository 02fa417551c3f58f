"""What observability runs in every role's process: the role's name, the error ring, the
event-loop lag probe and (scale-out) the journal's publisher."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kraken.observability import looplag, publisher
from kraken.observability.metrics import set_role


@contextlib.asynccontextmanager
async def running(role: str, redis_url: str | None) -> AsyncIterator[None]:
    set_role(role)
    probe = looplag.start()
    try:
        async with publisher.publishing(redis_url):
            yield
    finally:
        probe.cancel()
        with contextlib.suppress(BaseException):
            await probe
