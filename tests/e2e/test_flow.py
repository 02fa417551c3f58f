"""A real server, real agent processes, a two-stage flow with a git checkout and shell steps."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

BUILD = """
def stage(ctx):
    return {
        "parent": "root",
        "parameters": [{"name": "word", "type": "string", "default": "apple"}],
        "jobs": [{
            "name": "build",
            "steps": [
                {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
                {"tool": "shell", "cmd": "cat hello.txt && echo word=#{word} && echo kind=%s" % ctx.flow_kind,
                 "cwd": "src"},
            ],
            "environments": [{"system": "any", "executor_group": "all", "executor": "local"}],
        }],
    }
"""

TEST = """
def stage(ctx):
    return {
        "parent": "build",
        "configs": [{"name": "a", "n": "1"}, {"name": "b", "n": "2"}],
        "jobs": [{
            "name": "test",
            "steps": [
                {"tool": "git", "checkout": "REPO"},
                {"tool": "shell", "script": "set -e\\ncd repo\\nsh check.sh #{config.n}\\n"},
            ],
            "environments": [{"system": "any", "agents_group": "all"}],
        }],
    }
"""


async def test_two_stage_flow_runs_on_two_agents(tmp_path: Path, server: Server, api: Api) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, {"hello.txt": "hello from the repo\n", "check.sh": 'echo "check $1 passed"\n'})
    agents = [start_agent(tmp_path, server.url, f"agent{i}") for i in (1, 2)]
    for a in agents:
        wait_agent_connected(a)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "build", BUILD.replace("REPO", str(repo)))
    await api.stage(branch_id, "test", TEST.replace("REPO", f"file://{repo}"))

    flow = await api.flow(branch_id, args={"word": "pear"})
    assert flow["kind"] == "ci" and flow["seq"] == 1 and flow["state"] in ("queued", "running")
    flow = await api.wait_flow(flow["id"])

    assert flow["result"] == "passed", flow
    assert [r["stage_name"] for r in flow["runs"]] == ["build", "test"]
    assert all(r["state"] == "completed" and r["result"] == "passed" for r in flow["runs"])
    build_jobs = await api.jobs(flow["runs"][0]["id"])
    test_jobs = await api.jobs(flow["runs"][1]["id"])
    assert len(build_jobs) == 1 and len(test_jobs) == 2
    for job in build_jobs + test_jobs:
        assert job["state"] == "completed" and job["result"] == "passed" and job["agent_name"] in ("agent1", "agent2")
        assert [s["state"] for s in job["steps"]] == ["completed", "completed"]
        assert [s["result"] for s in job["steps"]] == ["passed", "passed"]
    build_log = await api.log(build_jobs[0]["id"])
    assert "hello from the repo" in build_log
    assert "word=pear" in build_log and "kind=ci" in build_log
    assert f"checked out {commit}" in build_log
    assert build_jobs[0]["steps"][0]["info"]["commit"] == commit
    by_config = {j["config_name"]: await api.log(j["id"]) for j in test_jobs}
    assert sorted(by_config) == ["a", "b"]
    assert "check 1 passed" in by_config["a"] and "check 2" not in by_config["a"]
    assert "check 2 passed" in by_config["b"]

    flows = await api.get(f"/branches/{branch_id}/flows")
    assert flows["total"] == 1 and flows["items"][0]["id"] == flow["id"]
    second = await api.flow(branch_id, kind="dev")
    second = await api.wait_flow(second["id"])
    assert second["seq"] == 1 and second["kind"] == "dev" and second["result"] == "passed"
    assert "kind=dev" in await api.log((await api.jobs(second["runs"][0]["id"]))[0]["id"])
    listed = await api.get(f"/branches/{branch_id}/flows")
    assert [f["id"] for f in listed["items"]] == [second["id"], flow["id"]]  # newest first
    for a in agents:
        a.stop()


FAILING = """
def stage(ctx):
    return {
        "jobs": [{
            "name": "fails",
            "steps": [{"tool": "shell", "cmd": "echo before; exit 3"}, {"tool": "shell", "cmd": "echo never"}],
            "environments": [{"system": "any"}],
        }],
    }
"""

CHILD = """
def stage(ctx):
    return {"parent": "parent", "jobs": [{"name": "c", "steps": [{"tool": "shell", "cmd": "true"}],
            "environments": [{"system": "any"}]}]}
"""


async def test_failed_step_fails_job_run_and_flow_and_rerun_replaces_job(
    tmp_path: Path, server: Server, api: Api
) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "parent", FAILING)
    await api.stage(branch_id, "child", CHILD)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    assert flow["result"] == "failed"
    # a step that did not pass stops the stages after it, and the flow says why
    assert [(r["stage_name"], r["result"]) for r in flow["runs"]] == [("parent", "failed")]
    [skipped] = flow["skipped_stages"]
    assert skipped["stage_name"] == "child" and skipped["run_id"] == flow["runs"][0]["id"]
    assert "'fails' failed" in skipped["reason"]
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["result"] == "failed" and "exited with code 3" in job["reason"]
    assert [s["result"] for s in job["steps"]] == ["failed", "skipped"]
    assert [s["exit_code"] for s in job["steps"]] == [3, None]
    log = await api.log(job["id"])
    assert "before" in log and "never" not in log

    new = await api.post(f"/jobs/{job['id']}/rerun", expect=201)
    # a new job; the answer reads it after the commit, when an idle agent may have taken it already
    assert new["id"] != job["id"] and new["rerun_of"] == job["id"]
    assert new["state"] in ("queued", "running", "completed"), new
    flow = await api.wait_flow(flow["id"])
    [current] = await api.jobs(flow["runs"][0]["id"])
    assert current["id"] == new["id"] and current["result"] == "failed"
    all_jobs = await api.get(f"/runs/{flow['runs'][0]['id']}/jobs", params={"include_covered": True})
    assert [(j["id"], j["covered"]) for j in all_jobs] == [(job["id"], True), (new["id"], False)]
    agent.stop()


STREAMER = """
def stage(ctx):
    return {"jobs": [{"name": "s", "steps": [{"tool": "shell",
        "cmd": "for i in $(seq 1 40); do echo tick-$i; sleep 0.05; done"}], "environments": [{"system": "any"}]}]}
"""


async def test_log_stream_delivers_lines_live_then_ends(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    wait_agent_connected(agent)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", STREAMER)
    flow = await api.flow(branch_id)
    [job] = await api.jobs(flow["runs"][0]["id"])
    got: list[str] = []
    events: list[str] = []
    job_state_at_first_line = None
    async with api.http.stream("GET", f"/jobs/{job['id']}/log/stream") as resp:
        event = ""
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                events.append(event)
            elif line.startswith("data: ") and event == "lines":
                data = orjson.loads(line[6:])
                assert data["first_line"] == len(got)  # contiguous, nothing doubled
                assert data["step_index"] == 0
                got += data["lines"]
                if job_state_at_first_line is None:
                    job_state_at_first_line = (await api.get(f"/jobs/{job['id']}"))["state"]
            elif line.startswith("data: ") and event == "end":
                break
    ticks = [ln for ln in got if ln.startswith("tick-")]
    assert ticks == [f"tick-{i}" for i in range(1, 41)]
    assert job_state_at_first_line in ("queued", "running")  # lines arrived while the job ran
    assert events.count("lines") > 1 and events[-1] == "end"
    # a late reader gets the stored lines and the end at once
    async with api.http.stream("GET", f"/jobs/{job['id']}/log/stream", params={"after": 9}) as resp:
        body = await resp.aread()
    assert b'"first_line":10' in body and b"event: end" in body
    agent.stop()
