"""The planner inside a real ``kraken serve``: an interval trigger starts flows by itself."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

CODE = """
def stage(ctx):
    return {"triggers": {"interval": "1s"}, "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
            "environments": [{"system": "any"}]}]}
"""


async def test_interval_trigger_in_a_server(server: Server, api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    stage = await api.stage(branch_id, "tick", CODE)

    async def two_flows() -> dict[str, Any] | None:
        flows = await api.get(f"/branches/{branch_id}/flows")
        return flows if flows["total"] >= 2 else None

    flows = await api.wait_until(two_flows, timeout=60, what="two flows started by the interval trigger")
    assert all(f["trigger"]["reason"] == "interval" and f["trigger"]["stage"] == "tick" for f in flows["items"])
    [state] = await api.get(f"/stages/{stage['id']}/triggers")
    assert state["kind"] == "interval" and state["fired"] >= 2 and state["next_at"] is not None
