"""The REST API contract: shapes, auth, and bad input refused with line / key path, nothing stored lost."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

GOOD = """
def stage(ctx):
    return {
        "parent": "root",
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo hi"}], "environments": [{"system": "any"}]}],
    }
"""

OVERVIEW = (Path(__file__).parents[1] / "stage" / "data" / "overview_stage.star").read_text()


async def test_auth_required_and_login(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url + "/api") as http:
        assert (await http.get("/health")).json()["status"] == "ok"
        assert (await http.get("/projects")).status_code == 401
        bad = await http.post("/auth/login", json={"username": "admin", "password": "nope"})
        assert bad.status_code == 401
        r = await http.post("/auth/login", json={"username": "admin", "password": "test-admin-pw"})
        assert r.status_code == 200 and r.json()["token_type"] == "bearer" and r.json()["access_token"]
        assert (await http.get("/projects", headers={"Authorization": "Bearer garbage"})).status_code == 401
        spec = (await http.get(server.url + "/openapi.json")).json()
        assert "/api/branches/{branch_id}/flows" in spec["paths"]


async def test_contract_shapes(api: Api) -> None:
    project = await api.post("/projects", {"name": "shapes"}, expect=201)
    assert {"id", "name"} <= project.keys()
    await api.post("/projects", {"name": "shapes"}, expect=409)
    branch = await api.post(
        f"/projects/{project['id']}/branches",
        {"name": "Main", "branch_name": "main", "repo_url": "file:///x"},
        expect=201,
    )
    assert branch["branch_name"] == "main" and branch["repo_url"] == "file:///x"
    stage = await api.stage(branch["id"], "s", GOOD)
    assert stage["schema"]["jobs"][0]["name"] == "j"
    flow = await api.flow(branch["id"])
    assert {"id", "kind", "state", "result", "runs"} <= flow.keys()
    assert {"id", "stage_name", "state", "result"} <= flow["runs"][0].keys()
    jobs = await api.jobs(flow["runs"][0]["id"])
    assert {"id", "name", "state", "result", "reason", "agent_name", "steps"} <= jobs[0].keys()
    assert {"index", "tool", "state", "result"} <= jobs[0]["steps"][0].keys()
    assert jobs[0]["state"] == "queued"  # no agent in this test
    listed = await api.get("/projects")
    assert [p["name"] for p in listed] == ["shapes"]
    token = await api.get("/settings/agent-token")
    assert token["token"] == "test-agent-token-0123456789"
    for missing in ("/flows/999", "/runs/999/jobs", "/jobs/999/log", "/stages/999"):
        assert (await api.http.get(missing)).status_code == 404, missing


async def test_overview_example_is_accepted_unchanged(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "Unit Tests", GOOD)
    stage = await api.stage(branch_id, "Dist", OVERVIEW)
    assert stage["parent"] == "Unit Tests"
    assert stage["triggers"]["cron"] == "1 * * * *" and stage["triggers"]["interval"] == "10m"
    env = stage["schema"]["jobs"][0]["environments"][0]
    assert env == {"system": "ubuntu-18.04", "agents_group": "all", "executor": "direct", "config": "c1"}


@pytest.mark.parametrize(
    ("code", "where"),
    [
        ("def stage(ctx):\n    return {\n        'jobs': [,]\n    }\n", {"line": 3}),
        ("def stage(ctx):\n    x = 1\n    return ctx.args['missing']\n", {"line": 3}),
        ("def not_stage(ctx):\n    return {}\n", {}),
        (
            GOOD.replace('"system": "any"', '"system": "any", "executor": "kvm"'),
            {"path": "jobs[0].environments[0].executor"},
        ),
        (GOOD.replace('"cmd": "echo hi"', '"cmd": 5'), {"path": "jobs[0].steps[0].cmd"}),
        (GOOD.replace('"steps": [{"tool": "shell", "cmd": "echo hi"}]', '"steps": []'), {"path": "jobs[0].steps"}),
        (
            GOOD.replace(
                '"jobs": [{',
                '"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "x"}], '
                '"environments": [{"system": "any"}]}, {',
            ),
            {"path": "jobs[1].name"},
        ),
    ],
)
async def test_bad_schema_refused_with_line_or_path_and_old_code_kept(api: Api, code: str, where: dict) -> None:
    _, branch_id = await api.project_with_branch()
    r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "bad", "schema_code": code})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    for key, value in where.items():
        assert detail[key] == value, detail
    if "line" in where:
        assert f"line {where['line']}" in detail["message"]
    if "path" in where:
        assert detail["message"].startswith(where["path"])
    assert await api.get(f"/branches/{branch_id}/stages") == []
    # the same bad code as an update of a good stage leaves the stored stage as it was
    good = await api.stage(branch_id, "good", GOOD)
    r = await api.http.put(f"/stages/{good['id']}", json={"schema_code": code})
    assert r.status_code == 422
    assert (await api.get(f"/stages/{good['id']}"))["schema_code"] == GOOD


async def test_unknown_parent_and_cycle_refused(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    orphan = GOOD.replace('"parent": "root"', '"parent": "nope"')
    r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "o", "schema_code": orphan})
    assert r.status_code == 422 and r.json()["detail"]["path"] == "parent"
    assert "nope" in r.json()["detail"]["message"]
    a = await api.stage(branch_id, "a", GOOD)
    await api.stage(branch_id, "b", GOOD.replace('"parent": "root"', '"parent": "a"'))
    r = await api.http.put(
        f"/stages/{a['id']}", json={"schema_code": GOOD.replace('"parent": "root"', '"parent": "b"')}
    )
    assert r.status_code == 422 and "cycle" in r.json()["detail"]["message"]
    assert (await api.get(f"/stages/{a['id']}"))["parent"] == "root"


async def test_bad_flow_and_agent_input(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    r = await api.http.post(f"/branches/{branch_id}/flows", json={"kind": "nightly"})
    assert r.status_code == 422 and "kind" in r.text
    r = await api.http.post("/branches/999/flows", json={"kind": "ci"})
    assert r.status_code == 404
    r = await api.http.patch("/agents/999", json={"enabled": False})
    assert r.status_code == 404


async def test_schema_error_at_run_start_ends_run_with_error(api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    code = GOOD.replace(
        '"parent": "root",', '"parent": "root", "parameters": [{"name": "n", "type": "integer", "default": 1}],'
    )
    code = code.replace('"cmd": "echo hi"', '"cmd": "echo #{n}"')
    code = code.replace("return {", 'if ctx.args.get("n") == 7:\n        fail("seven is not allowed")\n    return {')
    await api.stage(branch_id, "s", code)
    flow = await api.flow(branch_id, args={"n": 7})
    assert flow["state"] == "completed" and flow["result"] == "error"
    assert "seven is not allowed" in flow["runs"][0]["reason"]
