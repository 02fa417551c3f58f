"""LDAP login against a real OpenLDAP ``slapd`` with its own tree (``tests/support/slapd.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import Api
from tests.support.procs import Server
from tests.support.slapd import SERVICE_PASSWORD, Slapd

pytestmark = pytest.mark.e2e

USERS = {"alice": "alice-pass-1", "bob": "bob-pass-1", "carol": "carol-pass-1", "dave": "dave-ldap-1"}
GROUPS = {"developers": ["alice"], "watchers": ["bob", "alice"], "kraken-admins": ["carol"]}
MAPPING = {
    "KRAKEN_LDAP_ADMIN_GROUPS": json.dumps(["kraken-admins"]),
    "KRAKEN_LDAP_GROUP_ROLES": json.dumps(
        {"developers": {"ldap-proj": "member"}, "watchers": {"ldap-proj": "viewer", "docs": "viewer"}}
    ),
}


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    directory = Slapd(tmp_path, USERS, GROUPS)
    directory.start()
    yield directory
    directory.stop()


async def login(server: Server, username: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url + "/api", timeout=30) as c:
        return await c.post("/auth/login", json={"username": username, "password": password})


async def me(server: Server, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url + "/api", timeout=30) as c:
        r = await c.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


async def test_ldap_login_creates_users_and_maps_groups_to_roles(
    tmp_path: Path, database_url: str, slapd: Slapd
) -> None:
    server = Server(tmp_path, database_url=database_url, **slapd.env(**MAPPING))
    api = Api(server.url)
    try:
        await api.login()
        ldap_proj, _ = await api.project_with_branch("ldap-proj")
        docs, _ = await api.project_with_branch("docs")
        by_hand, _ = await api.project_with_branch("by-hand")

        # good login: the user is created, recorded as an LDAP user, with the roles of the groups
        r = await login(server, "alice", USERS["alice"])
        assert r.status_code == 200, r.text
        alice = await me(server, r.json()["access_token"])
        assert alice["is_admin"] is False and alice["provider"] == "ldap"
        assert alice["roles"] == {str(ldap_proj): "member", str(docs): "viewer"}
        users = {u["username"]: u for u in await api.get("/users")}
        assert users["alice"]["provider"] == "ldap" and users["admin"]["provider"] == "local"

        # the name as typed differs from the directory's: the same user
        r = await login(server, "ALICE", USERS["alice"])
        assert r.status_code == 200, r.text
        assert (await me(server, r.json()["access_token"]))["id"] == alice["id"]

        # wrong password, unknown user, empty password: 401, and no user is created
        for name, password in (("alice", "wrong-pass"), ("nobody", "whatever-1"), ("bob", ""), ("a*", "x")):
            r = await login(server, name, password)
            assert r.status_code == 401 and "wrong username or password" in r.text, (name, r.text)
        assert "nobody" not in {u["username"] for u in await api.get("/users")}

        # an admin group makes a system administrator
        r = await login(server, "carol", USERS["carol"])
        assert r.status_code == 200, r.text
        assert (await me(server, r.json()["access_token"]))["is_admin"] is True

        # roles are re-set from the groups at each login; memberships by hand in unmapped projects stay
        r = await api.http.put(f"/projects/{by_hand}/members", json=[{"user_id": alice["id"], "role": "maintainer"}])
        assert r.status_code == 200, r.text
        slapd.set_members("developers", ["bob"])
        slapd.set_members("kraken-admins", ["alice"])
        r = await login(server, "alice", USERS["alice"])
        assert r.status_code == 200, r.text
        alice = await me(server, r.json()["access_token"])
        assert alice["is_admin"] is True
        r = await api.http.get(f"/projects/{ldap_proj}/members")
        assert {m["username"]: m["role"] for m in r.json()} == {"alice": "viewer"}, r.text
        r = await api.http.get(f"/projects/{by_hand}/members")
        assert {m["username"]: m["role"] for m in r.json()} == {"alice": "maintainer"}, r.text
        r = await login(server, "bob", USERS["bob"])
        bob = await me(server, r.json()["access_token"])
        assert bob["is_admin"] is False and bob["roles"] == {str(ldap_proj): "member", str(docs): "viewer"}
        r = await login(server, "carol", USERS["carol"])
        assert (await me(server, r.json()["access_token"]))["is_admin"] is False

        # the directory keeps the name and password: changing them here is refused
        r = await api.http.patch(f"/users/{alice['id']}", json={"password": "new-password-1"})
        assert r.status_code == 409 and "ldap" in r.text, r.text
        r = await api.http.patch(f"/users/{alice['id']}", json={"username": "alice2"})
        assert r.status_code == 409 and "username" in r.text, r.text
        # a disabled LDAP user cannot log in
        r = await api.http.patch(f"/users/{bob['id']}", json={"disabled": True})
        assert r.status_code == 200, r.text
        r = await login(server, "bob", USERS["bob"])
        assert r.status_code == 403 and "disabled" in r.text, r.text

        # a local account keeps its name: the directory's namesake cannot take it over
        await api.post("/users", {"username": "dave", "password": "dave-local-1"}, 201)
        r = await login(server, "dave", USERS["dave"])
        assert r.status_code == 401, r.text
        r = await login(server, "DAVE", USERS["dave"])
        assert r.status_code == 409 and "local account" in r.text, r.text
        r = await login(server, "dave", "dave-local-1")
        assert r.status_code == 200, r.text

        # the service account's password is in no answer of the API
        for path in ("/users", "/auth/me", "/settings/agent-token"):
            assert SERVICE_PASSWORD not in (await api.http.get(path)).text
    finally:
        await api.close()
        server.stop()


async def test_ldap_server_down_is_503_and_local_login_goes_on(tmp_path: Path, slapd: Slapd) -> None:
    slapd.stop()
    server = Server(tmp_path, **slapd.env())
    try:
        r = await login(server, "alice", USERS["alice"])
        assert r.status_code == 503 and "LDAP server cannot be used" in r.text, r.text
        assert slapd.url not in r.text  # the directory's address is for the log, not for anonymous callers
        api = Api(server.url)
        await api.login()  # the local administrator does not need the directory
        await api.close()
        slapd.start()
        r = await login(server, "alice", USERS["alice"])
        assert r.status_code == 200, r.text
    finally:
        server.stop()


async def test_wrong_service_account_password_is_503(tmp_path: Path, slapd: Slapd) -> None:
    server = Server(tmp_path, **slapd.env(KRAKEN_LDAP_BIND_PASSWORD="not-the-password"))
    try:
        r = await login(server, "alice", USERS["alice"])
        assert r.status_code == 503, r.text
        assert "refused the service account" in (tmp_path / "server.log").read_text()
    finally:
        server.stop()


async def test_local_accounts_off_but_break_glass(tmp_path: Path, database_url: str, slapd: Slapd) -> None:
    server = Server(tmp_path, database_url=database_url, **slapd.env())
    api = Api(server.url)
    try:
        await api.login()
        await api.post("/users", {"username": "erin", "password": "erin-local-1"}, 201)
        r = await login(server, "erin", "erin-local-1")
        assert r.status_code == 200, r.text
        async with httpx.AsyncClient(base_url=server.url + "/api", timeout=30) as c:
            r = await c.post(
                "/users/me/tokens",
                json={"name": "script", "scopes": ["read"]},
                headers={"Authorization": f"Bearer {r.json()['access_token']}"},
            )
            assert r.status_code == 201, r.text
            erin_pat = r.json()["token"]
    finally:
        await api.close()
        server.stop()
    off = {"KRAKEN_LOCAL_ACCOUNTS": "false", "KRAKEN_LOCAL_BREAK_GLASS": '["admin"]'}
    server = Server(tmp_path, database_url=database_url, name="server", **slapd.env(**off))
    api = Api(server.url)
    try:
        r = await login(server, "erin", "erin-local-1")
        assert r.status_code == 401, r.text
        async with httpx.AsyncClient(base_url=server.url + "/api", timeout=30) as c:  # her token acts no more
            r = await c.get("/auth/me", headers={"Authorization": f"Bearer {erin_pat}"})
            assert r.status_code == 401 and "local accounts are turned off" in r.text, r.text
        await api.login()  # the break-glass administrator
        assert (await api.get("/auth/me"))["is_admin"] is True
        r = await api.http.post("/users", json={"username": "frank", "password": "frank-local-1"})
        assert r.status_code == 409 and "local accounts are turned off" in r.text, r.text
        r = await login(server, "alice", USERS["alice"])
        assert r.status_code == 200, r.text
    finally:
        await api.close()
        server.stop()
