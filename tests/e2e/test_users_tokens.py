"""Users, sessions, public projects and personal access tokens against a real server."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kraken.core.db import Database
from kraken.models.base import utcnow
from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

PASSWORD = "users-test-password"


async def login(server: Server, username: str, password: str = PASSWORD) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url + "/api") as c:
        return await c.post("/auth/login", json={"username": username, "password": password})


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def user_token(api: Api, server: Server, name: str) -> tuple[int, str]:
    user = await api.post("/users", {"username": name, "password": PASSWORD}, 201)
    r = await login(server, name)
    assert r.status_code == 200, r.text
    return user["id"], r.json()["access_token"]


async def test_personal_access_tokens(server: Server, api: Api, database_url: str) -> None:
    project_id, branch_id = await api.project_with_branch("tokens")
    created: dict[str, Any] = await api.post("/users/me/tokens", {"name": "ci-read", "scopes": ["read"]}, 201)
    token = created["token"]
    assert token.startswith("kpat_") and created["scopes"] == ["read"] and created["last_used"] is None
    http = api.http
    # read works, anything above the scope is refused
    r = await http.get(f"/projects/{project_id}", headers=as_(token))
    assert r.status_code == 200, r.text
    r = await http.post(f"/branches/{branch_id}/flows", json={}, headers=as_(token))
    assert r.status_code == 403 and "trigger" in r.text, r.text
    r = await http.get(f"/projects/{project_id}", params={"access_token": token}, headers={"Authorization": ""})
    assert r.status_code == 401 and "Authorization header" in r.text, r.text
    r = await http.get("/agents", headers=as_(token))
    assert r.status_code == 403, r.text
    # only the hash is stored; the list shows no token, but the last use
    db = Database(database_url)
    try:
        async with db.session() as s:
            rows = (await s.execute(sa.text("SELECT token_hash FROM api_token"))).all()
        assert [r[0] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
        listed = await api.get("/users/me/tokens")
        assert "token" not in listed[0] and listed[0]["last_used"] is not None and not listed[0]["revoked"]
        # a token with more scopes triggers
        trig = (await api.post("/users/me/tokens", {"name": "t", "scopes": ["read", "trigger"]}, 201))["token"]
        r = await http.post(f"/branches/{branch_id}/flows", json={}, headers=as_(trig))
        assert r.status_code == 201, r.text
        # a token cannot make a token with more scopes than it has
        r = await http.post("/users/me/tokens", json={"name": "x", "scopes": ["write"]}, headers=as_(token))
        assert r.status_code == 403 and "scopes[0]" in r.text, r.text
        # revoked: refused at once
        r = await http.delete(f"/users/me/tokens/{created['id']}")
        assert r.status_code == 204
        r = await http.get(f"/projects/{project_id}", headers=as_(token))
        assert r.status_code == 401 and "revoked" in r.text, r.text
        # expired: refused
        async with db.transaction() as s:
            await s.execute(sa.text("UPDATE api_token SET expires = :e"), {"e": utcnow() - timedelta(seconds=1)})
        r = await http.get(f"/projects/{project_id}", headers=as_(trig))
        assert r.status_code == 401 and "expired" in r.text, r.text
    finally:
        await db.dispose()
    # bad input names the key
    r = await http.post("/users/me/tokens", json={"name": "x", "scopes": ["root"]})
    assert r.status_code == 422 and "scopes" in r.text


async def test_disabling_a_user_ends_sessions_and_tokens(server: Server, api: Api) -> None:
    user_id, token = await user_token(api, server, "alice")
    http = api.http
    pat = await http.post("/users/me/tokens", json={"name": "p", "scopes": ["read"]}, headers=as_(token))
    assert pat.status_code == 201, pat.text
    assert (await http.get("/auth/me", headers=as_(token))).status_code == 200
    r = await http.patch(f"/users/{user_id}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    for t in (token, pat.json()["token"]):
        r = await http.get("/auth/me", headers=as_(t))
        assert r.status_code == 401, r.text
    r = await login(server, "alice")
    assert r.status_code == 403 and "disabled" in r.text, r.text
    # the last administrator cannot be disabled
    me = await api.get("/auth/me")
    r = await http.patch(f"/users/{me['id']}", json={"disabled": True})
    assert r.status_code == 409 and "last enabled administrator" in r.text, r.text


async def test_logout_and_own_password(server: Server, api: Api) -> None:
    _, token = await user_token(api, server, "bob")
    http = api.http
    r = await http.patch("/users/me", json={"password": "a-new-password"}, headers=as_(token))
    assert r.status_code == 422 and "current_password" in r.text, r.text
    r = await http.patch(
        "/users/me", json={"password": "a-new-password", "current_password": "wrong"}, headers=as_(token)
    )
    assert r.status_code == 403, r.text
    r = await http.patch(
        "/users/me", json={"password": "a-new-password", "current_password": PASSWORD}, headers=as_(token)
    )
    assert r.status_code == 200, r.text
    assert (await http.get("/auth/me", headers=as_(token))).status_code == 401  # the session ended
    assert (await login(server, "bob")).status_code == 401
    r = await login(server, "bob", "a-new-password")
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert (await http.post("/auth/logout", headers=as_(token))).status_code == 204
    assert (await http.get("/auth/me", headers=as_(token))).status_code == 401


async def test_public_projects_and_listing(server: Server, api: Api) -> None:
    _, token = await user_token(api, server, "carol")
    public = await api.post("/projects", {"name": "open", "public": True}, 201)
    private = await api.post("/projects", {"name": "closed"}, 201)
    http = api.http
    listed = (await http.get("/projects", headers=as_(token))).json()
    assert [p["name"] for p in listed] == ["open"]
    assert (await http.get(f"/projects/{public['id']}", headers=as_(token))).status_code == 200
    assert (await http.get(f"/projects/{private['id']}", headers=as_(token))).status_code == 404
    r = await http.post(
        f"/projects/{public['id']}/branches", json={"name": "b", "branch_name": "b"}, headers=as_(token)
    )
    assert r.status_code == 403 and "maintainer" in r.text, r.text
    # a member of the private project sees it, with the role given
    me = (await http.get("/auth/me", headers=as_(token))).json()
    r = await http.put(f"/projects/{private['id']}/members", json=[{"user_id": me["id"], "role": "maintainer"}])
    assert r.status_code == 200 and r.json() == [{"user_id": me["id"], "username": "carol", "role": "maintainer"}]
    listed = (await http.get("/projects", headers=as_(token))).json()
    assert sorted(p["name"] for p in listed) == ["closed", "open"]
    roles = (await http.get("/auth/me", headers=as_(token))).json()["roles"]
    assert roles == {str(public["id"]): "viewer", str(private["id"]): "maintainer"}
    r = await http.post(
        f"/projects/{private['id']}/branches", json={"name": "b", "branch_name": "b"}, headers=as_(token)
    )
    assert r.status_code == 201, r.text
    r = await http.put(f"/projects/{private['id']}/members", json=[{"user_id": 99999, "role": "viewer"}])
    assert r.status_code == 422 and "[0].user_id" in r.text, r.text


STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any", "agents_group": "nobody-runs-this"}]}]}
"""


async def next_event(events: Any, kind: str) -> dict[str, Any]:
    import asyncio

    while True:
        got, data = await asyncio.wait_for(events.get(), 30)
        if got == kind:
            return data  # type: ignore[no-any-return]


async def next_flow_event(events: Any) -> dict[str, Any]:
    import asyncio

    while True:
        kind, data = await asyncio.wait_for(events.get(), 30)
        if kind == "flow" and data.get("created"):
            return data  # type: ignore[no-any-return]


async def test_event_stream_shows_only_visible_projects(server: Server, api: Api) -> None:
    member_id, member_token = await user_token(api, server, "dora")
    _, outsider_token = await user_token(api, server, "erin")
    private_id, private_branch = await api.project_with_branch("private")
    await api.stage(private_branch, "s", STAGE)
    public = await api.post("/projects", {"name": "public", "public": True}, 201)
    public_branch = (await api.post(f"/projects/{public['id']}/branches", {"name": "m", "branch_name": "m"}, 201))["id"]
    await api.stage(public_branch, "s", STAGE)
    r = await api.http.put(f"/projects/{private_id}/members", json=[{"user_id": member_id, "role": "viewer"}])
    assert r.status_code == 200, r.text
    member, outsider = Api(server.url), Api(server.url)
    member.token, outsider.token = member_token, outsider_token
    async with member.events() as member_events, outsider.events() as outsider_events:
        private_flow = await api.flow(private_branch)
        public_flow = await api.flow(public_branch)
        # the member sees both; the outsider's first flow event is the public one (events keep their order)
        assert (await next_flow_event(member_events))["id"] == private_flow["id"]
        assert (await next_flow_event(member_events))["id"] == public_flow["id"]
        assert (await next_flow_event(outsider_events))["id"] == public_flow["id"]
        # a run's events that are not about the run itself (its re-analysis) follow its project too
        runs = []
        for flow in (private_flow, public_flow):
            runs.append((await api.get(f"/flows/{flow['id']}"))["runs"][0]["id"])
            assert (await api.post(f"/runs/{runs[-1]}/reanalyze", expect=202))["state"] == "queued"
        assert (await next_event(member_events, "reanalysis"))["run_id"] == runs[0]
        assert (await next_event(outsider_events, "reanalysis"))["run_id"] == runs[1]
