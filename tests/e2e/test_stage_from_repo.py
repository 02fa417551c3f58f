"""Stage code from a git repository, with a real server (SQLite and PostgreSQL), a real agent
process and real git repositories: the run uses the file at the branch's head and records its
commit, a new commit is used by the next flow; a missing file, a missing branch and bad code end
the run with ``error`` and a reason saying what and where; saving checks the file once (422 like
inline code); values that could be read as git options are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.gitrepo import commit, git, make_repo
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e


def stage_code(word: str) -> str:
    return f"""
def stage(ctx):
    return {{
        "parent": "root",
        "jobs": [{{"name": "j", "steps": [{{"tool": "shell", "cmd": "echo code-{word}"}}],
                  "environments": [{{"system": "any", "agents_group": "all"}}]}}],
    }}
"""


BAD_CODE = "def stage(ctx):\n    x = 1\n    return undefined_name\n"


@pytest.fixture
def agent(tmp_path: Path, server: Server) -> Iterator[Proc]:
    proc = start_agent(tmp_path, server.url, "agent1")
    try:
        wait_agent_connected(proc)
        yield proc
    finally:
        proc.stop()


def repo_stage(repo: Path, name: str = "build", branch: str = "main", file: str = "ci/build.star") -> dict[str, Any]:
    return {
        "name": name,
        "schema_from_repo": True,
        "repo_url": f"file://{repo}",
        "repo_branch": branch,
        "schema_file": file,
    }


async def run_of(api: Api, branch_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    run = flow["runs"][0]
    return flow, await api.get(f"/runs/{run['id']}")


async def test_a_stage_runs_the_file_of_the_branch_head(tmp_path: Path, server: Server, api: Api, agent: Proc) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, {"ci/build.star": stage_code("one")})
    _, branch_id = await api.project_with_branch()
    stage = await api.post(f"/branches/{branch_id}/stages", repo_stage(repo), expect=201)
    assert stage["schema_from_repo"] is True and stage["schema_code"] == ""
    where = (stage["repo_url"], stage["repo_branch"], stage["schema_file"])
    assert where == (f"file://{repo}", "main", "ci/build.star")
    assert stage["parent"] == "root" and stage["schema_commit"] == first

    flow, run = await run_of(api, branch_id)
    assert run["result"] == "passed", run
    assert run["schema_commit"] == first == flow["runs"][0]["schema_commit"]
    job = (await api.jobs(run["id"]))[0]
    assert "code-one" in await api.log(job["id"])

    second = commit(repo, {"ci/build.star": stage_code("two")}, "second")
    _, run = await run_of(api, branch_id)
    assert run["result"] == "passed" and run["schema_commit"] == second
    assert "code-two" in await api.log((await api.jobs(run["id"]))[0]["id"])

    # bad code: the run ends with error, naming the file, the line and the commit
    bad = commit(repo, {"ci/build.star": BAD_CODE}, "bad")
    _, run = await run_of(api, branch_id)
    assert run["result"] == "error" and run["schema_commit"] == bad
    assert "ci/build.star line 3" in run["reason"] and bad[:12] in run["reason"], run["reason"]
    assert "undefined_name" in run["reason"]
    assert await api.jobs(run["id"]) == []

    # the stage graph is read when the stage is saved: a new parent in the file is refused, not half used
    moved = commit(repo, {"ci/build.star": stage_code("four").replace('"root"', '"tests"')}, "moved")
    _, run = await run_of(api, branch_id)
    assert run["result"] == "error" and run["schema_commit"] == moved
    assert "changes 'parent'" in run["reason"] and "save the stage again" in run["reason"], run["reason"]

    # the file is gone
    git(repo, "rm", "-q", "ci/build.star")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@l", "commit", "-q", "-m", "gone")
    _, run = await run_of(api, branch_id)
    assert run["result"] == "error" and run["schema_commit"] is None
    assert "no file ci/build.star" in run["reason"] and "branch 'main'" in run["reason"], run["reason"]

    # the branch is gone
    commit(repo, {"ci/build.star": stage_code("three")}, "back")
    git(repo, "checkout", "-q", "-b", "release")
    stage = await api.http.patch(f"/stages/{stage['id']}", json={"repo_branch": "release"})
    assert stage.status_code == 200, stage.text
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "release")
    _, run = await run_of(api, branch_id)
    assert run["result"] == "error" and f"no branch 'release' in file://{repo}" in run["reason"], run["reason"]

    # back to code held by the stage
    inline = await api.http.put(
        f"/stages/{stage.json()['id']}", json={"schema_from_repo": False, "schema_code": stage_code("inline")}
    )
    assert inline.status_code == 200, inline.text
    assert inline.json()["schema_from_repo"] is False and inline.json()["repo_url"] is None
    assert inline.json()["schema_commit"] is None
    _, run = await run_of(api, branch_id)
    assert run["result"] == "passed" and run["schema_commit"] is None


async def test_saving_checks_the_fields_and_the_file(tmp_path: Path, server: Server, api: Api) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"ci/build.star": stage_code("one"), "ci/bad.star": BAD_CODE})
    project_id, branch_id = await api.project_with_branch()
    url = f"/branches/{branch_id}/stages"

    async def refused(body: dict[str, Any], path: str) -> dict[str, Any]:
        r = await api.http.post(url, json=body)
        assert r.status_code == 422, r.text
        detail: dict[str, Any] = r.json()["detail"]
        assert detail["path"] == path, detail
        return detail

    for missing in ("repo_url", "repo_branch", "schema_file"):
        body = repo_stage(repo)
        del body[missing]
        assert "is required" in (await refused(body, missing))["message"]
    await refused({**repo_stage(repo), "schema_code": stage_code("x")}, "schema_code")  # both
    await refused({"name": "s", "schema_code": stage_code("x"), "repo_url": f"file://{repo}"}, "repo_url")
    await refused({"name": "s"}, "schema_code")
    # values that git could read as options
    marker = tmp_path / "pwned"
    await refused({**repo_stage(repo), "repo_url": f"--upload-pack=touch {marker}"}, "repo_url")
    await refused({**repo_stage(repo), "repo_branch": f"--upload-pack=touch {marker}"}, "repo_branch")
    await refused({**repo_stage(repo), "schema_file": "../../etc/passwd"}, "schema_file")
    assert not marker.exists()
    # what the file check finds
    detail = await refused(repo_stage(repo, file="ci/none.star"), "schema_file")
    assert "no file ci/none.star" in detail["message"]
    detail = await refused(repo_stage(repo, branch="nope"), "schema_file")
    assert f"no branch 'nope' in file://{repo}" in detail["message"]
    detail = await refused({**repo_stage(repo), "repo_url": "file:///no/such/repo"}, "schema_file")
    assert "cannot fetch branch 'main' of file:///no/such/repo" in detail["message"]
    r = await api.http.post(url, json=repo_stage(repo, file="ci/bad.star"))
    assert r.status_code == 422 and r.json()["detail"]["line"] == 3, r.text
    assert "ci/bad.star line 3" in r.json()["detail"]["message"]
    # the access token names a project secret, and needs an https URL
    await refused({**repo_stage(repo), "repo_access_token": "nope"}, "repo_access_token")
    await api.post(f"/projects/{project_id}/secrets", {"name": "tok", "value": "v"}, expect=201)
    detail = await refused({**repo_stage(repo), "repo_access_token": "tok"}, "schema_file")
    assert "access token needs an http" in detail["message"]
    assert await api.get(f"/branches/{branch_id}/stages") == []

    # a good stage, then updates are checked the same way
    stage = await api.post(url, repo_stage(repo), expect=201)
    r = await api.http.patch(f"/stages/{stage['id']}", json={"schema_file": "ci/bad.star"})
    assert r.status_code == 422 and r.json()["detail"]["line"] == 3, r.text
    r = await api.http.patch(f"/stages/{stage['id']}", json={"schema_code": stage_code("x")})
    assert r.status_code == 422 and r.json()["detail"]["path"] == "schema_code", r.text
    r = await api.http.patch(f"/stages/{stage['id']}", json={"repo_branch": "-b"})
    assert r.status_code == 422 and r.json()["detail"]["path"] == "repo_branch", r.text
    kept = await api.get(f"/stages/{stage['id']}")
    assert (kept["schema_file"], kept["repo_branch"]) == ("ci/build.star", "main")
    renamed = await api.http.patch(f"/stages/{stage['id']}", json={"name": "build2"})
    assert renamed.status_code == 200 and renamed.json()["schema_from_repo"] is True, renamed.text
