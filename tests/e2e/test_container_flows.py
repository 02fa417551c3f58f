"""Flows whose jobs run in Docker and LXD containers, through a real server and a real agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.executors.conftest import IMAGES, require_image
from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {
        "jobs": [{
            "name": "in-container",
            "steps": [
                {"tool": "git", "checkout": "REPO", "destination": "src"},
                {"tool": "shell", "cmd": "cat hello.txt; python3 -c 'import sys; print(sys.version_info[0])'; uname -s",
                 "cwd": "src"},
                {"tool": "pytest", "params": "tests", "cwd": "src"},
            ],
            "environments": [{"system": "IMAGE", "executor": "EXECUTOR", "agents_group": "all"}],
        }],
    }
"""

MISSING = """
def stage(ctx):
    return {"jobs": [{"name": "nope", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "IMAGE", "executor": "EXECUTOR"}]}]}
"""


@pytest.mark.parametrize("executor", ["docker", "lxd"])
async def test_flow_runs_in_a_container(tmp_path: Path, server: Server, api: Api, executor: str) -> None:
    image = IMAGES[executor].python
    require_image(executor, image)
    repo = tmp_path / "repo"
    make_repo(
        repo,
        {
            "hello.txt": "hello from a container\n",
            "tests/test_in_container.py": (
                "import os\n\n"
                "def test_runs_in_the_container():\n    assert os.getcwd().startswith('/kraken/job')\n\n"
                "def test_one_fails():\n    assert 1 + 1 == 3\n"
            ),
        },
    )
    agent = start_agent(tmp_path, server.url, f"ct-{executor}", "--executor", executor)
    wait_agent_connected(agent, timeout=60)
    [a] = await api.get("/agents")
    assert executor in a["capabilities"]["executors"]
    assert a["capabilities"]["executors"][executor]["version"]
    _, branch_id = await api.project_with_branch()
    code = STAGE.replace("REPO", str(repo)).replace("IMAGE", image).replace("EXECUTOR", executor)
    await api.stage(branch_id, "s", code)
    await api.stage(
        branch_id, "missing", MISSING.replace("IMAGE", "kraken-test/no-such-image:1").replace("EXECUTOR", executor)
    )
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=180)
    runs = {r["stage_name"]: r for r in flow["runs"]}
    [job] = await api.jobs(runs["s"]["id"])
    log = await api.log(job["id"])
    assert job["result"] == "passed", log  # a failing test does not fail the step
    assert runs["s"]["result"] == "failed"  # ... but the run: one test failed

    async def analysed() -> dict | None:
        page = await api.get(f"/runs/{runs['s']['id']}/results", params={"limit": 50})
        return page if page["total"] == 2 else None

    results = await api.wait_until(analysed, 60, "results analysed")
    by_name = {r["test"].split("::")[-1]: r["status"] for r in results["items"]}
    assert by_name == {"test_runs_in_the_container": "passed", "test_one_fails": "failed"}, results
    assert {r["system"] for r in results["items"]} == {image}
    assert "hello from a container" in log and "\n3\n" in log and "Linux" in log
    [bad] = await api.jobs(runs["missing"]["id"])
    assert bad["result"] == "error"
    assert "no-such-image" in bad["reason"], bad["reason"]
    assert flow["result"] == "error"
    agent.stop()


HOG = """
def stage(ctx):
    hog = {"tool": "shell", "cmd": "head -c 419430400 /dev/zero | tail >/dev/null"}
    return {"jobs": [{"name": "hog", "steps": [hog], "environments": [{"system": "IMAGE", "executor": "docker"}]}]}
"""


async def test_agent_default_memory_limit_applies_to_container_jobs(tmp_path: Path, server: Server, api: Api) -> None:
    image = IMAGES["docker"].busybox
    require_image("docker", image)
    agent = start_agent(tmp_path, server.url, "limited", "--executor", "docker", "--limit", "memory=48m")
    wait_agent_connected(agent, timeout=60)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "hog", HOG.replace("IMAGE", image))
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=120)
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["result"] == "failed", await api.log(job["id"])  # the OOM killer ended the hog
    assert job["steps"][0]["exit_code"] not in (0, None)
    agent.stop()
