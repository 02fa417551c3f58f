"""The agent that ``kraken serve`` runs beside its server: same process, own thread and event loop.

On its own loop, the agent's work (starting steps, reading their output) never waits behind the
server's, nor the server's behind it; it talks to the server over the same websocket as any agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from kraken.agent.client import Agent
from kraken.core.loop import run_async

log = logging.getLogger(__name__)


class LocalAgentThread:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, name="kraken-local-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            run_async(self._run(), use_uvloop=False)
        except Exception:
            log.exception("the local agent stopped")

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self.agent.run_forever())
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _stop(self) -> None:
        await self.agent.stop()  # kills a running job's processes
        if self._task is not None:
            self._task.cancel()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the agent (from another thread) and wait for its thread to end."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        self._thread.join(timeout)
