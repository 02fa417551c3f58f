"""Every flow records the repository state it ran on, with a real server, real agent processes and
real git repositories: from the first git checkout, from a webhook push (with the new commits);
and the flaky rule ``same_commit`` across flows: a test that passed in one flow and failed in
another on the same commit is flaky, on different commits it is not."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kraken.core.db import Database
from tests.support.api import Api
from tests.support.gitrepo import commit, make_repo
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

SCRIPT = """x="" y=""
case "#{fail}" in *x*) x='<failure message="boom">boom</failure>';; esac
case "#{fail}" in *y*) y='<failure message="boom">boom</failure>';; esac
printf '<testsuite name="s"><testcase classname="t" name="test_x">%s</testcase>\
<testcase classname="t" name="test_y">%s</testcase></testsuite>' "$x" "$y" > report.xml
"""

TESTS = """
def stage(ctx):
    return {
        "parameters": [{"name": "sha", "type": "string", "default": ""},
                       {"name": "fail", "type": "string", "default": ""}],
        "jobs": [{"name": "t", "steps": [
            {"tool": "git", "checkout": "REPO", "branch": "main", "commit": "#{sha}", "destination": "src"},
            {"tool": "shell", "script": SCRIPT, "cwd": "src"},
            {"tool": "junit_collect", "file_glob": "src/report.xml"},
        ], "environments": [{"system": "any", "agents_group": "all"}]}],
    }
"""

HOOKED = """
def stage(ctx):
    return {"triggers": {"webhook": True},
            "jobs": [{"name": "b", "steps": [{"tool": "git", "checkout": "REPO", "branch": "main"}],
                      "environments": [{"system": "any"}]}]}
"""
SECRET = "webhook-secret-123"


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, "agent1")
    try:
        wait_agent_connected(proc)
        yield proc
    finally:
        proc.stop()


async def results(api: Api, flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    run_id = flow["runs"][0]["id"]

    async def analysed() -> dict[str, dict[str, Any]] | None:
        page = await api.get(f"/runs/{run_id}/results")
        short = {r["test"].replace("::", ".").rsplit(".", 1)[-1]: r for r in page["items"]}
        return short if page["total"] == 2 else None

    return await api.wait_until(analysed, 60, f"results of run {run_id}")  # type: ignore[no-any-return]


async def test_commits_from_git_steps_and_flaky_across_flows(
    tmp_path: Path, server: Server, api: Api, agent: Proc, database_url: str
) -> None:
    repo = tmp_path / "repo"
    c1 = make_repo(repo, {"a.txt": "1"})
    c2 = commit(repo, {"a.txt": "2"}, "second")
    project_id, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "tests", TESTS.replace("REPO", str(repo)).replace("SCRIPT", repr(SCRIPT)))

    async def flow(sha: str, fail: str) -> dict[str, Any]:
        started = await api.flow(branch_id, args={"sha": sha, "fail": fail})
        assert started["commits"] == []  # nothing checked out yet
        done = await api.wait_flow(started["id"])
        assert done["runs"][0]["result"] == ("failed" if fail else "passed"), done
        return done

    f1 = await flow(c1, "")
    assert f1["commits"] == [
        {"repo_url": str(repo), "branch": "main", "commit": c1, "source": "git", "new_commits": []}
    ]
    listed = await api.get(f"/branches/{branch_id}/flows")
    assert listed["items"][0]["commits"] == f1["commits"]
    r1 = await results(api, f1)
    assert r1["test_x"]["status"] == "passed" and not r1["test_x"]["flaky"]

    # the same commit again: test_x fails now, so it is flaky, in both flows
    f2 = await flow(c1, "x")
    assert f2["commits"][0]["commit"] == c1
    r2 = await results(api, f2)
    assert r2["test_x"]["status"] == "failed" and r2["test_x"]["flaky"] is True
    assert r2["test_x"]["flaky_rules"] == ["same_commit"]
    assert r2["test_y"]["status"] == "passed" and r2["test_y"]["flaky"] is False
    r1 = await results(api, f1)
    assert r1["test_x"]["flaky"] is True and r1["test_x"]["flaky_rules"] == ["same_commit"]
    assert r1["test_y"]["flaky"] is False

    # other commits: passing on c2 after failing on c1 is a fix, failing on c3 after passing on c2 a
    # regression; neither is flaky
    f3 = await flow(c2, "")
    assert f3["commits"][0]["commit"] == c2
    r3 = await results(api, f3)
    assert r3["test_x"]["change"] == "fix" and r3["test_x"]["flaky"] is False
    c3 = commit(repo, {"a.txt": "3"}, "third")
    f4 = await flow(c3, "y")
    r4 = await results(api, f4)
    assert r4["test_y"]["change"] == "regression" and r4["test_y"]["flaky"] is False
    assert r4["test_y"]["flaky_rules"] == [] and r4["test_x"]["flaky"] is False
    assert (await results(api, f3))["test_y"]["flaky"] is False

    # deleting the project deletes its test results too
    assert (await api.http.delete(f"/projects/{project_id}")).status_code == 204
    db = Database(database_url)
    try:
        async with db.session() as s:
            left = (await s.execute(sa.text("SELECT count(*) FROM test_result"))).scalar()
            cases = (await s.execute(sa.text("SELECT count(*) FROM test_case"))).scalar()
    finally:
        await db.dispose()
    assert (left, cases) == (0, 0)


async def test_commits_from_a_webhook_push(tmp_path: Path, server: Server, api: Api, agent: Proc) -> None:
    repo = tmp_path / "repo"
    c1 = make_repo(repo, {"a.txt": "1"})
    c2 = commit(repo, {"a.txt": "2"}, "fix the thing")
    project_id, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "hooked", HOOKED.replace("REPO", str(repo)))
    r = await api.http.put(f"/projects/{project_id}/webhook", json={"secret": SECRET, "providers": ["github"]})
    assert r.status_code == 200, r.text
    payload = {
        "ref": "refs/heads/main",
        "before": c1,
        "after": c2,
        "repository": {"full_name": "acme/app", "clone_url": str(repo)},
        "commits": [
            {
                "id": c2,
                "message": "fix the thing",
                "timestamp": "2026-12-01T10:00:00Z",
                "author": {"name": "Alice", "email": "alice@example.com"},
            }
        ],
    }

    async def push(body: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        }
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            return await http.post(f"/api/webhooks/{project_id}/github", content=raw, headers=headers)

    r = await push(payload)
    assert r.status_code == 200, r.text
    [flow_id] = r.json()["flows"]
    expected = [
        {
            "repo_url": str(repo),
            "branch": "main",
            "commit": c2,
            "source": "webhook",
            "new_commits": [
                {
                    "id": c2,
                    "author": "Alice",
                    "email": "alice@example.com",
                    "message": "fix the thing",
                    "timestamp": "2026-12-01T10:00:00Z",
                    "url": None,
                }
            ],
        }
    ]
    assert (await api.get(f"/flows/{flow_id}"))["commits"] == expected
    flow = await api.wait_flow(flow_id)
    assert flow["result"] == "passed"
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["steps"][0]["info"]["commit"] == c2
    assert flow["commits"] == expected  # the trigger's state stays: the checkout does not replace it

    # an archived branch gets no flows from webhooks
    await api.post(f"/branches/{branch_id}/archive")
    again = {**payload, "commits": [{**payload["commits"][0], "message": "another push"}]}  # not a replay
    r = await push(again)
    assert r.status_code == 200 and r.json()["flows"] == [], r.text
    assert (await api.get(f"/branches/{branch_id}/flows"))["total"] == 1
