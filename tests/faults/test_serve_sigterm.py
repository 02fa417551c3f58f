"""SIGTERM to `kraken serve` while its own agent runs a job: the job ends `cancelled` with the
reason "server shutting down" before the server exits (it used to stay `running` until the next
start settled it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo started; sleep 120"}],
                      "environments": [{"system": "any"}]}]}
"""


async def test_sigterm_ends_the_local_agents_job_before_the_exit(tmp_path: Path, database_url: str) -> None:
    server = Server(tmp_path, database_url=database_url, local_agent=True)
    api = Api(server.url)
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)
        flow = await api.flow(branch_id)

        async def started() -> int | None:
            got = await api.get(f"/flows/{flow['id']}")
            if not got["runs"]:
                return None
            jobs = await api.jobs(got["runs"][0]["id"])
            if not jobs or jobs[0]["state"] != "running":
                return None
            return jobs[0]["id"] if "started" in await api.log(jobs[0]["id"]) else None

        job_id = await api.wait_until(started, 60, "the job's step started")
        await api.close()
        os.kill(server.proc.proc.pid, signal.SIGTERM)
        server.proc.proc.wait(30)
    finally:
        await api.close()
        server.stop()

    # read what the server left behind, with no server running
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            state, result, reason = (
                await conn.execute(sa.text("SELECT state, result, reason FROM job WHERE id = :id"), {"id": job_id})
            ).one()
            flow_state = (
                await conn.execute(sa.text("SELECT state FROM flow WHERE id = :id"), {"id": flow["id"]})
            ).scalar_one()
    finally:
        await engine.dispose()
    assert (state, result) == ("completed", "cancelled"), (state, result, reason)
    assert reason == "server shutting down", reason
    assert flow_state == "completed"
