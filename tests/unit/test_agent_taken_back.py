"""``kraken agent``: an assignment taken back before it started (``cancel``) and given to the same
agent again at once.  The agent must take it anew: the server already counts the job as this
agent's (its late ``job_accepted`` of the first assignment may even have been applied to the
second one), so an agent that drops it leaves the job "running" and never started until its
timeout (issue #14: ~150 such jobs stalled ``bench/fleet.py``).

The peer is a websocket server that speaks the protocol frame by frame, so that the ``cancel``
and the new ``assign`` reach the agent together, as they do from a busy server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from websockets.asyncio.server import ServerConnection, serve

from kraken.agent.client import Agent
from kraken.protocol import Ack, Assign, Cancel, JobSpec, Welcome

JOB = JobSpec(id=7, name="j", steps=[])


async def job_messages(ws: ServerConnection) -> list[dict[str, object]]:
    """The job messages of the next ``batch`` frame (other frames, pings, skipped)."""
    while True:
        frame = orjson.loads(await ws.recv())
        if frame["type"] == "batch":
            return list(frame["messages"])


async def test_an_assignment_taken_back_and_given_again_is_taken_anew(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    done = asyncio.get_running_loop().create_future()

    async def peer(ws: ServerConnection) -> None:
        await ws.recv()  # hello
        await ws.send(Welcome(agent_id=1, heartbeat_interval=5).model_dump_json())
        await ws.send(Assign(job=JOB).model_dump_json())
        [first] = await job_messages(ws)
        seen.append((str(first["type"]), int(first["seq"])))  # type: ignore[call-overload]
        # not accepted in time: taken back; then queued, assigned to this agent again, and the
        # late acceptance applied to that new assignment: both frames sent in one go
        await ws.send(Cancel(job_id=JOB.id).model_dump_json())
        await ws.send(Assign(job=JOB).model_dump_json())
        await ws.send(Ack(job_id=JOB.id, seq=1).model_dump_json())
        while not done.done():
            for m in await job_messages(ws):
                seen.append((str(m["type"]), int(m["seq"])))  # type: ignore[call-overload]
                await ws.send(Ack(job_id=JOB.id, seq=int(m["seq"])).model_dump_json())  # type: ignore[call-overload]
                if m["type"] == "job_done":
                    done.set_result(m)
        await ws.wait_closed()  # until the agent is stopped

    async with serve(peer, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        agent = Agent(f"http://127.0.0.1:{port}", "token", name="a", data_dir=tmp_path, keep_credential=False)
        running = asyncio.create_task(agent.run_forever())
        try:
            ended = await asyncio.wait_for(done, 60)
        finally:
            running.cancel()
            await asyncio.wait({running}, timeout=10)
    assert ended["result"] == "passed", ended
    # accepted again (numbered after the first acceptance), then run once
    assert seen[:2] == [("job_accepted", 1), ("job_accepted", 2)], seen
    assert [t for t, _ in seen].count("job_done") == 1, seen
