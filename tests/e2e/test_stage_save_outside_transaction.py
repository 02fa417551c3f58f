"""Saving a stage evaluates its code before the write transaction: on SQLite (one writer at a
time) slow stage code must not hold up every other write for its duration (issue #11)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

SLOW = """
def stage(ctx):
    n = 0
    for i in range(150000000):
        n += 1
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""


async def test_a_slow_stage_save_does_not_hold_up_other_writes(tmp_path: Path) -> None:
    server = Server(tmp_path)  # SQLite: a write transaction holds the only write lock
    api = Api(server.url)
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()
        done: dict[str, float] = {}

        async def save_slow_stage() -> int:
            r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "slow", "schema_code": SLOW})
            done["stage"] = time.monotonic()
            return r.status_code

        saving = asyncio.create_task(save_slow_stage())
        await asyncio.sleep(0.2)  # the evaluation is under way (it takes a second or more)
        r = await api.http.post("/projects", json={"name": "written-meanwhile"})
        done["write"] = time.monotonic()
        assert r.status_code == 201, r.text
        status = await saving
        # saved, or refused for its time limit on a slow machine: either way evaluated outside the lock
        assert status in (201, 422)
        assert done["write"] < done["stage"], "the write waited for the stage code"
    finally:
        await api.close()
        server.stop()
