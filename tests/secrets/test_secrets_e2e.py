"""Secrets through a real server and agent: API answers masked, values reach only the job that
refers to them, logs, step fields and messages show ``******``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
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


REPORT = (
    '<testsuite><testcase classname="c" name="test_#{secrets.token}" time="1.5">'
    '<properties><property name="p_#{secrets.token}" value="2"/></properties>'
    '<failure message="got #{secrets.token}">expected nothing, got #{secrets.token}</failure></testcase>'
    '<testcase classname="c" name="test_ok"/></testsuite>'
)
RUFF_JSON = (
    '[{"filename": "src/#{secrets.token}.py", "location": {"row": 3, "column": 1}, "code": "S105",'
    ' "message": "hard-coded password #{secrets.token}"}]'
)
RESULTS = """
def stage(ctx):
    return {
        "jobs": [{
            "name": "results",
            "steps": [
                {"tool": "shell",
                 "cmd": "printf '%s' 'REPORT' > report.xml; printf '%s' 'RUFF' > ruff.json; " +
                        "echo 'cat ruff.json' > ruff.sh"},
                {"tool": "junit_collect", "file_glob": "report.xml"},
                {"tool": "ruff", "exe": "sh ruff.sh"},  # a linter that reports the secret
            ],
            "environments": [{"system": "any"}],
        }],
    }
""".replace("REPORT", REPORT.replace('"', '\\"')).replace("RUFF", RUFF_JSON.replace('"', '\\"'))


async def test_secret_masked_in_test_results_and_issues(tmp_path: Path, server: Server, api: Api) -> None:
    """A failing test's name, message and values, and a linter's finding, may print a secret:
    stored and answered, it is ``******`` like in the log."""
    agent = start_agent(tmp_path, server.url, "a1")
    project_id, branch_id = await api.project_with_branch()
    await api.post(f"/projects/{project_id}/secrets", {"name": "token", "value": VALUE}, expect=201)
    await api.stage(branch_id, "s", RESULTS)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    run_id = flow["runs"][0]["id"]
    [job] = await api.jobs(run_id)
    assert [s["result"] for s in job["steps"]][:2] == ["passed", "passed"], job["steps"]

    async def analysed() -> Any:
        results = await api.get(f"/runs/{run_id}/results")
        return results if results["total"] == 2 else None

    results = await api.wait_until(analysed, what="results analysed")
    issues = await api.get(f"/runs/{run_id}/issues")
    history = await api.get(f"/test-cases/{results['items'][0]['test_case_id']}/history")
    for answer in (results, issues, history):
        assert VALUE not in orjson.dumps(answer).decode(), answer
    failed = next(r for r in results["items"] if r["status"] == "failed")
    assert "******" in failed["test"] and "******" in failed["message"], failed
    assert list(failed["values"]) == ["p_******"], failed
    assert [i["message"] for i in issues["items"]] == ["hard-coded password ******"]
    assert issues["items"][0]["path"] == "src/******.py"
    agent.stop()
