"""A branch's `dev_flows_in_containers`: its dev flows' jobs may not use the direct executor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [
        {"name": "host", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]},
        {"name": "box", "steps": [{"tool": "shell", "cmd": "true"}],
         "environments": [{"system": "kraken-test/busybox", "executor": "docker"}]},
    ]}
"""


async def jobs_of(api: Api, flow_id: int) -> dict[str, dict[str, Any]]:
    async def created() -> dict[str, Any] | None:
        flow = await api.get(f"/flows/{flow_id}")
        return flow if flow["runs"] else None

    flow = await api.wait_until(created, 30, f"flow {flow_id} has a run")
    return {j["name"]: j for j in await api.jobs(flow["runs"][0]["id"])}


async def test_dev_flow_jobs_on_the_direct_executor_are_refused_when_set(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", STAGE)
    url = f"/branches/{branch_id}/security"
    assert await api.get(url) == {"branch_id": branch_id, "dev_flows_in_containers": False}
    r = await api.http.put(url, json={"dev_flows_in_containers": True})
    assert r.status_code == 200 and r.json()["dev_flows_in_containers"] is True
    assert (await api.get(f"/branches/{branch_id}"))["dev_flows_in_containers"] is True
    for bad in ({"dev_flows_in_containers": "maybe"}, {"dev_flows_in_containers": True, "other": 1}, {}):
        r = await api.http.put(url, json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert (await api.http.put("/branches/999999/security", json={"dev_flows_in_containers": True})).status_code == 404

    dev = await api.flow(branch_id, kind="dev")

    async def refused() -> dict[str, dict[str, Any]] | None:
        jobs = await jobs_of(api, dev["id"])
        return jobs if jobs["host"]["state"] == "completed" else None

    jobs = await api.wait_until(refused, 30, "the direct job of the dev flow refused")
    assert jobs["host"]["result"] == "error"
    assert "dev_flows_in_containers" in jobs["host"]["reason"] and "'direct'" in jobs["host"]["reason"]
    assert jobs["box"]["state"] == "queued"  # a container job is allowed (no agent takes it here)

    ci = await jobs_of(api, (await api.flow(branch_id, kind="ci"))["id"])
    assert ci["host"]["state"] == "queued" and ci["host"]["result"] is None  # CI flows are not concerned

    # a rerun of the refused job is refused as well
    rerun = await api.post(f"/jobs/{jobs['host']['id']}/rerun", expect=201)
    job = await api.get(f"/jobs/{rerun['id']}")
    assert job["state"] == "completed" and job["result"] == "error" and "dev_flows_in_containers" in job["reason"]

    # switched off: a dev flow's direct job waits for an agent like any other
    r = await api.http.put(url, json={"dev_flows_in_containers": False})
    assert r.status_code == 200
    later = await jobs_of(api, (await api.flow(branch_id, kind="dev"))["id"])
    assert later["host"]["state"] == "queued"
