"""Secrets through a real server and agent: API answers masked, values reach only the job that
refers to them, logs, step fields and messages show ``******``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

VALUE = "s3cr3t-Value-42"

ECHO = """
def stage(ctx):
    return {
        "jobs": [{
            "name": "uses-secret",
            "steps": [
                {"tool": "shell",
                 "cmd": "echo token=#{secrets.token}; v=s3cr3t-; test '#{secrets.token}' = ${v}Value-42"},
                {"tool": "shell",
                 "cmd": "echo user=#{secrets.deploy.user}; v=s3cr3t-; echo literal ${v}Value-42; exit 3"},
            ],
            "environments": [{"system": "any"}],
        }],
    }
""".replace("VALUE", VALUE)

UNKNOWN = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo #{secrets.nope}"}],
                      "environments": [{"system": "any"}]}]}
"""


async def test_secret_masked_in_api_log_and_fields(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    project_id, branch_id = await api.project_with_branch()
    created = await api.post(f"/projects/{project_id}/secrets", {"name": "token", "value": VALUE}, expect=201)
    assert created["value"] == "******" and created["kind"] == "simple"
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END-----"
    ssh = await api.post(
        f"/projects/{project_id}/secrets", {"name": "deploy", "kind": "ssh-key", "user": "git", "key": key}, 201
    )
    assert ssh["user"] == "git" and ssh["key"] == "******" and "value" not in ssh
    await api.post(f"/projects/{project_id}/secrets", {"name": "token", "value": "x"}, expect=409)
    await api.post(f"/projects/{project_id}/secrets", {"name": "bad name", "value": "x"}, expect=422)
    listed = await api.get(f"/projects/{project_id}/secrets")
    assert [(s["name"], s.get("value"), s.get("key")) for s in listed] == [
        ("deploy", None, "******"),
        ("token", "******", None),
    ]
    r = await api.http.get(f"/secrets/{created['id']}")
    assert VALUE not in r.text and r.json()["value"] == "******"

    await api.stage(branch_id, "s", ECHO)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [job] = await api.jobs(flow["runs"][0]["id"])
    # The job got the value (the test in step 0 passed) but nothing stored shows it.
    assert [s["result"] for s in job["steps"]] == ["passed", "failed"]
    log = await api.log(job["id"])
    assert "token=******" in log and "literal ******" in log and "user=git" in log
    assert VALUE not in log
    assert job["steps"][0]["fields"]["cmd"].startswith("echo token=#{secrets.token}")
    raw = (await api.http.get(f"/runs/{flow['runs'][0]['id']}/jobs")).text
    assert VALUE not in raw

    # Updating keeps the value hidden; the next job gets the new value.
    updated = (await api.http.put(f"/secrets/{created['id']}", json={"value": "other-value-7"})).json()
    assert updated["value"] == "******"
    assert (await api.http.delete(f"/secrets/{ssh['id']}")).status_code == 204
    assert [s["name"] for s in await api.get(f"/projects/{project_id}/secrets")] == ["token"]
    agent.stop()


async def test_unknown_secret_errors_the_run(server: Server, api: Api) -> None:
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", UNKNOWN)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [run] = flow["runs"]
    assert run["result"] == "error" and "unknown secret 'nope'" in run["reason"]
