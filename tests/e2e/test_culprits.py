"""Culprit finding with a real server, a real agent, real git and real pytest.

A repository of 20 commits: commit 6 breaks ``add`` (two tests), commit 13 breaks ``mul`` (one
test).  CI flows on the first and the last commit see three regressions in one range of 17
commits; bisection names both culprits with at most ceil(log2(17)) + 1 flows per search.  Then:
a flaky test (failing on a commit where it passed) is never bisected; a range of one commit is
named without a flow; an unreachable repository fails the search with the reason.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.gitrepo import commit, git, make_repo
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n\n\ndef sub(a, b):\n    return a - b\n"
TESTS = """
import os
from calc import add, mul, sub

def test_add_small():
    assert add(1, 2) == 3

def test_add_negative():
    assert add(-1, -1) == -2

def test_mul_small():
    assert mul(2, 3) == 6

def test_sub_small():
    assert sub(5, 3) == 2

def test_sometimes():
    assert not os.path.exists(MARKER)
"""

STAGE = """
def stage(ctx):
    return {
        "jobs": [{"name": "t", "steps": [
            {"tool": "git", "checkout": REPO, "branch": "main", "destination": "src"},
            {"tool": "pytest", "cwd": "src", "params": "-p no:cacheprovider tests", "pythonpath": ".",
             "pytest_exe": PYTEST},
        ], "environments": [{"system": "any", "agents_group": "all"}]}],
    }
"""


SHELL_STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any"}]}]}
"""


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, f"culprit-{tmp_path.name}")
    try:
        wait_agent_connected(proc)
        yield proc
    finally:
        proc.stop()


async def ci_flow(api: Api, branch_id: int, tests: int = 5) -> dict[str, Any]:
    started = await api.flow(branch_id)
    done = await api.wait_flow(started["id"], 120)
    run_id = done["runs"][0]["id"]

    async def analysed() -> bool:
        page = await api.get(f"/runs/{run_id}/results")
        return bool(page["total"] == tests)

    await api.wait_until(analysed, 60, f"results of run {run_id}")
    return done


async def searches(api: Api, run_id: int, timeout: float = 300) -> list[dict[str, Any]]:
    async def over() -> list[dict[str, Any]] | None:
        found = await api.get(f"/runs/{run_id}/culprits")
        return found if found and all(s["state"] not in ("pending", "bisecting") for s in found) else None

    return await api.wait_until(over, timeout, f"culprit searches of run {run_id}")  # type: ignore[no-any-return]


async def test_culprits_bisected_flaky_single_commit_and_unreachable(
    tmp_path: Path, server: Server, api: Api, agent: Proc
) -> None:
    repo = tmp_path / "repo"
    marker = tmp_path / "flaky-marker"
    tests = TESTS.replace("MARKER", repr(str(marker)))
    shas = [make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": tests, "notes.txt": "0"})]
    for i in range(1, 18):
        files = {"notes.txt": str(i)}
        if i == 6:
            files["calc.py"] = (repo / "calc.py").read_text().replace("return a + b", "return a + b + 1")
        if i == 13:
            files["calc.py"] = (repo / "calc.py").read_text().replace("return a * b", "return a * b * 2")
        shas.append(commit(repo, files, f"change {i}" + (" (breaks add)" if i == 6 else "")))
    _project_id, branch_id = await api.project_with_branch()
    code = STAGE.replace("REPO", repr(str(repo))).replace("PYTEST", repr(f"{sys.executable} -m pytest"))
    await api.stage(branch_id, "tests", code)
    r = await api.http.patch(f"/branches/{branch_id}", json={"repo_url": str(repo)})  # where the range is read
    assert r.status_code == 200, r.text

    # the working commit, then the 17 commits after it at once
    git(repo, "reset", "-q", "--hard", shas[0])
    first = await ci_flow(api, branch_id)
    assert first["commits"][0]["commit"] == shas[0]
    git(repo, "reset", "-q", "--hard", shas[-1])
    second = await ci_flow(api, branch_id)
    run_id = second["runs"][0]["id"]
    assert second["commits"][0]["commit"] == shas[-1]

    t0 = time.monotonic()
    started = await api.post(f"/runs/{run_id}/culprits", expect=200)
    assert len(started) == 1 and started[0]["state"] == "pending"
    assert started[0]["good_commit"] == shas[0] and started[0]["bad_commit"] == shas[-1]
    assert sorted(started[0]["tests"]) == sorted(
        f"tests.test_calc::{n}" for n in ("test_add_small", "test_add_negative", "test_mul_small")
    )
    done = await searches(api, run_id)
    wall = time.monotonic() - t0
    by_tests = {tuple(sorted(t.rsplit("::", 1)[1] for t in s["tests"])): s for s in done}
    assert set(by_tests) == {("test_add_negative", "test_add_small"), ("test_mul_small",)}, done
    add, mul = by_tests[("test_add_negative", "test_add_small")], by_tests[("test_mul_small",)]
    assert add["state"] == "found" and add["culprit"] == shas[6], add
    assert add["culprit_commit"]["message"] == "change 6 (breaks add)" and add["culprit_commit"]["author"] == "Test"
    assert mul["state"] == "found" and mul["culprit"] == shas[13], mul
    assert add["range_commits"] == mul["range_commits"] == 17
    bound = math.ceil(math.log2(17)) + 1
    assert 1 <= len(add["flows"]) <= bound and 1 <= len(mul["flows"]) <= bound, (add["flows"], mul["flows"])
    flows = sorted(set(add["flows"]) | set(mul["flows"]))
    print(
        f"BENCH culprits: range 17 commits, 2 culprits, {len(flows)} bisection flows "
        f"(add {len(add['flows'])}, mul {len(mul['flows'])}), wall {wall:.1f} s"
    )
    # the bisection flows: DEV flows marked as such, on commits inside the range, only the regressed tests
    for fid in flows:
        f = await api.get(f"/flows/{fid}")
        assert f["kind"] == "dev" and f["trigger"]["reason"] == "culprit", f
        assert f["commits"][0]["commit"] in shas[1:17]
        page = await api.get(f"/runs/{f['runs'][0]['id']}/results")
        names = {r["test"].rsplit("::", 1)[1] for r in page["items"]}
        assert names and names <= {"test_add_small", "test_add_negative", "test_mul_small"}, names
    # a second POST changes nothing
    again = await api.post(f"/runs/{run_id}/culprits", expect=200)
    assert sorted(s["id"] for s in again) == sorted(s["id"] for s in done)

    # flaky: test_sometimes fails on the commit where it passed -> flaky, never bisected
    marker.write_text("x")
    third = await ci_flow(api, branch_id)
    marker.unlink()
    flaky = await api.post(f"/runs/{third['runs'][0]['id']}/culprits", expect=200)
    assert [(s["tests"], s["state"], s["flows"]) for s in flaky] == [
        (["tests.test_calc::test_sometimes"], "range", [])
    ], flaky
    assert flaky[0]["reason"] == "flaky test: not bisected"

    # a range of one commit: named without a bisection flow
    one = commit(repo, {"calc.py": (repo / "calc.py").read_text().replace("return a - b", "return b - a")}, "swap")
    fourth = await ci_flow(api, branch_id)
    await api.post(f"/runs/{fourth['runs'][0]['id']}/culprits", expect=200)
    single = await searches(api, fourth["runs"][0]["id"], 60)
    sub = next(s for s in single if s["tests"] == ["tests.test_calc::test_sub_small"])
    assert sub["state"] == "found" and sub["culprit"] == one and sub["flows"] == [] and sub["range_commits"] == 1

    # the repository is gone when the range is read: failed, with the reason
    more = "tests/test_more.py"
    commit(repo, {more: "def test_more():\n    assert True\n"}, "more")
    fifth = await ci_flow(api, branch_id, tests=6)
    commit(repo, {more: "def test_more():\n    assert False\n"}, "break more")
    sixth = await ci_flow(api, branch_id, tests=6)
    assert fifth["id"] < sixth["id"]
    repo.rename(tmp_path / "moved")  # the branch's repo_url names it
    await api.post(f"/runs/{sixth['runs'][0]['id']}/culprits", expect=200)
    failed = await searches(api, sixth["runs"][0]["id"], 60)
    assert [(s["tests"], s["state"]) for s in failed] == [(["tests.test_more::test_more"], "failed")], failed
    assert failed[0]["reason"].startswith("the repository cannot be read: fetching ") and failed[0]["culprit"] is None


async def test_culprits_refused_for_runs_that_cannot_have_them(server: Server, api: Api, agent: Proc) -> None:
    _project_id, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "s", SHELL_STAGE)
    dev = await api.flow(branch_id, kind="dev")
    done = await api.wait_flow(dev["id"])
    run_id = done["runs"][0]["id"]
    await api.post(f"/runs/{run_id}/culprits", expect=409)
    assert await api.get(f"/runs/{run_id}/culprits") == []
    await api.post("/runs/999999/culprits", expect=404)
    settings = await api.get(f"/branches/{branch_id}/culprit-settings")
    assert settings == {"branch_id": branch_id, "auto": False}


async def test_culprits_start_by_themselves_when_the_branch_says_so(
    tmp_path: Path, server: Server, api: Api, agent: Proc
) -> None:
    repo = tmp_path / "repo"
    marker = tmp_path / "never"
    good = make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": TESTS.replace("MARKER", repr(str(marker)))})
    _project_id, branch_id = await api.project_with_branch()
    code = STAGE.replace("REPO", repr(str(repo))).replace("PYTEST", repr(f"{sys.executable} -m pytest"))
    await api.stage(branch_id, "tests", code)
    r = await api.http.put(f"/branches/{branch_id}/culprit-settings", json={"auto": True})
    assert r.status_code == 200 and r.json() == {"branch_id": branch_id, "auto": True}
    r = await api.http.put(f"/branches/{branch_id}/culprit-settings", json={"auto": True, "extra": 1})
    assert r.status_code == 422 and "extra" in r.text
    first = await ci_flow(api, branch_id)
    assert first["commits"][0]["commit"] == good
    assert await api.get(f"/runs/{first['runs'][0]['id']}/culprits") == []  # no regressions: nothing to search
    broke = commit(repo, {"calc.py": CALC.replace("return a * b", "return a * b * 2")}, "breaks mul")
    commit(repo, {"notes.txt": "1"}, "notes")
    second = await ci_flow(api, branch_id)
    found = await searches(api, second["runs"][0]["id"], 120)  # no POST: the branch setting started it
    assert [(s["tests"], s["state"], s["culprit"], len(s["flows"])) for s in found] == [
        (["tests.test_calc::test_mul_small"], "found", broke, 1)
    ], found
