"""The cache tool through real server and agent processes: miss, save, exact and prefix hits,
per-branch entries, existing keys kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

CODE = """
def stage(ctx):
    return {
        "parameters": [{"name": "key", "type": "string", "default": "deps-v1"}],
        "jobs": [{
            "name": "j",
            "steps": [
                {"tool": "cache", "action": "restore", "key": "#{key}", "keys": ["deps-", "other-"]},
                {"tool": "shell", "script": "\\n".join([
                    "if [ -f deps/lib.txt ]; then echo restored: $(cat deps/lib.txt); exit 0; fi",
                    "mkdir -p deps/sub && echo built-#{key} > deps/lib.txt && echo v > deps/sub/x && echo built",
                ])},
                {"tool": "cache", "action": "save", "key": "#{key}", "paths": ["deps"]},
            ],
            "environments": [{"system": "any"}],
        }],
    }
"""


async def run(api: Api, branch_id: int, key: str) -> tuple[str, list[dict[str, Any]]]:
    flow = await api.wait_flow((await api.flow(branch_id, args={"key": key}))["id"])
    assert flow["result"] == "passed", flow
    [job] = await api.jobs(flow["runs"][0]["id"])
    return await api.log(job["id"]), job["steps"]


async def test_cache_miss_save_hit_prefix_and_branches(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    project_id, branch_id = await api.project_with_branch()
    other = await api.post(f"/projects/{project_id}/branches", {"name": "dev", "branch_name": "dev"}, 201)
    await api.stage(branch_id, "s", CODE)
    await api.stage(other["id"], "s", CODE)
    wait_agent_connected(agent)

    log, steps = await run(api, branch_id, "deps-v1")
    assert "cache miss" in log and "built" in log and "cache: saved deps under key 'deps-v1'" in log
    assert steps[0]["info"] == {"cache": "miss", "key": "deps-v1"} and steps[2]["info"]["cache"] == "saved"

    log, steps = await run(api, branch_id, "deps-v1")
    assert "cache hit: restored key 'deps-v1'" in log and "restored: built-deps-v1" in log
    assert steps[0]["info"] == {"cache": "hit", "key": "deps-v1"} and steps[2]["info"]["cache"] == "exists"

    log, steps = await run(api, branch_id, "deps-v2")  # new key: the newest 'deps-' entry serves
    assert "cache partial hit: restored key 'deps-v1'" in log and "restored: built-deps-v1" in log
    assert steps[0]["info"] == {"cache": "partial", "key": "deps-v1"} and steps[2]["info"]["cache"] == "saved"

    log, steps = await run(api, other["id"], "deps-v1")  # another branch has its own cache
    assert "cache miss" in log and "built" in log

    entries = await api.get(f"/branches/{branch_id}/cache")
    assert sorted(e["key"] for e in entries) == ["deps-v1", "deps-v2"]
    assert all(e["size"] > 0 and len(e["sha256"]) == 64 for e in entries)
    assert (await api.http.delete(f"/cache/{entries[0]['id']}")).status_code == 204
    assert len(await api.get(f"/branches/{branch_id}/cache")) == 1

    # Retention settings of a branch (applied by the controller's janitor, see test_retention).
    r = await api.get(f"/branches/{branch_id}/retention")
    assert (r["keep_flows"], r["keep_days"], r["effective_keep_flows"]) == (None, None, None)
    put = await api.http.put(f"/branches/{branch_id}/retention", json={"keep_flows": 2, "keep_days": 1.5})
    assert put.status_code == 200 and put.json()["effective_keep_flows"] == 2 and put.json()["keep_days"] == 1.5
    bad = await api.http.put(f"/branches/{branch_id}/retention", json={"keep_flows": 0})
    assert bad.status_code == 422
    agent.stop()


async def run_kind(api: Api, branch_id: int, key: str, kind: str) -> tuple[int, str]:
    flow = await api.wait_flow((await api.flow(branch_id, kind=kind, args={"key": key}))["id"])
    assert flow["result"] == "passed", flow
    [job] = await api.jobs(flow["runs"][0]["id"])
    return flow["id"], await api.log(job["id"])


async def test_dev_flows_read_the_branch_cache_but_write_only_their_own(
    tmp_path: Path, server: Server, api: Api
) -> None:
    """A pull request (a dev flow) must not plant a cache entry that CI later restores."""
    agent = start_agent(tmp_path, server.url, "a1")
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", CODE)
    wait_agent_connected(agent)

    _, log = await run_kind(api, branch_id, "deps-v1", "ci")
    assert "cache: saved deps under key 'deps-v1'" in log
    dev_id, log = await run_kind(api, branch_id, "deps-v1", "dev")  # reads the branch's entry
    assert "cache hit: restored key 'deps-v1'" in log

    dev_id, log = await run_kind(api, branch_id, "deps-v9", "dev")  # saves its own (after a partial hit)
    assert "cache partial hit: restored key 'deps-v1'" in log and "cache: saved deps under key 'deps-v9'" in log
    entries = {e["key"]: e for e in await api.get(f"/branches/{branch_id}/cache")}
    assert entries["deps-v9"]["dev_flow_id"] == dev_id and entries["deps-v1"]["dev_flow_id"] == 0

    # another dev flow does not see it, nor does CI: not by its key, not as the newest 'deps-' entry
    dev2_id, log = await run_kind(api, branch_id, "deps-v9", "dev")
    assert "cache partial hit: restored key 'deps-v1'" in log
    _, log = await run_kind(api, branch_id, "deps-v9", "ci")
    assert "cache partial hit: restored key 'deps-v1'" in log and "cache: saved deps under key 'deps-v9'" in log
    entries2 = sorted((e["key"], e["dev_flow_id"]) for e in await api.get(f"/branches/{branch_id}/cache"))
    assert entries2 == sorted([("deps-v1", 0), ("deps-v9", 0), ("deps-v9", dev_id), ("deps-v9", dev2_id)])
    agent.stop()
