"""Custom tools with real processes: registered from a git repository (two tags), an archive and
a folder; ``name@version`` in steps; the tool's own field schema; the agent's cache."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from kraken.core.db import Database
from kraken.core.security import hash_password
from kraken.models import User
from tests.support.api import Api
from tests.support.gitrepo import commit, git, make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

SCHEMA = {
    "type": "object",
    "properties": {"who": {"type": "string", "maxLength": 20}, "fail": {"type": "boolean"}},
    "required": ["who"],
    "additionalProperties": False,
}
RUN_PY = """import json, os, sys
fields = json.load(open(sys.argv[1]))
assert os.environ["KRAKEN_TOOL_FIELDS"] == sys.argv[1]
print("greet %s: hello %s" % ("{tag}", fields["who"]))
sys.exit(3 if fields.get("fail") else 0)
"""


def _manifest(version: str) -> str:
    return json.dumps(
        {"name": "greet", "version": version, "description": "says hello", "fields_schema": SCHEMA, "entry": "run.py"}
    )


def _tool_repo(path: Path) -> Path:
    make_repo(path, {"kraken-tool.json": _manifest("1.0"), "run.py": RUN_PY.replace("{tag}", "v1")})
    git(path, "tag", "v1.0")
    commit(path, {"kraken-tool.json": _manifest("2.0"), "run.py": RUN_PY.replace("{tag}", "v2")}, "v2")
    git(path, "tag", "v2.0")
    return path


def _stage(steps: str) -> str:
    return f"""
def stage(ctx):
    return {{"parent": "root", "triggers": {{"parent": True}},
             "jobs": [{{"name": "j", "steps": [{steps}], "environments": [{{"system": "any"}}]}}]}}
"""


async def _job_log(api: Api, branch_id: int) -> tuple[dict[str, Any], str]:
    flow = await api.wait_flow((await api.flow(branch_id))["id"])
    [run] = flow["runs"]
    [job] = await api.jobs(run["id"])
    return job, await api.log(job["id"])


async def test_git_tool_at_two_versions_validated_and_cached(tmp_path: Path, server: Server, api: Api) -> None:
    repo = _tool_repo(tmp_path / "greet-tool")
    agent = start_agent(tmp_path, server.url, "a1")
    for ref in ("v1.0", "v2.0"):
        await api.post("/tools", {"source": "git", "url": str(repo), "ref": ref}, expect=201)
    again = await api.http.post("/tools", json={"source": "git", "url": str(repo), "ref": "v1.0"})
    assert again.status_code == 409, again.text
    tools = await api.get("/tools")
    assert [(t["name"], t["version"]) for t in tools] == [("greet", "1.0"), ("greet", "2.0")]
    assert tools[0]["digest"] != tools[1]["digest"] and tools[0]["fields_schema"] == SCHEMA
    # option injection through the URL or the ref is refused before git runs
    for body in ({"url": "--upload-pack=touch /tmp/kraken-pwned", "ref": None}, {"url": str(repo), "ref": "--help"}):
        r = await api.http.post("/tools", json={"source": "git", **body})
        assert r.status_code == 422, r.text

    _, branch_id = await api.project_with_branch()
    refused = [
        ('{"tool": "greet@1.0", "who": 3}', "jobs[0].steps[0].who"),
        ('{"tool": "greet@1.0", "who": "x", "shout": True}', "jobs[0].steps[0].shout"),
        ('{"tool": "greet@1.0"}', "jobs[0].steps[0].who"),
        ('{"tool": "greet@9.9", "who": "x"}', "jobs[0].steps[0].tool"),
        ('{"tool": "nope@1.0", "who": "x"}', "jobs[0].steps[0].tool"),
    ]
    for step, path in refused:
        r = await api.http.post(f"/branches/{branch_id}/stages", json={"name": "s", "schema_code": _stage(step)})
        assert r.status_code == 422, (step, r.text)
        assert r.json()["detail"]["path"] == path, (step, r.json())
    r = await api.http.post(
        f"/branches/{branch_id}/stages", json={"name": "s", "schema_code": _stage('{"tool": "greet@9.9", "who": "x"}')}
    )
    assert "has no version '9.9'" in r.json()["detail"]["message"] and "1.0, 2.0" in r.json()["detail"]["message"]

    steps = (
        '{"tool": "greet@1.0", "who": "one"}, {"tool": "greet@2.0", "who": "two"}, {"tool": "greet", "who": "latest"}'
    )
    stage = await api.stage(branch_id, "s", _stage(steps))
    wait_agent_connected(agent)
    job, log = await _job_log(api, branch_id)
    assert job["result"] == "passed", (job, log)
    assert [s["tool"] for s in job["steps"]] == ["greet@1.0", "greet@2.0", "greet@2.0"]
    assert "greet v1: hello one" in log and "greet v2: hello two" in log and "greet v2: hello latest" in log
    assert log.count("downloaded") == 2 and "cached copy" in log  # the third step reuses 2.0
    assert sorted(p.name for p in (tmp_path / "a1" / "tools").iterdir() if not p.name.startswith(".")) == [
        "greet@1.0",
        "greet@2.0",
    ]

    job, log = await _job_log(api, branch_id)  # the next job downloads nothing
    assert job["result"] == "passed", (job, log)
    assert "downloaded" not in log and log.count("cached copy") == 3, log

    r = await api.http.put(
        f"/stages/{stage['id']}", json={"schema_code": _stage('{"tool": "greet@1.0", "who": "x", "fail": True}')}
    )
    assert r.status_code == 200, r.text
    job, log = await _job_log(api, branch_id)  # the exit code decides the step's result
    assert job["steps"][0]["result"] == "failed" and "greet v1: hello x" in log, (job, log)

    # the agent checks the interpolated fields against the package's schema once more
    code = _stage('{"tool": "greet@1.0", "who": "#{args.WHO}"}').replace(
        '"parent": "root",', '"parent": "root", "parameters": [{"name": "WHO", "default": "x"}],'
    )
    r = await api.http.put(f"/stages/{stage['id']}", json={"schema_code": code})
    assert r.status_code == 200, r.text
    flow = await api.wait_flow((await api.flow(branch_id, args={"WHO": "y" * 30}))["id"])
    [job] = await api.jobs(flow["runs"][0]["id"])
    assert job["steps"][0]["result"] == "error", job
    assert "who: " in job["steps"][0]["message"] and "is too long" in job["steps"][0]["message"], job


def _archive(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                assert data is not None
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


async def test_archive_and_folder_registration_refuse_what_escapes(
    tmp_path: Path, server: Server, api: Api, database_url: str
) -> None:
    manifest = json.dumps({"name": "arch", "version": "1", "entry": "bin/run.sh"}).encode()
    script = b"#!/bin/sh\necho arch\n"
    headers = {"content-type": "application/gzip"}
    bad = [
        (
            [("kraken-tool.json", manifest, None), ("bin/run.sh", script, None), ("../escape.txt", b"x", None)],
            "leaves the tool's folder",
        ),
        (
            [("kraken-tool.json", manifest, None), ("bin/run.sh", script, None), ("/tmp/abs.txt", b"x", None)],
            "absolute",
        ),
        ([("kraken-tool.json", manifest, None), ("bin/run.sh", None, "/etc/passwd")], "not a regular file"),
        ([("bin/run.sh", script, None)], "no kraken-tool.json"),
    ]
    for members, message in bad:
        r = await api.http.post("/tools/archive", content=_archive(members), headers=headers)
        assert r.status_code == 422 and message in r.json()["detail"], (members, r.text)
    assert not (tmp_path.parent / "escape.txt").exists()
    big = await api.http.post("/tools/archive", content=b"\0" * ((16 << 20) + 1), headers=headers)
    assert big.status_code == 413, big.text
    assert await api.get("/tools") == []  # nothing was stored

    good = [("kraken-tool.json", manifest, None), ("bin/run.sh", script, None)]
    r = await api.http.post("/tools/archive", content=_archive(good), headers=headers)
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["version"], r.json()["source"]) == ("arch", "1", "archive")

    folder = tmp_path / "folder-tool"
    folder.mkdir()
    (folder / "kraken-tool.json").write_text(json.dumps({"name": "arch", "version": "2", "entry": "run.py"}))
    (folder / "run.py").write_text("print('folder')\n")
    (folder / "link").symlink_to("/etc/passwd")
    r = await api.http.post("/tools", json={"source": "directory", "path": str(folder)})
    assert r.status_code == 422 and "symlink" in r.json()["detail"], r.text
    (folder / "link").unlink()
    r = await api.http.post("/tools", json={"source": "directory", "path": str(folder)})
    assert r.status_code == 201, r.text
    r = await api.http.post("/tools", json={"source": "directory", "path": str(folder), "extra": 1})
    assert r.status_code == 422

    # only administrators register; every user lists
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            session.add(User(username="plain", password_hash=hash_password("plain-pw"), is_admin=False))
    finally:
        await db.dispose()
    plain = Api(server.url)
    try:
        await plain.login("plain", "plain-pw")
        r = await plain.http.post("/tools", json={"source": "directory", "path": str(folder)})
        assert r.status_code == 403 and "administrator" in r.text, r.text
        r = await plain.http.post("/tools/archive", content=_archive(good), headers=headers)
        assert r.status_code == 403, r.text
        assert [t["version"] for t in await plain.get("/tools")] == ["1", "2"]
    finally:
        await plain.close()

    # the agents' download route takes only a job transfer token
    async with httpx.AsyncClient(base_url=server.url) as anon:
        r = await anon.get("/api/agent/jobs/1/tools/arch/1", headers={"Authorization": f"Bearer {api.token}"})
    assert r.status_code == 401, r.text
