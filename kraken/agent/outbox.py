"""Reliable delivery of job messages from the agent to the server.

Every message of a job gets the next sequence number of that job and stays in
the outbox until the server acknowledges it; after a reconnect everything not
yet acknowledged is sent again, in order.  The server applies each sequence
number once, so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

Sender = Callable[[dict[str, Any]], Awaitable[None]]


class Outbox:
    def __init__(self) -> None:
        self._seq: dict[int, int] = {}
        self._pending: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self._sender: Sender | None = None
        self._lock = asyncio.Lock()
        self._drained = asyncio.Event()
        self._drained.set()

    def start_job(self, job_id: int, last_seq: int = 0) -> None:
        self._seq[job_id] = max(self._seq.get(job_id, 0), last_seq)

    async def put(self, job_id: int, message: dict[str, Any]) -> None:
        async with self._lock:
            seq = self._seq.get(job_id, 0) + 1
            self._seq[job_id] = seq
            msg = {**message, "job_id": job_id, "seq": seq}
            self._pending[(job_id, seq)] = msg
            self._drained.clear()
            if self._sender is not None:
                try:
                    await self._sender(msg)
                except Exception:
                    self._sender = None  # resent after the reconnect

    def ack(self, job_id: int, seq: int) -> None:
        for key in [k for k in self._pending if k[0] == job_id and k[1] <= seq]:
            del self._pending[key]
        if not self._pending:
            self._drained.set()

    async def connected(self, sender: Sender) -> None:
        """Re-send everything unacknowledged, then send new messages directly."""
        async with self._lock:
            for msg in list(self._pending.values()):
                await sender(msg)
            self._sender = sender

    def disconnected(self) -> None:
        self._sender = None

    def forget_job(self, job_id: int) -> None:
        self._seq.pop(job_id, None)

    def pending_jobs(self) -> list[int]:
        return sorted({job_id for job_id, _ in self._pending})

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drained(self) -> None:
        await self._drained.wait()
