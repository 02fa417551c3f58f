"""Custom tools with real processes, beyond registration: a custom tool's step sees the branch's
environment variables like every other step, and deleting a tool (one version or all) makes the
stages that use it refused with a clear error at their next save or evaluation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

RUN_PY = """import os
print("envtool %s: MY_VAR=%s OTHER=%s" % ("{version}", os.environ.get("MY_VAR"), os.environ.get("OTHER")))
"""


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, "lifecycle-agent")
    yield proc
    proc.stop()


def _tool_folder(root: Path, name: str, version: str) -> Path:
    folder = root / f"{name}-{version}"
    folder.mkdir(parents=True)
    manifest = {"name": name, "version": version, "entry": "run.py", "fields_schema": {"type": "object"}}
    (folder / "kraken-tool.json").write_text(json.dumps(manifest))
    (folder / "run.py").write_text(RUN_PY.replace("{version}", version))
    return folder


def _stage(steps: str) -> str:
    return f"""
def stage(ctx):
    return {{"parent": "root", "triggers": {{"parent": True}},
             "jobs": [{{"name": "j", "steps": [{steps}], "environments": [{{"system": "any"}}]}}]}}
"""


async def _run(api: Api, branch_id: int) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """The flow's run, its job (None when the run had none) and the job's log."""
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [run] = flow["runs"]
    jobs = await api.jobs(run["id"])
    if not jobs:
        return run, None, ""
    return run, jobs[0], await api.log(jobs[0]["id"])


async def test_branch_variables_reach_every_step_and_custom_tools(tmp_path: Path, agent: Proc, api: Api) -> None:
    await api.post("/tools", {"source": "directory", "path": str(_tool_folder(tmp_path, "envtool", "1"))}, 201)
    _, branch_id = await api.project_with_branch()
    r = await api.http.patch(f"/branches/{branch_id}", json={"env_vars": {"MY_VAR": "from-branch", "OTHER": "o"}})
    assert r.status_code == 200, r.text
    steps = (
        '{"tool": "envtool@1"}, '
        '{"tool": "shell", "cmd": "echo shell: MY_VAR=$MY_VAR OTHER=$OTHER"}, '
        '{"tool": "shell", "cmd": "echo own: MY_VAR=$MY_VAR", "env": {"MY_VAR": "from-step"}}, '
        '{"tool": "shell", "cmd": "echo interpolated: #{env.MY_VAR}"}'
    )
    await api.stage(branch_id, "s", _stage(steps))
    wait_agent_connected(agent)
    run, job, log = await _run(api, branch_id)
    assert job is not None and job["result"] == "passed", (run, job, log)
    assert "envtool 1: MY_VAR=from-branch OTHER=o" in log, log
    assert "shell: MY_VAR=from-branch OTHER=o" in log, log
    assert "own: MY_VAR=from-step" in log, log  # a step's own env wins over the branch's
    assert "interpolated: from-branch" in log, log

    # the branch's variables are read when the job is handed out: a change reaches the next flow
    r = await api.http.patch(f"/branches/{branch_id}", json={"env_vars": {"MY_VAR": "changed"}})
    assert r.status_code == 200, r.text
    run, job, log = await _run(api, branch_id)
    assert job is not None and job["result"] == "passed", (run, job, log)
    assert "envtool 1: MY_VAR=changed OTHER=None" in log and "shell: MY_VAR=changed OTHER=" in log, log


async def test_deleted_tool_is_refused_at_next_save_and_evaluation(tmp_path: Path, agent: Proc, api: Api) -> None:
    for version in ("1", "2"):
        folder = _tool_folder(tmp_path, "deltool", version)
        await api.post("/tools", {"source": "directory", "path": str(folder)}, 201)
    _, branch_id = await api.project_with_branch()
    pinned = await api.stage(branch_id, "pinned", _stage('{"tool": "deltool@2"}'))
    wait_agent_connected(agent)
    run, job, log = await _run(api, branch_id)
    assert job is not None and job["result"] == "passed" and "envtool 2:" in log, (run, job, log)

    r = await api.http.delete("/tools/deltool/2")
    assert r.status_code == 204, r.text
    assert [(t["name"], t["version"]) for t in await api.get("/tools")] == [("deltool", "1")]
    r = await api.http.delete("/tools/deltool/2")
    assert r.status_code == 404 and "deltool@2 is not registered" in r.text, r.text

    # saving the stage again: 422 naming the step's tool
    r = await api.http.put(f"/stages/{pinned['id']}", json={"schema_code": _stage('{"tool": "deltool@2"}')})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["path"] == "jobs[0].steps[0].tool" and "has no version '2'" in detail["message"], detail
    # the stored stage at its next flow: the run is an error that says why, nothing crashes
    run, job, _ = await _run(api, branch_id)
    assert run["result"] == "error" and job is None, run
    assert "deltool" in run["reason"] and "has no version '2'" in run["reason"], run["reason"]

    # without a version, the latest version left is used
    r = await api.http.put(f"/stages/{pinned['id']}", json={"schema_code": _stage('{"tool": "deltool"}')})
    assert r.status_code == 200, r.text
    run, job, log = await _run(api, branch_id)
    assert job is not None and job["result"] == "passed" and "envtool 1:" in log, (run, job, log)
    assert job["steps"][0]["tool"] == "deltool@1"

    r = await api.http.delete("/tools/deltool")  # every version
    assert r.status_code == 204, r.text
    assert await api.get("/tools") == []
    run, job, _ = await _run(api, branch_id)
    assert run["result"] == "error" and "unknown tool 'deltool'" in run["reason"], run
    body = {"name": "t", "schema_code": _stage('{"tool": "deltool"}')}
    r = await api.http.post(f"/branches/{branch_id}/stages", json=body)
    assert r.status_code == 422 and r.json()["detail"]["path"] == "jobs[0].steps[0].tool", r.text
    r = await api.http.delete("/tools/deltool")
    assert r.status_code == 404, r.text
