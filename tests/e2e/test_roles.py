"""Every operation of /openapi.json, called as anonymous, a non-member, a viewer, a member, a
maintainer and an administrator against a real server with real data, compared with the table
below.  A route without an entry in ``RULES`` fails the test: a new route must say who may call it.

What a caller gets:
- anonymous: 401 (routes for logged-in users);
- a user who cannot see the project: 404, as if it did not exist;
- a user whose role is below the route's: 403;
- a caller the route allows: anything but 401/403/404 (and never a 5xx): a 2xx, or a 409/422
  when the (deliberately empty) body is refused, which the role checks run before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kraken.artifacts.store import LocalStore
from kraken.core.db import Database
from kraken.models import Agent
from kraken.models.artifacts import Artifact, CacheEntry
from kraken.models.results import TestCase as CaseRow
from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

PASSWORD = "role-test-password"
CALLERS = ("anonymous", "outsider", "viewer", "member", "maintainer", "admin")
PROJECT_ROLES = ("viewer", "member", "maintainer")

# "public": anyone, anonymous too; "any": the same answer for every caller (its own credentials,
# e.g. a webhook's signature); "agent": agents only (every user is refused); "user": any
# logged-in user; "admin": system administrators; "viewer" / "member" / "maintainer": that role
# in the project the resource belongs to; "maintainer-anywhere": administrators and maintainers
# of some project (what they get is limited to their projects).
RULES: dict[str, str] = {
    "POST /api/auth/login": "public",
    "GET /api/auth/providers": "public",
    # OpenID Connect login: its own credentials (signed cookies); 404 where it is not configured
    "GET /api/auth/oidc/start": "any",
    "GET /api/auth/oidc/callback": "any",
    "POST /api/auth/oidc/token": "any",
    "GET /api/health": "public",
    "POST /api/webhooks/{project_id}/{provider}": "any",
    "GET /api/auth/me": "user",
    "POST /api/auth/logout": "user",
    "POST /api/auth/stream-token": "user",
    "GET /api/audit": "maintainer-anywhere",
    "GET /api/events": "user",
    "POST /api/stages/check": "user",
    "GET /api/projects": "user",
    "PATCH /api/users/me": "user",
    "GET /api/users/me/tokens": "user",
    "GET /api/tools": "user",
    "GET /api/logs/search": "user",
    "POST /api/users/me/tokens": "user",
    "DELETE /api/users/me/tokens/{token_id}": "user",
    # administrators
    "POST /api/projects": "admin",
    "POST /api/tools": "admin",
    "POST /api/tools/archive": "admin",
    "DELETE /api/tools/{name}": "admin",
    "DELETE /api/tools/{name}/{version}": "admin",
    "DELETE /api/projects/{project_id}": "admin",
    "GET /api/agents": "admin",
    "GET /api/agents/{agent_id}": "admin",
    "PATCH /api/agents/{agent_id}": "admin",
    "POST /api/agents/{agent_id}/approve": "admin",
    "POST /api/agents/{agent_id}/revoke": "admin",
    "GET /api/agent-groups": "admin",
    "GET /api/settings/agent-token": "admin",
    "GET /api/diagnostics": "admin",
    "GET /api/users": "admin",
    "POST /api/users": "admin",
    "GET /api/users/{user_id}": "admin",
    "PATCH /api/users/{user_id}": "admin",
    "DELETE /api/users/{user_id}": "admin",
    # agents
    "GET /api/agent/jobs/{job_id}/storage": "agent",
    "PUT /api/agent/jobs/{job_id}/artifacts": "agent",
    "GET /api/agent/jobs/{job_id}/artifacts": "agent",
    "GET /api/agent/jobs/{job_id}/artifacts/{artifact_id}": "agent",
    "GET /api/agent/jobs/{job_id}/cache": "agent",
    "GET /api/agent/jobs/{job_id}/tools/{name}/{version}": "agent",
    "GET /api/agent/jobs/{job_id}/cache/{entry_id}": "agent",
    "PUT /api/agent/jobs/{job_id}/cache": "agent",
    # viewers: reading
    "GET /api/projects/{project_id}": "viewer",
    "GET /api/projects/{project_id}/members": "viewer",
    "GET /api/branches/{branch_id}": "viewer",
    "GET /api/branches/{branch_id}/flows": "viewer",
    "GET /api/branches/{branch_id}/stages": "viewer",
    "GET /api/branches/{branch_id}/stats": "viewer",
    "GET /api/branches/{branch_id}/security": "viewer",
    "GET /api/branches/{branch_id}/retention": "viewer",
    "GET /api/branches/{branch_id}/cache": "viewer",
    "GET /api/branches/{branch_id}/quarantine": "viewer",
    "GET /api/branches/{branch_id}/quarantine-settings": "viewer",
    "GET /api/stages/{stage_id}": "viewer",
    "GET /api/stages/{stage_id}/triggers": "viewer",
    "GET /api/flows/{flow_id}": "viewer",
    "GET /api/flows/{flow_id}/artifacts": "viewer",
    "GET /api/flows/{flow_id}/summary": "viewer",
    "GET /api/runs/{run_id}": "viewer",
    "GET /api/runs/{run_id}/jobs": "viewer",
    "GET /api/runs/{run_id}/artifacts": "viewer",
    "GET /api/runs/{run_id}/results": "viewer",
    "GET /api/runs/{run_id}/failure-groups": "viewer",
    "GET /api/runs/{run_id}/culprits": "viewer",
    "POST /api/runs/{run_id}/culprits": "member",
    "POST /api/runs/{run_id}/reanalyze": "member",
    "GET /api/runs/{run_id}/reanalysis": "viewer",
    "GET /api/branches/{branch_id}/culprit-settings": "viewer",
    "PUT /api/branches/{branch_id}/culprit-settings": "maintainer",
    "GET /api/runs/{run_id}/failure-groups/{key}/tests": "viewer",
    "GET /api/runs/{run_id}/summary": "viewer",
    "GET /api/runs/{run_id}/issues": "viewer",
    "GET /api/jobs/{job_id}": "viewer",
    "GET /api/jobs/{job_id}/log": "viewer",
    "GET /api/jobs/{job_id}/log/stream": "viewer",
    "GET /api/artifacts/{artifact_id}": "viewer",
    "GET /api/artifacts/{artifact_id}/content": "viewer",
    "GET /api/runs/{run_id}/reports/{artifact_id}/{access_token}/{file}": "viewer",
    "GET /api/test-cases/{test_case_id}/history": "viewer",
    "GET /api/test-cases/{test_case_id}/comments": "viewer",
    # members: running things
    "POST /api/branches/{branch_id}/flows": "member",
    "POST /api/flows/{flow_id}/cancel": "member",
    "POST /api/flows/{flow_id}/runs": "member",
    "POST /api/runs/{run_id}/cancel": "member",
    "POST /api/jobs/{job_id}/cancel": "member",
    "POST /api/jobs/{job_id}/rerun": "member",
    "POST /api/test-cases/{test_case_id}/comments": "member",
    "POST /api/branches/{branch_id}/quarantine": "member",
    "DELETE /api/branches/{branch_id}/quarantine/{test_case_id}": "member",
    # maintainers: settings of the project
    "PATCH /api/projects/{project_id}": "maintainer",
    "POST /api/projects/{project_id}/archive": "maintainer",
    "POST /api/projects/{project_id}/unarchive": "maintainer",
    "PUT /api/projects/{project_id}/members": "maintainer",
    "POST /api/projects/{project_id}/branches": "maintainer",
    "GET /api/projects/{project_id}/secrets": "maintainer",
    "POST /api/projects/{project_id}/secrets": "maintainer",
    "GET /api/secrets/{secret_id}": "maintainer",
    "PUT /api/secrets/{secret_id}": "maintainer",
    "DELETE /api/secrets/{secret_id}": "maintainer",
    "GET /api/projects/{project_id}/webhook": "maintainer",
    "PUT /api/projects/{project_id}/webhook": "maintainer",
    "PATCH /api/branches/{branch_id}": "maintainer",
    "POST /api/branches/{branch_id}/archive": "maintainer",
    "POST /api/branches/{branch_id}/unarchive": "maintainer",
    "DELETE /api/branches/{branch_id}": "maintainer",
    "PATCH /api/branches/{branch_id}/sequences": "maintainer",
    "PUT /api/branches/{branch_id}/security": "maintainer",
    "PUT /api/branches/{branch_id}/retention": "maintainer",
    "PUT /api/branches/{branch_id}/quarantine-settings": "maintainer",
    "POST /api/branches/{branch_id}/stages": "maintainer",
    "PUT /api/stages/{stage_id}": "maintainer",
    "PATCH /api/stages/{stage_id}": "maintainer",
    "DELETE /api/stages/{stage_id}": "maintainer",
    "DELETE /api/cache/{entry_id}": "maintainer",
}

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any", "agents_group": "nobody-runs-this"}]}]}
"""


def expected(rule: str, caller: str) -> str:
    """'ok' (allowed), or the status the caller must get."""
    if rule == "public":
        return "ok"
    if rule == "any":
        return "same"
    if rule == "agent":
        return "agent-refused"
    if caller == "anonymous":
        return "401"
    if rule == "user" or caller == "admin":
        return "ok"
    if rule == "admin":
        return "403"
    if rule == "maintainer-anywhere":
        return "ok" if caller == "maintainer" else "403"
    if caller == "outsider":
        return "404"
    return "ok" if PROJECT_ROLES.index(caller) >= PROJECT_ROLES.index(rule) else "403"


def matches(expect: str, code: int) -> bool:
    if code >= 500:
        return False
    if expect == "ok":
        return code not in (401, 403, 404)
    if expect == "same":  # compared across the callers below
        return True
    if expect == "agent-refused":
        return code in (401, 403)
    return code == int(expect)


class World:
    """A private project P (branch, stage, flow, run, job, artifact, secret, cache entry, test
    case), its members, a non-member, and tokens for everyone."""

    def __init__(self, server: Server, database_url: str, data_dir: Path) -> None:
        self.server = server
        self.db = Database(database_url)
        self.data_dir = data_dir
        self.admin = Api(server.url)
        self.tokens: dict[str, str | None] = {"anonymous": None}
        self.user_ids: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.counter = 0

    def next_number(self) -> int:
        self.counter += 1
        return self.counter

    async def setup(self) -> None:
        await self.admin.login()
        self.tokens["admin"] = self.admin.token
        for name in ("outsider", *PROJECT_ROLES):
            user = await self.admin.post("/users", {"username": name, "password": PASSWORD}, 201)
            self.user_ids[name] = user["id"]
            await self.login(name)
        self.ids["user_id"] = (await self.admin.post("/users", {"username": "target", "password": PASSWORD}, 201))["id"]
        project_id, branch_id = await self.new_project("P")
        self.ids |= {"project_id": project_id, "branch_id": branch_id}
        self.ids["stage_id"] = (await self.admin.stage(branch_id, "waits", STAGE))["id"]
        flow = await self.admin.flow(branch_id)
        self.ids["flow_id"] = flow["id"]
        run_id = flow["runs"][0]["id"]
        self.ids["run_id"] = run_id
        jobs = await self.wait_jobs(run_id)
        self.ids["job_id"] = jobs[0]["id"]
        self.ids["secret_id"] = await self.new_secret()
        self.ids["entry_id"] = await self.new_cache_entry()
        await self.insert_artifact_agent_test_case()

    async def login(self, name: str) -> None:
        r = await self.admin.http.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.tokens[name] = r.json()["access_token"]

    async def new_project(self, name: str) -> tuple[int, int]:
        project_id, branch_id = await self.admin.project_with_branch(name)
        members = [{"user_id": self.user_ids[role], "role": role} for role in PROJECT_ROLES]
        r = await self.admin.http.put(f"/projects/{project_id}/members", json=members)
        assert r.status_code == 200, r.text
        return project_id, branch_id

    async def new_branch(self) -> int:
        n = self.next_number()
        body = {"name": f"b{n}", "branch_name": f"b{n}"}
        return (await self.admin.post(f"/projects/{self.ids['project_id']}/branches", body, 201))["id"]  # type: ignore[no-any-return]

    async def new_stage(self) -> int:
        n = self.next_number()
        return (await self.admin.stage(self.ids["branch_id"], f"s{n}", STAGE))["id"]  # type: ignore[no-any-return]

    async def new_secret(self) -> int:
        n = self.next_number()
        body = {"name": f"s{n}", "value": "v"}
        return (await self.admin.post(f"/projects/{self.ids['project_id']}/secrets", body, 201))["id"]  # type: ignore[no-any-return]

    async def new_tool(self) -> str:
        """A registered custom tool (version "1"), from a folder; its name."""
        name = f"tool{self.next_number()}"
        folder = self.data_dir.parent / "tools" / name
        folder.mkdir(parents=True)
        (folder / "kraken-tool.json").write_text(json.dumps({"name": name, "version": "1", "entry": "run.py"}))
        (folder / "run.py").write_text("print('x')\n")
        await self.admin.post("/tools", {"source": "directory", "path": str(folder)}, 201)
        return name

    async def new_cache_entry(self) -> int:
        n = self.next_number()
        async with self.db.transaction() as s:
            entry = CacheEntry(branch_id=self.ids["branch_id"], key=f"k{n}", size=1, sha256="0" * 64)
            s.add(entry)
            await s.flush()
            return entry.id or 0

    async def new_user(self) -> int:
        n = self.next_number()
        return (await self.admin.post("/users", {"username": f"u{n}", "password": PASSWORD}, 201))["id"]  # type: ignore[no-any-return]

    async def new_token(self, caller: str) -> int:
        headers = {"Authorization": f"Bearer {self.tokens[caller or 'admin']}"}
        r = await self.admin.http.post("/users/me/tokens", json={"name": "t", "scopes": ["read"]}, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]  # type: ignore[no-any-return]

    async def wait_jobs(self, run_id: int) -> list[dict[str, Any]]:
        import asyncio

        for _ in range(200):
            jobs: list[dict[str, Any]] = await self.admin.get(f"/runs/{run_id}/jobs")
            if jobs:
                return jobs
            await asyncio.sleep(0.05)
        raise AssertionError(f"run {run_id} got no jobs")

    async def insert_artifact_agent_test_case(self) -> None:
        content = b"artifact bytes\n"

        async def chunks() -> AsyncIterator[bytes]:
            yield content

        sha, size = await LocalStore(self.data_dir / "artifacts").put(chunks())
        assert sha == hashlib.sha256(content).hexdigest()
        async with self.db.transaction() as s:
            art = Artifact(
                branch_id=self.ids["branch_id"],
                flow_id=self.ids["flow_id"],
                run_id=self.ids["run_id"],
                job_id=self.ids["job_id"],
                stage_name="waits",
                path="out.txt",
                size=size,
                sha256=sha,
                report_entry=True,  # a one-page report too: GET .../reports/{artifact_id}/-/out.txt
            )
            agent = Agent(name="role-test-agent")
            case = CaseRow(project_id=self.ids["project_id"], name="suite::test_one")
            s.add_all([art, agent, case])
            await s.flush()
            self.ids |= {"artifact_id": art.id or 0, "agent_id": agent.id or 0, "test_case_id": case.id or 0}
            self.ids |= {"access_token": "-", "file": "out.txt"}

    async def fresh(self, param: str, caller: str) -> int:
        """A new resource for a call that deletes or archives it."""
        if param == "project_id":
            return (await self.new_project(f"fresh-{caller}-{self.next_number()}"))[0]
        makers = {
            "branch_id": self.new_branch,
            "stage_id": self.new_stage,
            "secret_id": self.new_secret,
            "entry_id": self.new_cache_entry,
            "user_id": self.new_user,
        }
        if param == "token_id":
            return await self.new_token("admin" if caller == "anonymous" else caller)
        if param == "test_case_id":  # releasing a test from quarantine leaves the test case
            return self.ids["test_case_id"]
        return await makers[param]()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path, op))
    return ops


def fill(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(ids.get(m.group(1), "github")), path)


def query_for(op: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and p.get("required"):
            params[p["name"]] = ids.get(p["name"], 1) if p["schema"].get("type") == "integer" else "x"
    return params


async def call(client: httpx.AsyncClient, method: str, url: str, token: str | None, query: dict[str, Any]) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kw: dict[str, Any] = {"headers": headers, "params": query}
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = {}
    async with client.stream(method, url, **kw) as r:  # streams (events, live logs): the status only
        return r.status_code


async def test_every_route_checks_the_callers_role(server: Server, database_url: str, tmp_path: Path) -> None:
    world = World(server, database_url, tmp_path / "server")
    try:
        await world.setup()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            spec = (await client.get("/openapi.json")).json()
            ops = operations(spec)
            missing = [f"{m} {p}" for m, p, _ in ops if f"{m} {p}" not in RULES]
            assert not missing, f"routes without an entry in RULES: {missing}"
            stale = set(RULES) - {f"{m} {p}" for m, p, _ in ops}
            assert not stale, f"entries of RULES without a route: {stale}"
            wrong: list[str] = []
            # logout ends the caller's sessions: it goes last
            ops.sort(key=lambda o: o[1] == "/api/auth/logout")
            for method, path, op in ops:
                rule = RULES[f"{method} {path}"]
                answers: dict[str, int] = {}
                for caller in CALLERS:
                    ids: dict[str, Any] = dict(world.ids)
                    params = re.findall(r"{(\w+)}", path)
                    if method == "DELETE" and path.startswith("/api/tools/"):
                        ids |= {"name": await world.new_tool(), "version": "1"}
                    elif params and (method == "DELETE" or path.endswith("/archive")):
                        ids[params[-1]] = await world.fresh(params[-1], caller)
                    ids.setdefault("token_id", 1)
                    url = fill(path, ids)
                    code = await call(client, method, url, world.tokens[caller], query_for(op, ids))
                    answers[caller] = code
                    want = expected(rule, caller)
                    if not matches(want, code):
                        wrong.append(f"{method} {path} as {caller}: {code}, expected {want} ({rule})")
                if rule == "any" and len(set(answers.values())) != 1:
                    wrong.append(f"{method} {path}: answers differ by caller: {answers}")
            assert not wrong, "\n".join(wrong)
    finally:
        await world.admin.close()
        await world.db.dispose()
