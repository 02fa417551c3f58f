"""Malformed agent messages, sent by a hand-driven websocket client to a real server.

Each is logged with the agent's name, acknowledged (so a real agent would stop re-sending it)
and ends the job it names with ``error``; none drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.api import Api
from tests.support.procs import AGENT_TOKEN, Server, agent_connected, approve_agent, start_agent

pytestmark = pytest.mark.e2e

ONE_JOB = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""
CAPS = {"executors": {"direct": {}}, "systems": ["linux"]}


class RawAgent:
    """Speaks the agent protocol frame by frame; answers the server's pings and pings it back."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = orjson.loads(raw)
            if frame["type"] == "ping":
                await self.send({"type": "pong"})
            else:
                self.frames.put_nowait(frame)

    async def _ping(self) -> None:
        while True:  # the server's watchdog would declare a silent agent lost
            await self.send({"type": "ping"})
            await asyncio.sleep(0.5)

    async def send(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def expect(self, kind: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        """The next frame of type ``kind`` with these fields (pongs and others in between are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await asyncio.wait_for(self.frames.get(), deadline - time.monotonic())
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    async def alive(self) -> None:
        """The connection still works: a ping gets its pong."""
        await self.send({"type": "ping"})
        await self.expect("pong", timeout=10)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.ws.close()


@contextlib.asynccontextmanager
async def raw_agent(server: Server, name: str = "raw") -> AsyncIterator[RawAgent]:
    url = server.url.replace("http://", "ws://") + "/api/agent/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as ws:
        await ws.send(orjson.dumps({"type": "hello", "name": name, "capabilities": CAPS}).decode())
        welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
        assert welcome["type"] == "welcome"
        agent = RawAgent(ws)
        if not welcome["approved"]:  # enrolled with the shared token: approved like an administrator would
            await asyncio.to_thread(approve_agent, server.url, welcome["agent_id"])
        try:
            yield agent
        finally:
            await agent.close()


async def assigned_job(api: Api, agent: RawAgent) -> int:
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", ONE_JOB)
    await api.flow(branch_id)
    assign = await agent.expect("assign")
    return int(assign["job"]["id"])


async def job_of(api: Api, job_id: int) -> dict[str, Any]:
    return await api.get(f"/jobs/{job_id}")  # type: ignore[no-any-return]


async def completed(api: Api, job_id: int) -> dict[str, Any] | None:
    job = await job_of(api, job_id)
    return job if job["state"] == "completed" else None


async def test_step_done_with_unknown_result_ends_the_job_with_error(server: Server, api: Api) -> None:
    async with raw_agent(server) as agent:
        job_id = await assigned_job(api, agent)
        await agent.send(
            {
                "type": "batch",
                "messages": [
                    {"type": "step_started", "job_id": job_id, "seq": 1, "step_index": 0},
                    {"type": "log", "job_id": job_id, "seq": 2, "step_index": 0, "lines": ["before the bad one"]},
                    {"type": "step_done", "job_id": job_id, "seq": 3, "step_index": 0, "result": "so-so"},
                ],
            }
        )
        await agent.expect("ack", job_id=job_id, seq=3)
        await agent.expect("cancel", job_id=job_id)  # the agent is told to stop the job
        line = server.proc.wait_line(lambda ln: "malformed step_done" in ln, timeout=10)
        assert "agent raw" in line and f"job {job_id}" in line and "step_done.result: Input should be" in line
        job = await api.wait_until(lambda: completed(api, job_id), 20, "job ended")
        assert job["result"] == "error"
        assert job["reason"].startswith("the agent sent a malformed step_done message: step_done.result:")
        assert "before the bad one" in await api.log(job_id)  # what came before it was applied
        # re-sent after a reconnect: acknowledged again, applied no second time
        await agent.send(
            {
                "type": "batch",
                "messages": [
                    {"type": "step_done", "job_id": job_id, "seq": 3, "step_index": 0, "result": "so-so"},
                ],
            }
        )
        await agent.expect("ack", job_id=job_id, seq=3)
        await agent.alive()
    assert (await job_of(api, job_id))["reason"] == job["reason"]


async def test_frames_and_messages_nothing_can_be_acknowledged_for_keep_the_connection(
    server: Server, api: Api
) -> None:
    async with raw_agent(server) as agent:
        job_id = await assigned_job(api, agent)
        await agent.send({"type": "batch"})  # no messages
        await agent.alive()
        await agent.send("{not json")
        await agent.send({"type": "dance"})
        await agent.send({"type": "batch", "messages": [{"type": "log", "seq": 1, "lines": ["no job id"]}, 7]})
        await agent.alive()
        for logged in (  # the server's log lines reach this process through a pipe: wait for them
            "agent raw sent a malformed frame, dropped: batch.messages: Field required",
            "agent raw sent a malformed log message without a job id",
        ):
            await asyncio.to_thread(server.proc.wait_line, lambda ln, text=logged: text in ln, 10)
        # the job itself is untouched and still runs normally
        await agent.send(
            {
                "type": "batch",
                "messages": [
                    {"type": "step_started", "job_id": job_id, "seq": 1, "step_index": 0},
                    {"type": "step_done", "job_id": job_id, "seq": 2, "step_index": 0, "result": "passed"},
                    {"type": "job_done", "job_id": job_id, "seq": 3, "result": "passed"},
                ],
            }
        )
        await agent.expect("ack", job_id=job_id, seq=3)
        job = await job_of(api, job_id)
        assert job["state"] == "completed" and job["result"] == "passed", job


async def test_unknown_type_and_missing_seq_end_the_job(server: Server, api: Api) -> None:
    async with raw_agent(server) as agent:
        job_id = await assigned_job(api, agent)
        await agent.send({"type": "batch", "messages": [{"type": "telemetry", "job_id": job_id, "seq": 1}]})
        await agent.expect("ack", job_id=job_id, seq=1)
        job = await api.wait_until(lambda: completed(api, job_id), 20, "job ended")
        assert job["result"] == "error" and "malformed telemetry message" in job["reason"], job
        assert "does not match any of the expected tags" in job["reason"]
        await agent.alive()


async def test_a_message_whose_content_the_server_cannot_use_ends_the_job(server: Server, api: Api) -> None:
    async with raw_agent(server) as agent:
        job_id = await assigned_job(api, agent)
        await agent.send(
            {
                "type": "batch",
                "messages": [
                    {
                        "type": "log",
                        "job_id": job_id,
                        "seq": 1,
                        "step_index": 0,
                        "lines": ["rolled back with the rest"],
                    },
                    {"type": "test_results", "job_id": job_id, "seq": 2, "step_index": 0, "results": [["t", ["?"]]]},
                ],
            }
        )
        await agent.expect("ack", job_id=job_id, seq=2)
        await agent.expect("cancel", job_id=job_id)
        job = await api.wait_until(lambda: completed(api, job_id), 20, "job ended")
        assert job["result"] == "error", job
        assert job["reason"].startswith("the server could not apply the agent's test_results message: TypeError")
        server.proc.wait_line(lambda ln: f"agent raw: job {job_id}: the server could not apply" in ln, timeout=10)
        await agent.alive()


async def test_messages_for_a_job_the_agent_does_not_hold_are_acknowledged_and_dropped(
    server: Server, api: Api
) -> None:
    async with raw_agent(server, "holder") as holder:
        job_id = await assigned_job(api, holder)
        async with raw_agent(server, "other") as other:
            await other.send(
                {
                    "type": "batch",
                    "messages": [
                        {"type": "job_done", "job_id": job_id, "seq": 1, "result": "failed"},
                        {"type": "log", "job_id": 4242, "seq": 1, "lines": ["no such job"]},
                    ],
                }
            )
            # the cancel comes before the acknowledgement (an agent waiting to start the job never starts it)
            await other.expect("cancel", job_id=job_id)
            await other.expect("ack", job_id=job_id, seq=1)
            await other.expect("ack", job_id=4242, seq=1)
            line = server.proc.wait_line(lambda ln: f"for job {job_id}, which it does not hold" in ln, timeout=10)
            assert "agent other sent 1 message(s)" in line
            await other.alive()
        job = await job_of(api, job_id)
        assert job["state"] == "running" and job["agent_name"] == "holder", job  # another agent cannot end it
        await holder.send(
            {
                "type": "batch",
                "messages": [
                    {"type": "job_done", "job_id": job_id, "seq": 1, "result": "passed"},
                ],
            }
        )
        await holder.expect("ack", job_id=job_id, seq=1)
        job = await job_of(api, job_id)
        assert job["state"] == "completed" and job["result"] == "passed", job


async def test_a_job_assigned_while_the_cancelled_one_is_still_ending_runs_next(
    tmp_path: Path, server: Server, api: Api
) -> None:
    """Cancelling a job frees its agent at once on the server, which may assign the next job
    before the agent has finished stopping the first: the agent runs it once the first is gone."""
    agent = start_agent(tmp_path, server.url, "busy")
    try:
        await agent_connected(agent)
        # 30 000 files in the job's work directory: removing it keeps the runner busy after the cancel
        slow_to_clean = "mkdir many && cd many && seq 30000 | xargs touch && echo started && sleep 300"
        code = (
            f"SLOW_TO_CLEAN = {slow_to_clean!r}\n"
            + """
def stage(ctx):
    env = [{"system": "any"}]
    return {"jobs": [
        {"name": "long", "steps": [{"tool": "shell", "cmd": SLOW_TO_CLEAN}], "environments": env},
        {"name": "next", "steps": [{"tool": "shell", "cmd": "echo next ran"}], "environments": env},
    ]}
"""
        )
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", code)
        flow = await api.flow(branch_id)
        run_id = flow["runs"][0]["id"]

        async def running() -> dict[str, Any] | None:
            jobs = [j for j in await api.jobs(run_id) if j["steps"][0]["state"] == "running"]
            return jobs[0] if jobs and "started" in await api.log(jobs[0]["id"]) else None

        first = await api.wait_until(running, 30, "a step running")
        await api.post(f"/jobs/{first['id']}/cancel")
        flow = await api.wait_flow(flow["id"], timeout=30)
        jobs = {j["name"]: j for j in await api.jobs(run_id)}
        assert first["name"] == "long" and jobs["long"]["result"] == "cancelled"  # the first job created goes first
        assert jobs["next"]["result"] == "passed" and "next ran" in await api.log(jobs["next"]["id"])
        assert jobs["next"]["agent_name"] == "busy"
    finally:
        agent.stop()
