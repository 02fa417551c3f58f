"""A client that retries a trigger (it lost the answer) sends the same `Idempotency-Key`: the
flow, the manual run or the job rerun is created once, and the retry gets what the first created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any"}]}]}
"""
MANUAL = """
def stage(ctx):
    return {"parent": "root", "triggers": {"manual": True},
            "jobs": [{"name": "m", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any"}]}]}
"""


async def post(api: Api, path: str, body: Any, key: str | None) -> tuple[int, Any]:
    headers = {"Idempotency-Key": key} if key is not None else {}
    r = await api.http.post(path, json=body, headers=headers)
    return r.status_code, r.json()


async def test_the_same_key_creates_once(tmp_path: Path, server: Server, api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "root", STAGE)
    await api.stage(branch_id, "m", MANUAL)

    # flows
    first = await post(api, f"/branches/{branch_id}/flows", {"kind": "ci"}, "retry-1")
    again = await post(api, f"/branches/{branch_id}/flows", {"kind": "ci"}, "retry-1")
    assert first[0] == again[0] == 201, (first, again)
    assert again[1]["id"] == first[1]["id"]
    assert (await api.get(f"/branches/{branch_id}/flows"))["total"] == 1
    other = await post(api, f"/branches/{branch_id}/flows", {"kind": "ci"}, "retry-2")
    assert other[0] == 201 and other[1]["id"] != first[1]["id"]
    assert (await api.get(f"/branches/{branch_id}/flows"))["total"] == 2

    # a key is for one request; a malformed key is refused, naming the header
    status, body = await post(api, f"/branches/{branch_id}/flows", {"kind": "dev"}, "retry-1")
    assert status == 201, body  # another body on the same route: the key still names the first flow
    assert body["id"] == first[1]["id"]
    status, body = await post(api, f"/flows/{first[1]['id']}/runs", {"stage_name": "m"}, "retry-1")
    assert status == 422 and "Idempotency-Key" in str(body), body
    status, body = await post(api, f"/branches/{branch_id}/flows", {"kind": "ci"}, "has space")
    assert status == 422 and "idempotency-key" in str(body).lower(), body
    assert (await api.get(f"/branches/{branch_id}/flows"))["total"] == 2

    agent = start_agent(tmp_path, server.url, "a1")
    try:
        wait_agent_connected(agent)
        flow = await api.wait_flow(first[1]["id"], timeout=60)
        assert flow["result"] == "passed", flow

        # manual runs: without the key the retry would be a 409 (the stage ran already)
        run = await post(api, f"/flows/{flow['id']}/runs", {"stage_name": "m"}, "manual-1")
        run_again = await post(api, f"/flows/{flow['id']}/runs", {"stage_name": "m"}, "manual-1")
        assert run[0] == run_again[0] == 201, (run, run_again)
        assert run_again[1]["id"] == run[1]["id"]
        assert (await post(api, f"/flows/{flow['id']}/runs", {"stage_name": "m"}, None))[0] == 409

        # job reruns
        [job] = await api.jobs(flow["runs"][0]["id"])
        rerun = await post(api, f"/jobs/{job['id']}/rerun", None, "rerun-1")
        rerun_again = await post(api, f"/jobs/{job['id']}/rerun", None, "rerun-1")
        assert rerun[0] == rerun_again[0] == 201, (rerun, rerun_again)
        assert rerun_again[1]["id"] == rerun[1]["id"] != job["id"]
        jobs = await api.get(f"/runs/{flow['runs'][0]['id']}/jobs", params={"include_covered": True})
        assert len(jobs) == 2, jobs
    finally:
        agent.stop()
