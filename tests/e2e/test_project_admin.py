"""Project and branch management through a real server on SQLite and PostgreSQL: edit a project,
archive (hidden, no new flows) and delete projects, branches and stages, sequence counters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

WAITS = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any", "agents_group": "nobody-runs-this"}]}]}
"""
CHILD = """
def stage(ctx):
    return {"parent": "waits", "jobs": [{"name": "c", "steps": [{"tool": "shell", "cmd": "true"}],
                                         "environments": [{"system": "any"}]}]}
"""


def refused(r: httpx.Response, code: int, *words: str) -> Any:
    assert r.status_code == code, r.text
    for w in words:
        assert w in r.text, r.text
    return r.json()


async def test_edit_project_and_sequences(server: Server, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch("alpha")
    await api.post("/projects", {"name": "beta"}, expect=201)
    r = await api.http.patch(f"/projects/{project_id}", json={"name": "gamma", "description": "the third"})
    assert r.status_code == 200 and (r.json()["name"], r.json()["description"]) == ("gamma", "the third")
    assert [b["id"] for b in r.json()["branches"]] == [branch_id]
    assert (await api.get(f"/projects/{project_id}"))["name"] == "gamma"
    refused(await api.http.patch(f"/projects/{project_id}", json={"name": "beta"}), 409, "beta")
    bad = refused(await api.http.patch(f"/projects/{project_id}", json={"owner": "me"}), 422)
    assert bad["detail"][0]["loc"] == ["body", "owner"]
    bad = refused(await api.http.patch(f"/projects/{project_id}", json={"name": None}), 422, "may not be null")
    assert bad["detail"][0]["loc"] == ["body", "name"]
    refused(await api.http.patch(f"/projects/{project_id}", json={"name": ""}), 422, "name")
    refused(await api.http.patch("/projects/999", json={"name": "x"}), 404, "project 999")
    assert (await api.get(f"/projects/{project_id}"))["name"] == "gamma"  # nothing refused was stored

    # sequence counters: not below what was given out
    await api.stage(branch_id, "waits", WAITS)
    flow = await api.flow(branch_id)
    assert flow["seq"] == 1 and flow["runs"][0]["seq"] == 1
    bad = refused(await api.http.patch(f"/branches/{branch_id}/sequences", json={"ci_flow_seq": 0}), 422, "below 1")
    assert bad["detail"][0]["loc"] == ["body", "ci_flow_seq"]
    refused(await api.http.patch(f"/branches/{branch_id}/sequences", json={"run_seq": -1}), 422, "run_seq")
    refused(await api.http.patch(f"/branches/{branch_id}/sequences", json={"flow_seq": 5}), 422, "flow_seq")
    refused(await api.http.patch(f"/branches/{branch_id}/sequences", json={}), 422, "at least one")
    refused(await api.http.patch("/branches/999/sequences", json={"run_seq": 3}), 404)
    r = await api.http.patch(f"/branches/{branch_id}/sequences", json={"ci_flow_seq": 41, "run_seq": 100})
    assert r.status_code == 200, r.text
    assert (r.json()["ci_flow_seq"], r.json()["dev_flow_seq"], r.json()["run_seq"]) == (41, 0, 100)
    flow = await api.flow(branch_id)
    assert flow["seq"] == 42 and flow["runs"][0]["seq"] == 101
    dev = await api.flow(branch_id, "dev")
    assert dev["seq"] == 1
    refused(await api.http.patch(f"/branches/{branch_id}/sequences", json={"run_seq": 50}), 422, "below 102")
    r = await api.http.patch(f"/branches/{branch_id}/sequences", json={"ci_flow_seq": 42, "dev_flow_seq": 1})
    assert r.status_code == 200 and r.json()["ci_flow_seq"] == 42 and r.json()["run_seq"] == 102


async def test_archive_hides_and_stops_new_flows(server: Server, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch("alpha")
    other = await api.post(f"/projects/{project_id}/branches", {"name": "rel", "branch_name": "rel"}, expect=201)
    r = await api.http.post(f"/branches/{branch_id}/archive")
    assert r.status_code == 200 and r.json()["archived"] is True
    [listed] = await api.get("/projects")
    assert [b["id"] for b in listed["branches"]] == [other["id"]]
    [listed] = await api.get("/projects", params={"include_archived": "true"})
    assert [(b["id"], b["archived"]) for b in listed["branches"]] == [(branch_id, True), (other["id"], False)]
    assert [b["id"] for b in (await api.get(f"/projects/{project_id}"))["branches"]] == [other["id"]]
    assert (await api.get(f"/branches/{branch_id}"))["archived"] is True
    refused(await api.http.post(f"/branches/{branch_id}/flows", json={}), 409, "branch 'main' is archived")
    assert (await api.get(f"/branches/{branch_id}/flows"))["total"] == 0
    assert (await api.http.post(f"/branches/{branch_id}/unarchive")).json()["archived"] is False
    assert (await api.flow(branch_id))["seq"] == 1

    r = await api.http.post(f"/projects/{project_id}/archive")
    assert r.status_code == 200 and r.json()["archived"] is True
    assert await api.get("/projects") == []
    assert [p["id"] for p in await api.get("/projects", params={"include_archived": "true"})] == [project_id]
    assert (await api.get(f"/projects/{project_id}"))["archived"] is True
    refused(await api.http.post(f"/branches/{other['id']}/flows", json={}), 409, "project 'alpha' is archived")
    refused(await api.http.post("/projects/999/archive"), 404)
    await api.post(f"/projects/{project_id}/unarchive")
    assert [p["id"] for p in await api.get("/projects")] == [project_id]


async def test_delete_stage_branch_and_project(server: Server, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch("alpha")
    waits = await api.stage(branch_id, "waits", WAITS)
    child = await api.stage(branch_id, "child", CHILD)
    refused(await api.http.delete(f"/stages/{waits['id']}"), 409, "parent of child")
    assert (await api.http.delete(f"/stages/{child['id']}")).status_code == 204
    refused(await api.http.get(f"/stages/{child['id']}"), 404)
    assert [s["name"] for s in await api.get(f"/branches/{branch_id}/stages")] == ["waits"]
    refused(await api.http.delete(f"/stages/{child['id']}"), 404)

    flow = await api.flow(branch_id)  # waits for an agent that never comes
    refused(await api.http.delete(f"/branches/{branch_id}"), 409, "1 flow(s) not completed")
    refused(await api.http.delete(f"/projects/{project_id}"), 409, "1 flow(s) not completed")
    await api.post(f"/flows/{flow['id']}/cancel")
    assert (await api.http.delete(f"/stages/{waits['id']}")).status_code == 204
    assert (await api.get(f"/flows/{flow['id']}"))["runs"][0]["stage_name"] == "waits"  # past runs stay

    second = await api.post(f"/projects/{project_id}/branches", {"name": "rel", "branch_name": "rel"}, expect=201)
    assert (await api.http.delete(f"/branches/{branch_id}")).status_code == 204
    refused(await api.http.get(f"/branches/{branch_id}"), 404)
    refused(await api.http.get(f"/flows/{flow['id']}"), 404)
    refused(await api.http.get(f"/runs/{flow['runs'][0]['id']}"), 404)
    assert [b["id"] for b in (await api.get(f"/projects/{project_id}"))["branches"]] == [second["id"]]

    await api.post(f"/projects/{project_id}/secrets", {"name": "tok", "kind": "simple", "value": "v"}, expect=201)
    assert (await api.http.delete(f"/projects/{project_id}")).status_code == 204
    refused(await api.http.get(f"/projects/{project_id}"), 404)
    refused(await api.http.get(f"/branches/{second['id']}"), 404)
    refused(await api.http.delete(f"/projects/{project_id}"), 404)
    assert await api.get("/projects", params={"include_archived": "true"}) == []
    again = await api.post("/projects", {"name": "alpha"}, expect=201)  # the name is free again
    assert await api.get(f"/projects/{again['id']}/secrets") == []
