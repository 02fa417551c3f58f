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

from kraken.protocol import (
    JOB_ENDING_TYPES,
    AnyJobMessage,
    Batch,
    JobAccepted,
    JobDone,
    Log,
    MalformedJobMessage,
    StepDone,
    StepInfo,
    StepStarted,
    message_type,
)

Sender = Callable[[Batch], Awaitable[None]]

# Messages wait this long for company, so that a short step's start, output, end and the
# job's end reach the server as one frame (one transaction there) ...
COALESCE_SECONDS = 0.005
# ... except the end of a job and its acceptance (the job waits for its acknowledgement), which go at once.
FLUSH_AT_ONCE = JOB_ENDING_TYPES | {"job_accepted"}
# Bulk messages (test results: up to 1 MiB each) wait while this many are unacknowledged, so a
# million results never pile up in the agent's memory; progress and log messages never wait.
BULK_WINDOW = 8
SMALL = frozenset(message_type(m) for m in (JobAccepted, StepStarted, Log, StepDone, StepInfo, JobDone))


class Outbox:
    """Messages put close together travel as one ``batch`` frame."""

    def __init__(self) -> None:
        self._seq: dict[int, int] = {}
        self._pending: OrderedDict[tuple[int, int], AnyJobMessage] = OrderedDict()
        self._unsent: list[AnyJobMessage] = []
        self._sender: Sender | None = None
        self._lock = asyncio.Lock()
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self._bulk: set[tuple[int, int]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._ack_waiters: dict[tuple[int, int], asyncio.Event] = {}

    def start_job(self, job_id: int, last_seq: int = 0) -> None:
        self._seq[job_id] = max(self._seq.get(job_id, 0), last_seq)

    async def put(self, job_id: int, message: AnyJobMessage) -> int:
        """Number ``message`` (its ``job_id`` and ``seq`` are set here) and send it soon; returns its ``seq``."""
        bulk = message.type not in SMALL
        while bulk and len(self._bulk) >= BULK_WINDOW:
            await self._room.wait()
        seq = self._seq.get(job_id, 0) + 1
        self._seq[job_id] = seq
        msg = message.model_copy(update={"job_id": job_id, "seq": seq})
        self._pending[(job_id, seq)] = msg
        self._unsent.append(msg)
        if bulk:
            self._bulk.add((job_id, seq))
            if len(self._bulk) >= BULK_WINDOW:
                self._room.clear()
        self._drained.clear()
        if self._sender is None:
            return seq
        if message.type in FLUSH_AT_ONCE:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_fired()
        elif self._timer is None and not self._flush_scheduled:
            self._timer = asyncio.get_running_loop().call_later(COALESCE_SECONDS, self._timer_fired)
        return seq

    def _timer_fired(self) -> None:
        self._timer = None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        async with self._lock:
            self._flush_scheduled = False
            if self._sender is None or not self._unsent:
                return
            batch, self._unsent = self._unsent, []
            try:
                await self._sender(_batch(batch))
            except Exception:
                self._sender = None  # everything unacknowledged is re-sent after the reconnect

    def ack(self, job_id: int, seq: int) -> None:
        for key in [k for k in self._pending if k[0] == job_id and k[1] <= seq]:
            del self._pending[key]
            self._bulk.discard(key)
            waiter = self._ack_waiters.pop(key, None)
            if waiter is not None:
                waiter.set()
        if len(self._bulk) < BULK_WINDOW:
            self._room.set()
        if not self._pending:
            self._drained.set()

    async def connected(self, sender: Sender) -> None:
        """Re-send everything unacknowledged (in order, one frame), then send new messages as they come."""
        async with self._lock:
            self._unsent = []
            if self._pending:
                await sender(_batch(list(self._pending.values())))
            self._sender = sender

    async def acked(self, job_id: int, seq: int) -> None:
        """Return once the server has acknowledged message ``seq`` of ``job_id``."""
        if (job_id, seq) not in self._pending:
            return
        waiter = self._ack_waiters.setdefault((job_id, seq), asyncio.Event())
        await waiter.wait()

    def disconnected(self) -> None:
        self._sender = None

    def pending_jobs(self) -> list[int]:
        return sorted({job_id for job_id, _ in self._pending})

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drained(self) -> None:
        await self._drained.wait()


def _batch(messages: list[AnyJobMessage]) -> Batch:
    # built from messages that are models already: no need to validate them again
    items: list[AnyJobMessage | MalformedJobMessage] = list(messages)
    return Batch.model_construct(type="batch", messages=items)
