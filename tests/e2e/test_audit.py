"""The audit log against a real server: every kind of change leaves an entry saying who, what,
where from; settings with their values before and after; never a secret's value."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kraken.core.db import Database
from kraken.models import Agent
from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

PASSWORD = "audit-test-password"
SECRET_VALUES = ("s3cr3t-value-ONE", "s3cr3t-value-TWO", "webhook-signing-S3CRET")
STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any", "agents_group": "nobody-runs-this"}]}]}
"""


@dataclass
class Change:
    """One kind of change: who makes it, the request, and the entry it must leave."""

    what: str
    who: str  # "admin" or "maint"
    method: str
    path: Callable[[dict[str, int]], str]
    body: Callable[[dict[str, int]], Any]
    action: str
    project: bool  # the entry carries the project's id
    keep: str | None = None  # remember the answer's id as ids[keep]


CHANGES = [
    Change(
        "stage created",
        "maint",
        "POST",
        lambda i: f"/branches/{i['branch']}/stages",
        lambda i: {"name": "s", "schema_code": STAGE},
        "create_stage",
        True,
        "stage",
    ),
    Change(
        "stage edited",
        "maint",
        "PATCH",
        lambda i: f"/stages/{i['stage']}",
        lambda i: {"schema_code": STAGE + "\n"},
        "update_stage",
        True,
    ),
    Change(
        "secret created",
        "maint",
        "POST",
        lambda i: f"/projects/{i['project']}/secrets",
        lambda i: {"name": "deploy", "value": SECRET_VALUES[0]},
        "create_secret",
        True,
        "secret",
    ),
    Change(
        "secret changed",
        "maint",
        "PUT",
        lambda i: f"/secrets/{i['secret']}",
        lambda i: {"value": SECRET_VALUES[1]},
        "update_secret",
        True,
    ),
    Change(
        "members set",
        "admin",
        "PUT",
        lambda i: f"/projects/{i['project']}/members",
        lambda i: [{"user_id": i["maint_id"], "role": "maintainer"}, {"user_id": i["viewer_id"], "role": "viewer"}],
        "set_members",
        True,
    ),
    Change(
        "retention set",
        "maint",
        "PUT",
        lambda i: f"/branches/{i['branch']}/retention",
        lambda i: {"keep_flows": 7},
        "set_retention",
        True,
    ),
    Change(
        "project settings",
        "maint",
        "PATCH",
        lambda i: f"/projects/{i['project']}",
        lambda i: {"description": "audited"},
        "patch_project",
        True,
    ),
    Change(
        "webhook set",
        "maint",
        "PUT",
        lambda i: f"/projects/{i['project']}/webhook",
        lambda i: {"secret": SECRET_VALUES[2], "providers": ["github"]},
        "set_webhook",
        True,
    ),
    Change(
        "token made",
        "maint",
        "POST",
        lambda i: "/users/me/tokens",
        lambda i: {"name": "ci", "scopes": ["read"]},
        "create_token",
        False,
        "token",
    ),
    Change(
        "token revoked",
        "maint",
        "DELETE",
        lambda i: f"/users/me/tokens/{i['token']}",
        lambda i: None,
        "revoke_token",
        False,
    ),
    Change(
        "flow run",
        "maint",
        "POST",
        lambda i: f"/branches/{i['branch']}/flows",
        lambda i: {"kind": "ci"},
        "create_flow",
        True,
        "flow",
    ),
    Change("job cancelled", "maint", "POST", lambda i: f"/jobs/{i['job']}/cancel", lambda i: None, "cancel_job", True),
    Change("job rerun", "maint", "POST", lambda i: f"/jobs/{i['job']}/rerun", lambda i: None, "rerun_job", True),
    Change(
        "flow cancelled", "maint", "POST", lambda i: f"/flows/{i['flow']}/cancel", lambda i: None, "cancel_flow", True
    ),
    Change(
        "agent changed",
        "admin",
        "PATCH",
        lambda i: f"/agents/{i['agent']}",
        lambda i: {"enabled": False},
        "patch_agent",
        False,
    ),
    Change(
        "user created",
        "admin",
        "POST",
        lambda i: "/users",
        lambda i: {"username": "audit-new", "password": "new-user-password"},
        "create_user",
        False,
        "new_user",
    ),
    Change(
        "user role changed",
        "admin",
        "PATCH",
        lambda i: f"/users/{i['new_user']}",
        lambda i: {"is_admin": True, "password": "changed-password-1"},
        "patch_user",
        False,
    ),
    Change(
        "secret deleted", "maint", "DELETE", lambda i: f"/secrets/{i['secret']}", lambda i: None, "delete_secret", True
    ),
]


async def _login(server: Server, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url + "/api", timeout=30)
    r = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return client


async def _first_job(api: Api, flow_id: int, queue: asyncio.Queue[tuple[str, Any]]) -> int:
    while True:  # the run's jobs appear once its stage code was evaluated: a job event says so
        kind, data = await asyncio.wait_for(queue.get(), 30)
        if kind == "job":
            jobs = await api.get(f"/runs/{data['run_id']}/jobs")
            run = await api.get(f"/runs/{data['run_id']}")
            if run["flow_id"] == flow_id and jobs:
                return int(jobs[0]["id"])


async def test_every_kind_of_change_is_audited_and_no_secret_is(server: Server, api: Api, database_url: str) -> None:
    project_id, branch_id = await api.project_with_branch("audited")
    maint = await api.post("/users", {"username": "audit-maint", "password": PASSWORD}, 201)
    viewer = await api.post("/users", {"username": "audit-viewer", "password": PASSWORD}, 201)
    await api.http.put(f"/projects/{project_id}/members", json=[{"user_id": maint["id"], "role": "maintainer"}])
    db = Database(database_url)
    async with db.transaction() as s:
        agent = Agent(name=f"audit-agent-{project_id}")
        s.add(agent)
        await s.flush()
        agent_id = agent.id or 0
    ids = {
        "project": project_id,
        "branch": branch_id,
        "maint_id": maint["id"],
        "viewer_id": viewer["id"],
        "agent": agent_id,
    }
    clients = {"admin": api.http, "maint": await _login(server, "audit-maint")}
    seen_viewer = await _login(server, "audit-viewer")
    created_ids: dict[str, int] = {}
    try:
        async with api.events() as queue:
            for change in CHANGES:
                body = change.body(ids)
                r = await clients[change.who].request(
                    change.method, change.path(ids), **({"json": body} if body is not None else {})
                )
                assert r.status_code < 300, f"{change.what}: {r.status_code} {r.text}"
                if change.keep:
                    ids[change.keep] = created_ids[change.keep] = r.json()["id"]
                if change.keep == "flow":
                    ids["job"] = await _first_job(api, ids["flow"], queue)

        page = await api.get("/audit", params={"limit": 500})
        entries = list(reversed(page["items"]))
        # the setup (project, branch, users, members) came first; then one entry per change, in order
        ours = entries[-len(CHANGES) :]
        wrong = []
        for change, entry in zip(CHANGES, ours, strict=True):
            who = "admin" if change.who == "admin" else "audit-maint"
            if (entry["action"], entry["username"], entry["method"]) != (change.action, who, change.method):
                wrong.append(f"{change.what}: {entry}")
            if entry["resource"] != change.path(ids) or entry["client_ip"] != "127.0.0.1":
                wrong.append(f"{change.what}: resource/address {entry['resource']} {entry['client_ip']}")
            if (entry["project_id"] == project_id) != change.project:
                wrong.append(f"{change.what}: project {entry['project_id']}")
            if change.keep and entry["details"].get("id") != created_ids[change.keep]:
                wrong.append(f"{change.what}: created id {entry['details']}")
        assert not wrong, "\n".join(wrong)

        by_action = {e["action"]: e for e in ours}
        assert by_action["set_retention"]["details"]["before"]["keep_flows"] is None
        assert by_action["set_retention"]["details"]["after"]["keep_flows"] == 7
        assert by_action["patch_project"]["details"]["before"]["description"] == ""
        assert by_action["patch_project"]["details"]["after"]["description"] == "audited"
        assert by_action["set_webhook"]["details"]["after"]["providers"] == ["github"]

        # never a secret's value, a password or a token: not in the API's answer, not in the table
        async with db.session() as s:
            rows = (await s.execute(sa.text("SELECT * FROM audit_entry"))).all()
        stored = json.dumps([list(map(str, r)) for r in rows]) + json.dumps(page)
        for leaked in (*SECRET_VALUES, PASSWORD, "new-user-password", "changed-password-1", "kpat_"):
            assert leaked not in stored, leaked

        # who reads what: a maintainer their project's entries only, a viewer nothing
        mine = (await clients["maint"].get("/audit", params={"limit": 500})).json()["items"]
        assert mine and {e["project_id"] for e in mine} == {project_id}
        r = await seen_viewer.get("/audit")
        assert r.status_code == 403, r.text

        # filters and keyset pages
        only = await api.get("/audit", params={"user": "audit-maint", "action": "update_secret"})
        assert [e["action"] for e in only["items"]] == ["update_secret"]
        of_project = (await api.get("/audit", params={"project": project_id}))["items"]
        assert of_project and all(e["project_id"] == project_id for e in of_project)
        until = (await api.get("/audit", params={"until": ours[0]["created"]}))["items"]
        assert all(e["id"] < ours[0]["id"] for e in until)
        paged: list[dict[str, Any]] = []
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 4, **({"before": before} if before else {})}
            got = await api.get("/audit", params=params)
            paged += got["items"]
            before = got["next_before"]
            if before is None:
                break
        assert [e["id"] for e in paged] == [e["id"] for e in page["items"]]
        r = await api.http.get("/audit", params={"limit": 0})
        assert r.status_code == 422 and "limit" in r.text
    finally:
        await clients["maint"].aclose()
        await seen_viewer.aclose()
        await db.dispose()


async def test_reads_refusals_and_agents_leave_no_entry(server: Server, api: Api) -> None:
    project_id, _ = await api.project_with_branch("quiet")
    before = (await api.get("/audit"))["items"][0]["id"]
    await api.get(f"/projects/{project_id}")
    r = await api.http.post(f"/projects/{project_id}/secrets", json={"name": "bad name!", "value": "x"})
    assert r.status_code == 422
    await api.post("/auth/stream-token", {"purpose": "events"})
    await api.post("/stages/check", {"schema_code": STAGE})
    assert (await api.get("/audit"))["items"][0]["id"] == before
