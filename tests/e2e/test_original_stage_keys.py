"""Stage code of the original Kraken with real agents: its keys do what they say, its refusals name the key.

Covers branch environment variables (``PATCH /api/branches/{id}``, ``#{env.X}``, the steps'
environment, ``ctx.env``), both forms of sequences, both secret syntaxes, tab-indented code,
shell ``background`` / ``user`` / ``shell_exe`` / ``ssh-key``, git ``git_cfg`` and option
injection through trigger-like values, ``values_collect`` ``files``, ``rndtest``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.executors.conftest import IMAGES, require_image
from tests.support.api import Api
from tests.support.gitrepo import commit, make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

TOKEN = "s3cr3t-Token-77"

# Tab-indented, as the original's Python allowed; every key below is the original's.
ORIGINAL = (
    "def stage(ctx):\n"
    "\tgreeting = ctx.env.MY_VAR\n"
    "\tif ctx.args.COUNT is None:\n"
    "\t\tcount = '0'\n"
    "\telse:\n"
    "\t\tcount = ctx.args.COUNT\n"
    "\treturn {\n"
    '\t\t"parent": "root",\n'
    '\t\t"triggers": {"parent": True},\n'
    '\t\t"parameters": [{"name": "COUNT", "type": "string", "default": "3", "description": "tests"}],\n'
    '\t\t"configs": [],\n'
    '\t\t"flow_label": "bld-#{KK_FLOW_SEQ}",\n'
    '\t\t"jobs": [{\n'
    '\t\t\t"name": "original",\n'
    '\t\t\t"steps": [{\n'
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"cmd": "echo seq=#{KK_FLOW_SEQ}/#{KK_CI_DEV_FLOW_SEQ}/#{flow.seq.shared}/#{flow.seq.own} '
    "run=#{KK_RUN_SEQ}/#{KK_CI_DEV_RUN_SEQ}/#{run.seq.shared}/#{run.seq.own} kind=#{flow.kind} "
    'env=#{env.MY_VAR} shell=$MY_VAR ctx=" + greeting + " count=" + count + "/#{args.COUNT}/#{COUNT}"\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"cmd": "v=s3cr3t-; test \\"$T1\\" = ${v}Token-77 && test \\"$T2\\" = \\"$T1\\" && echo secrets=$T1",\n'
    '\t\t\t\t"env": {"T1": "#{secrets.tok}", "T2": "#{KK_SECRET_SIMPLE_tok}"}\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"cmd": "echo $$ > bg.pid; exec sleep 600",\n'
    '\t\t\t\t"background": True\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"script": "for i in $(seq 100); do [ -s bg.pid ] && break; sleep 0.05; done\\n'
    'kill -0 $(cat bg.pid) && echo background-pid=$(cat bg.pid)"\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"cmd": "ssh-add -l | grep -q ED25519 && test -s \\"$KRAKEN_SSH_KEY_FILE\\" '
    '&& echo \\"$GIT_SSH_COMMAND\\" | grep -q IdentitiesOnly && echo ssh-key-ready",\n'
    '\t\t\t\t"ssh-key": "deploy"\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"cmd": "echo shell-exe=$0",\n'
    '\t\t\t\t"shell_exe": "/bin/bash"\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "shell",\n'
    '\t\t\t\t"cmd": "printf \'{\\"speed\\": 12.5, \\"size\\": 3}\' > perf.json"\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "values_collect",\n'
    '\t\t\t\t"files": [{"name": "perf.json", "namespace": "perf-suite"}]\n'
    "\t\t\t}, {\n"
    '\t\t\t\t"tool": "rndtest",\n'
    '\t\t\t\t"count": "#{COUNT}",\n'
    '\t\t\t\t"override_result": 0\n'
    "\t\t\t}],\n"
    '\t\t\t"environments": [{"system": "any", "agents_group": "all", "config": "default"}]\n'
    "\t\t}],\n"
    '\t\t"notification": {"slack": {"channel": "kk-results"}, "email": "dev@example.com"}\n'
    "\t}\n"
)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return not state.startswith("Z")


async def _gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.fixture
def ssh_key(tmp_path: Path) -> str:
    """A private key made with ssh-keygen."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    return (tmp_path / "id").read_text()


async def test_original_stage_runs_with_its_meaning(tmp_path: Path, server: Server, api: Api, ssh_key: str) -> None:
    agent = start_agent(tmp_path, server.url, "a1")
    project_id, branch_id = await api.project_with_branch()
    await api.post(f"/projects/{project_id}/secrets", {"name": "tok", "value": TOKEN}, expect=201)
    key = {"name": "deploy", "kind": "ssh-key", "user": "git", "key": ssh_key}
    await api.post(f"/projects/{project_id}/secrets", key, expect=201)
    r = await api.http.patch(f"/branches/{branch_id}", json={"env_vars": {"MY_VAR": "hello-env"}})
    assert r.status_code == 200, r.text
    assert r.json()["env_vars"] == {"MY_VAR": "hello-env"}
    await api.stage(branch_id, "original", ORIGINAL)
    wait_agent_connected(agent)

    await api.wait_flow((await api.flow(branch_id, kind="dev"))["id"])  # the shared sequence counts it
    flow = await api.wait_flow((await api.flow(branch_id, args={"COUNT": "4"}))["id"])
    assert flow["result"] == "passed", flow
    [run] = flow["runs"]
    [job] = await api.jobs(run["id"])
    assert job["config_name"] == "default"
    assert [s["result"] for s in job["steps"]] == ["passed"] * 9, job["steps"]
    log = await api.log(job["id"])
    # flows: 2 of both kinds, 1 CI; runs of this stage: 2 of both kinds, 1 in CI flows
    assert "seq=2/1/2/1 run=2/1/2/1 kind=ci" in log
    assert "env=hello-env shell=hello-env ctx=hello-env count=4/4/4" in log
    assert "secrets=******" in log and TOKEN not in log
    assert "shell-exe=/bin/bash" in log and "ssh-key-ready" in log
    pid = int(re.search(r"background-pid=(\d+)", log).group(1))  # type: ignore[union-attr]
    assert await _gone(pid), "the background process outlived its job"

    async def all_results() -> dict[str, Any] | None:
        items = (await api.get(f"/runs/{run['id']}/results", params={"limit": 100}))["items"]
        return {r["test"]: r for r in items} if len(items) == 5 else None

    by_name = await api.wait_until(all_results, 30, "the run's 5 test results")
    assert by_name["perf-suite"]["status"] == "passed"
    assert by_name["perf-suite"]["values"] == {"speed": 12.5, "size": 3.0}
    assert len([name for name in by_name if name.startswith("test_")]) == 4


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory other users can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="kraken-user-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_shell_user(open_dir: Path, server: Server, api: Api, ssh_key: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    agent = start_agent(open_dir, server.url, "a1")
    project_id, branch_id = await api.project_with_branch()
    key = {"name": "deploy", "kind": "ssh-key", "user": "git", "key": ssh_key}
    await api.post(f"/projects/{project_id}/secrets", key, expect=201)
    code = (
        "def stage(ctx):\n"
        '    return {"jobs": [{"name": "u", "environments": [{"system": "any"}], "steps": [\n'
        '        {"tool": "shell", "cmd": "echo as=$(id -un)", "user": "nobody"},\n'
        '        {"tool": "shell", "cmd": "echo as=$(id -un)"},\n'
        '        {"tool": "shell", "script": "echo script-as=$(id -un)", "user": "nobody"},\n'
        '        {"tool": "shell", "cmd": "ssh-add -l | grep -q ED25519 && echo key-for=$(id -un)", '
        '"user": "nobody", "ssh-key": "deploy", "env": {"K": "kept"}},\n'
        '        {"tool": "shell", "cmd": "test \\"$K\\" = kept && echo env-kept", "user": "nobody",\n'
        '         "env": {"K": "kept"}},\n'
        '        {"tool": "shell", "cmd": "true", "user": "no-such-user-kk"}]}]}\n'
    )
    await api.stage(branch_id, "u", code)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [job] = await api.jobs(flow["runs"][0]["id"])
    log = await api.log(job["id"])
    assert [s["result"] for s in job["steps"]][:5] == ["passed"] * 5, log
    assert job["steps"][5]["result"] != "passed"
    assert "as=nobody" in log and "as=root" in log and "script-as=nobody" in log
    assert "key-for=nobody" in log and "env-kept" in log


async def test_git_cfg_and_option_injection(tmp_path: Path, server: Server, api: Api) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, {"a.txt": "a\n"})
    commit(repo, {"b.txt": "b\n"}, "second")
    marker = tmp_path / "pwned"
    agent = start_agent(tmp_path, server.url, "a1")
    _, branch_id = await api.project_with_branch()
    url = f"file://{repo}"
    evil = f"--upload-pack=touch {marker};git-upload-pack"
    code = (
        "def stage(ctx):\n"
        "    def job(name, step):\n"
        '        return {"name": name, "environments": [{"system": "any"}], "steps": [step]}\n'
        '    return {"jobs": [\n'
        f'        job("plain", {{"tool": "git", "checkout": "{url}", "git_cfg": {{"user.name": "kk"}}}}),\n'
        f'        job("cfg", {{"tool": "git", "checkout": "{url}", "git_cfg": {{"protocol.file.allow": "never"}}}}),\n'
        f'        job("url", {{"tool": "git", "checkout": "{evil}", "destination": "d"}}),\n'
        f'        job("branch", {{"tool": "git", "checkout": "{url}", "branch": "{evil}"}}),\n'
        f'        job("commit", {{"tool": "git", "checkout": "{url}", "commit": "{evil}"}}),\n'
        f'        job("dest", {{"tool": "git", "checkout": "{url}", "destination": "{evil}"}}),\n'
        f'        job("good-commit", {{"tool": "git", "checkout": "{url}", "commit": "{first}"}}),\n'
        "    ]}\n"
    )
    await api.stage(branch_id, "g", code)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    jobs = {j["name"]: j for j in await api.jobs(flow["runs"][0]["id"])}
    assert jobs["plain"]["steps"][0]["result"] == "passed"
    # git_cfg reaches git: file:// clones forbidden by the config fail
    assert jobs["cfg"]["steps"][0]["result"] == "failed"
    assert "not allowed" in await api.log(jobs["cfg"]["id"]) or "transport" in await api.log(jobs["cfg"]["id"])
    for name in ("url", "branch", "commit"):
        assert jobs[name]["steps"][0]["result"] == "failed", name
    # a destination starting with '-' is only a directory name
    assert jobs["dest"]["steps"][0]["result"] == "passed"
    assert not marker.exists(), "a value starting with '-' was read as a git option"
    assert jobs["good-commit"]["steps"][0]["result"] == "passed"
    assert f"checked out {first}" in await api.log(jobs["good-commit"]["id"])


async def test_branch_patch_and_refusals(server: Server, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch()
    other = await api.post(f"/projects/{project_id}/branches", {"name": "dev", "branch_name": "dev"}, expect=201)
    r = await api.http.patch(
        f"/branches/{branch_id}",
        json={
            "name": "Main",
            "branch_name": "master",
            "repo_url": "https://git.example/r.git",
            "env_vars": {"A_1": "x"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["branch_name"], body["repo_url"], body["env_vars"]) == (
        "Main",
        "master",
        "https://git.example/r.git",
        {"A_1": "x"},
    )
    assert (await api.get(f"/branches/{branch_id}"))["env_vars"] == {"A_1": "x"}
    for bad in ({"env_vars": {"1BAD": "x"}}, {"env_vars": {"A-B": "x"}}, {"env_vars": {"A": 1}}, {"colour": "red"}):
        r = await api.http.patch(f"/branches/{branch_id}", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await api.http.patch(f"/branches/{branch_id}", json={"name": "DEV"})
    assert r.status_code == 409
    r = await api.http.patch(f"/branches/{other['id']}", json={"env_vars": {}})
    assert r.status_code == 200 and r.json()["env_vars"] == {}
    assert (await api.get(f"/branches/{branch_id}"))["env_vars"] == {"A_1": "x"}  # nothing else changed
    r = await api.http.patch("/branches/99999", json={"name": "x"})
    assert r.status_code == 404

    # refusals name the key path
    step = '{"tool": "shell", "cmd": "true", "bakground": True}'
    code = f'def stage(ctx):\n    return {{"jobs": [{{"name": "j", "steps": [{step}], "environments": [{{}}]}}]}}\n'
    r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "s", "schema_code": code})
    assert r.status_code == 422 and r.json()["detail"]["path"] == "jobs[0].steps[0].bakground", r.text
    code = code.replace('"shell", "cmd": "true", "bakground": True', '"nglint"')
    r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "s", "schema_code": code})
    assert r.status_code == 422 and "not available" in r.json()["detail"]["message"], r.text


async def test_cloc_reports_lines_per_language(tmp_path: Path, server: Server, api: Api) -> None:
    if shutil.which("cloc") is None:
        pytest.skip("cloc is not installed (scripts/test.sh installs Debian's cloc)")
    agent = start_agent(tmp_path, server.url, "a1")
    _, branch_id = await api.project_with_branch()
    src = tmp_path / "src"
    (src / "skip").mkdir(parents=True)
    (src / "a.py").write_text("x = 1\n# c\n\ny = 2\n")
    (src / "skip" / "b.py").write_text("z = 1\n")  # excluded directory
    (src / "m.c").write_text("int main() {}\n")  # excluded file name
    step = {"tool": "cloc", "cwd": str(src), "exclude-dir": "skip", "not-match-f": r"m\.c"}
    env = {"system": "any", "config": "default"}
    code = (
        f"def stage(ctx):\n    return {{'jobs': [{{'name': 'c', 'environments': [{env!r}], 'steps': [{step!r}]}}]}}\n"
    )
    await api.stage(branch_id, "c", code)
    wait_agent_connected(agent)
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [run] = flow["runs"]
    [job] = await api.jobs(run["id"])
    assert [s["result"] for s in job["steps"]] == ["passed"], await api.log(job["id"])

    async def results() -> dict[str, Any] | None:
        items = (await api.get(f"/runs/{run['id']}/results"))["items"]
        return {r["test"]: r for r in items} if len(items) == 2 else None

    by_name = await api.wait_until(results, 30, "cloc's results")
    assert sorted(by_name) == ["Python", "SUM"]
    assert by_name["Python"]["values"] == {"code": 2, "comment": 1, "blank": 1, "total": 4, "files": 1}


BACKGROUND_IN_CONTAINER = """
def stage(ctx):
    return {"jobs": [{"name": "bg", "environments": [{"system": "IMAGE", "executor": "EXECUTOR"}], "steps": [
        {"tool": "shell", "cmd": "echo $$ > bg.pid; exec sleep 600", "background": True},
        {"tool": "shell", "script": "for i in $(seq 100); do [ -s bg.pid ] && break; sleep 0.05; done\\n"
                                    "kill -0 $(cat bg.pid) && echo background-running"},
        {"tool": "shell", "cmd": "echo as=$(id -un)", "user": "nobody"},
    ]}]}
"""


@pytest.mark.parametrize("executor", ["docker", "lxd"])
async def test_background_and_user_in_a_container(tmp_path: Path, server: Server, api: Api, executor: str) -> None:
    image = IMAGES[executor].python
    require_image(executor, image)
    agent = start_agent(tmp_path, server.url, f"ct-{executor}", "--executor", executor)
    wait_agent_connected(agent, timeout=60)
    _, branch_id = await api.project_with_branch()
    await api.stage(branch_id, "bg", BACKGROUND_IN_CONTAINER.replace("IMAGE", image).replace("EXECUTOR", executor))
    started = time.monotonic()
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=240)
    [job] = await api.jobs(flow["runs"][0]["id"])
    log = await api.log(job["id"])
    assert [s["result"] for s in job["steps"]] == ["passed"] * 3, log
    assert "background-running" in log and "as=nobody" in log
    assert time.monotonic() - started < 200  # the job did not wait for its background process
