"""Quarantine and reruns with a real server, a real agent process and real pytest: a test that
fails then passes on a rerun does not fail the run; a quarantined test's failure does not either
and is counted as a quarantined failure; the quarantine API refuses bad input."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

TESTS = """
from pathlib import Path

def test_ok():
    pass

def test_flaky():
    marker = Path("flaky-marker")
    if not marker.exists():
        marker.write_text("x")
        assert False, "fails the first time in a job"

def test_broken():
    assert False, "always"
"""

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "tests", "steps": [
        {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
        {"tool": "pytest", "cwd": "src", "params": "tests", "pytest_exe": "PYTEST", "rerun_failed": 1},
    ], "environments": [{"system": "any", "agents_group": "all"}]}]}
"""


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, f"q-{uuid.uuid4().hex[:8]}")
    try:
        wait_agent_connected(proc)
        yield proc
    finally:
        proc.stop()


async def run_flow(api: Api, branch_id: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A CI flow: its run, and its results by short test name once analysed (every attempt)."""
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=120)
    run_id = flow["runs"][0]["id"]

    async def analysed() -> dict[str, Any] | None:
        summary = await api.get(f"/runs/{run_id}/summary")
        return summary if summary["analysis"] == "done" and summary["total"] else None

    await api.wait_until(analysed, 60, f"results of run {run_id}")
    page = await api.get(f"/runs/{run_id}/results", params={"limit": 100, "sort": "id"})
    results: dict[str, dict[str, Any]] = {}
    for r in page["items"]:
        results.setdefault(r["test"].rsplit("::", 1)[-1], {"attempts": []})["attempts"].append(r)
    return await api.get(f"/runs/{run_id}"), results


async def test_reruns_and_quarantine_keep_a_run_green(tmp_path: Path, server: Server, api: Api, agent: Proc) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"tests/test_q.py": TESTS})
    _, branch_id = await api.project_with_branch(f"q-{uuid.uuid4().hex[:6]}")
    await api.stage(
        branch_id, "tests", STAGE.replace("REPO", str(repo)).replace("PYTEST", f"{sys.executable} -m pytest")
    )

    run, results = await run_flow(api, branch_id)
    # test_broken failed on both attempts: the run fails; test_flaky failed, then passed: flaky, not a failure
    assert run["result"] == "failed" and run["tests_quarantined"] == 0
    assert [r["status"] for r in results["test_flaky"]["attempts"]] == ["failed", "passed"]
    assert all(r["flaky"] and r["flaky_rules"] == ["same_commit"] for r in results["test_flaky"]["attempts"])
    assert [r["status"] for r in results["test_broken"]["attempts"]] == ["failed", "failed"]
    [job] = await api.jobs(run["id"])
    assert (job["tests_total"], job["tests_failed"], job["tests_quarantined"]) == (3, 1, 0)

    broken_id = results["test_broken"]["attempts"][0]["test_case_id"]
    q = await api.post(f"/branches/{branch_id}/quarantine", {"test_case_id": broken_id, "reason": "bug 42"}, 201)
    assert (q["test_name"], q["reason"], q["created_by"], q["passes"]) == (
        "tests.test_q::test_broken",
        "bug 42",
        "admin",
        0,
    )
    assert [x["test_case_id"] for x in await api.get(f"/branches/{branch_id}/quarantine")] == [broken_id]

    run, results = await run_flow(api, branch_id)
    assert run["result"] == "passed" and run["tests_quarantined"] == 1  # "1 quarantined failure"
    assert [r["status"] for r in results["test_broken"]["attempts"]] == ["failed", "failed"]  # still recorded
    assert all(r["quarantined"] for r in results["test_broken"]["attempts"])
    assert not any(r["quarantined"] for r in results["test_ok"]["attempts"])
    flow = await api.get(f"/flows/{run['flow_id']}")
    assert flow["result"] == "passed" and flow["runs"][0]["tests_quarantined"] == 1

    released = (await api.http.delete(f"/branches/{branch_id}/quarantine/{broken_id}")).json()
    assert released == {"branch_id": branch_id, "test_case_id": broken_id, "released": True}
    again = (await api.http.delete(f"/branches/{branch_id}/quarantine/{broken_id}")).json()
    assert again["released"] is False
    assert await api.get(f"/branches/{branch_id}/quarantine") == []


async def test_quarantine_api_refuses_bad_input(server: Server, api: Api) -> None:
    _, branch_id = await api.project_with_branch(f"qa-{uuid.uuid4().hex[:6]}")
    _, other_branch = await api.project_with_branch(f"qb-{uuid.uuid4().hex[:6]}")
    url = f"/branches/{branch_id}/quarantine"
    for body, where in (
        ({"test_case_id": 1}, "reason"),
        ({"test_case_id": 1, "reason": ""}, "reason"),
        ({"test_case_id": 0, "reason": "x"}, "test_case_id"),
        ({"test_case_id": 1, "reason": "x", "who": "me"}, "who"),
    ):
        r = await api.http.post(url, json=body)
        assert r.status_code == 422 and where in r.text, (body, r.text)
    r = await api.http.post(url, json={"test_case_id": 999999, "reason": "x"})
    assert r.status_code == 422 and "test_case_id: test case 999999 is not a test" in r.text
    assert (await api.http.post(f"/branches/{other_branch + 1000}/quarantine", json={})).status_code == 404

    settings_url = f"/branches/{branch_id}/quarantine-settings"
    assert await api.get(settings_url) == {"branch_id": branch_id, "quarantine_flaky": False, "release_after": None}
    r = await api.http.put(settings_url, json={"quarantine_flaky": True, "release_after": 3})
    assert r.status_code == 200 and r.json()["release_after"] == 3
    for bad in ({"quarantine_flaky": True, "release_after": 0}, {"quarantine_flaky": "often"}, {"auto": True}):
        r = await api.http.put(settings_url, json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert await api.get(settings_url) == {"branch_id": branch_id, "quarantine_flaky": True, "release_after": 3}
