"""``kraken client`` as a subprocess against a real server and a real agent: log in, list,
apply a stage from a file, run a flow and wait for its result, follow a log, filter results,
download artifacts; text tables and --json; refused input says what and where."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.procs import ADMIN_PASSWORD, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {
        "parameters": [{"name": "fail", "type": "string", "default": "0"}],
        "jobs": [{
            "name": "tests",
            "steps": [
                {"tool": "shell", "script": "\\n".join([
                    "set -e",
                    "for i in 1 2 3; do echo progress $i; done",
                    "echo built > out.txt",
                    "if [ '#{fail}' = 1 ]; then f='<failure message=\\"boom\\"/>'; else f=''; fi",
                    "echo \\"<testsuite><testcase classname='c' name='t_ok'/>\\" > report.xml",
                    "echo \\"<testcase classname='c' name='t_x'>$f</testcase></testsuite>\\" >> report.xml",
                ])},
                {"tool": "artifacts", "source": "out.txt"},
                {"tool": "junit_collect", "file_glob": "report.xml"},
            ],
            "environments": [{"system": "any", "agents_group": "all"}],
        }],
    }
"""


class Cli:
    """Runs ``python -m kraken client ...`` with its own config directory."""

    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("KRAKEN_URL", "KRAKEN_TOKEN")}
        self.env["XDG_CONFIG_HOME"] = str(home)

    async def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kraken",
            "client",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **(env or {})},
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 120)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = await self(*args, stdin=stdin)
        assert code == 0, f"{args}: exit {code}\n{out}\n{err}"
        return out

    async def json(self, *args: str) -> Any:
        return json.loads(await self.ok(*args, "--json"))


async def test_the_client_end_to_end(tmp_path: Path, server: Server, api: Api) -> None:
    agent = start_agent(tmp_path, server.url, f"cli-agent-{uuid.uuid4().hex[:8]}")
    try:
        wait_agent_connected(agent)
        await _client_end_to_end(tmp_path, server, api)
    finally:
        agent.stop()


async def _client_end_to_end(tmp_path: Path, server: Server, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch(f"cli-{uuid.uuid4().hex[:6]}")
    project = (await api.get(f"/projects/{project_id}"))["name"]
    cli = Cli(tmp_path / "config")

    # not logged in yet: a clear message, exit 2
    code, _, err = await cli("projects")
    assert code == 2 and "kraken client login" in err
    # a wrong password: the server's answer
    code, _, err = await cli("login", "--url", server.url, "--username", "admin", "--password-stdin", stdin="nope\n")
    assert code == 2 and "wrong username or password" in err, err
    login = ("login", "--url", server.url, "--username", "admin", "--password-stdin")
    out = await cli.ok(*login, stdin=ADMIN_PASSWORD + "\n")
    assert "logged in" in out and "as admin" in out
    stored = tmp_path / "config" / "kraken" / "client.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["url"] == server.url

    # lists: a table and JSON
    assert project in await cli.ok("projects")
    assert any(p["id"] == project_id for p in await cli.json("projects"))
    table = await cli.ok("branches", project)
    assert table.splitlines()[0].split() == ["ID", "PROJECT", "BRANCH", "REPO", "BRANCH", "CI", "FLOWS"]
    assert [b["id"] for b in await cli.json("branches", project)] == [branch_id]

    # a stage from a file: created, then updated; a broken one is refused with the server's reason
    stage_file = tmp_path / "tests.star"
    stage_file.write_text(STAGE)
    assert "created" in await cli.ok("stage", "apply", str(stage_file), "--branch", f"{project}/main")
    assert "updated" in await cli.ok("stage", "apply", str(stage_file), "--branch", str(branch_id))
    broken = tmp_path / "broken.star"
    broken.write_text("def stage(ctx):\n    return {'jobs': 1}\n")
    code, _, err = await cli("stage", "apply", str(broken), "--branch", str(branch_id))
    assert code == 2 and "422" in err, err
    code, _, err = await cli("stage", "apply", str(tmp_path / "missing.star"), "--branch", str(branch_id))
    assert code == 2 and "missing.star" in err
    code, _, err = await cli("run", f"{project}/nope")
    assert code == 2 and "no branch 'nope'" in err

    # a passing flow, waited for: exit 0
    flow = await cli.json("run", f"{project}/main", "--wait")
    assert flow["result"] == "passed" and flow["state"] == "completed"
    run_id = flow["runs"][0]["id"]
    job_id = (await api.get(f"/runs/{run_id}/jobs"))[0]["id"]
    followed = await cli.ok("log", str(job_id), "--follow")
    assert "progress 1" in followed and "progress 3" in followed
    assert "progress 2" in await cli.ok("log", str(job_id))

    # artifacts
    dest = tmp_path / "dl"
    written = await cli.json("artifacts", "download", "--flow", str(flow["id"]), "--dest", str(dest))
    assert [w["path"] for w in written] == ["out.txt"] and (dest / "out.txt").read_text() == "built\n"
    listed = await cli.ok("artifacts", "list", "--run", str(run_id))
    assert "out.txt" in listed
    code, _, err = await cli("artifacts", "list")
    assert code == 2 and "--flow or --run" in err

    # a failing flow with an argument: exit 1, and its regression is listed (after the analysis)
    async with api.events() as queue:
        code, out, err = await cli("run", str(branch_id), "--arg", "fail=1", "--wait")
        assert code == 1, (out, err)
        assert "failed" in out
        failed_flow = max((await api.get(f"/branches/{branch_id}/flows"))["items"], key=lambda f: f["id"])
        failed_run = failed_flow["runs"][0]["id"]
        assert failed_flow["args"]["fail"] == 1
        while True:
            kind, data = await asyncio.wait_for(queue.get(), 60)
            if kind == "results" and data.get("run_id") == failed_run:
                break
    regressions = await cli.json("results", str(failed_run), "--regressions")
    assert [(r["test"], r["change"], r["status"]) for r in regressions] == [("c::t_x", "regression", "failed")]
    everything = await cli.ok("results", str(failed_run))
    assert "t_ok" in everything and "t_x" in everything
    assert await cli.json("results", str(failed_run), "--flaky") == []

    # a token instead of a stored login: KRAKEN_URL / KRAKEN_TOKEN
    pat = (await api.post("/users/me/tokens", {"name": "cli", "scopes": ["read"]}, 201))["token"]
    fresh = Cli(tmp_path / "other")
    code, out, err = await fresh("projects", "--json", env={"KRAKEN_URL": server.url, "KRAKEN_TOKEN": pat})
    assert code == 0 and any(p["id"] == project_id for p in json.loads(out)), err
    code, _, err = await fresh("run", str(branch_id), env={"KRAKEN_URL": server.url, "KRAKEN_TOKEN": pat})
    assert code == 2 and "trigger" in err  # a read-only token cannot start a flow
