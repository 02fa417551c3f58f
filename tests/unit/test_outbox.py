"""The agent's outbox: sequence numbers, batching, acknowledgement, re-sending after a reconnect."""

from __future__ import annotations

import asyncio

from kraken.agent.outbox import Outbox
from kraken.protocol import Batch, JobDone, Log, Result, StepStarted, TestResults


class Wire:
    def __init__(self, fail_after: int | None = None) -> None:
        self.frames: list[Batch] = []
        self.fail_after = fail_after
        self.sent_one = asyncio.Event()

    async def __call__(self, frame: Batch) -> None:
        if self.fail_after is not None and len(self.frames) >= self.fail_after:
            raise ConnectionError("cut")
        self.frames.append(frame)
        self.sent_one.set()

    def messages(self) -> list[tuple[int, int, str]]:
        return [(m.job_id, m.seq, m.type) for f in self.frames for m in f.messages if m.job_id and m.seq and m.type]


async def test_messages_are_numbered_per_job_and_batched() -> None:
    box, wire = Outbox(), Wire()
    await box.connected(wire)
    box.start_job(7)
    await box.put(7, StepStarted(step_index=0))
    await box.put(7, Log(lines=["a"]))
    await box.put(7, JobDone(result=Result.PASSED))  # flushes at once, together with the two before it
    await wire.sent_one.wait()
    await asyncio.sleep(0)
    assert wire.messages() == [(7, 1, "step_started"), (7, 2, "log"), (7, 3, "job_done")]
    assert len(wire.frames) == 1
    assert box.pending == 3
    box.ack(7, 2)
    assert box.pending == 1 and box.pending_jobs() == [7]
    box.ack(7, 3)
    assert box.pending == 0 and box.pending_jobs() == []


async def test_unacknowledged_messages_are_resent_in_order_after_reconnect() -> None:
    box = Outbox()
    first = Wire()
    await box.connected(first)
    box.start_job(1, last_seq=10)  # a job resumed on this agent continues its numbering
    await box.put(1, Log(lines=["x"]))
    await box.put(1, JobDone(result=Result.PASSED))
    await first.sent_one.wait()
    box.ack(1, 11)
    box.disconnected()
    await box.put(1, Log(lines=["while away"]))  # buffered, not sent
    second = Wire()
    await box.connected(second)
    assert second.messages() == [(1, 12, "job_done"), (1, 13, "log")]


async def test_send_failure_keeps_messages_for_the_next_connection() -> None:
    box = Outbox()
    await box.connected(Wire(fail_after=0))
    await box.put(3, JobDone(result=Result.PASSED))
    await asyncio.sleep(0.01)
    again = Wire()
    await box.connected(again)
    assert again.messages() == [(3, 1, "job_done")]


async def test_bulk_messages_wait_for_acknowledgements_progress_does_not() -> None:
    from kraken.agent.outbox import BULK_WINDOW

    box, wire = Outbox(), Wire()
    await box.connected(wire)
    for _ in range(BULK_WINDOW):
        await box.put(5, TestResults(results=[]))
    blocked = asyncio.create_task(box.put(5, TestResults(results=[])))
    await asyncio.sleep(0.02)
    assert not blocked.done()  # the window is full
    await asyncio.wait_for(box.put(5, Log(lines=["still flows"])), 1)  # never waits
    box.ack(5, 1)
    await asyncio.wait_for(blocked, 1)
    assert box.pending == BULK_WINDOW + 1
