"""Tokens in the address: only short-lived stream/download tokens, only for their purpose, only on
the live streams and downloads (``POST /api/auth/stream-token``)."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from kraken.core.security import create_stream_token
from tests.support.api import Api
from tests.support.procs import SECRET_KEY, Server

pytestmark = pytest.mark.e2e


async def _status(http: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    """A GET with the token in the address and no Authorization header; a stream is closed at
    its first bytes."""
    async with http.stream("GET", path, params={"access_token": token}, headers={"Authorization": ""}) as r:
        await r.aread() if r.status_code != 200 else None
        return r


async def test_query_string_takes_only_stream_tokens_of_the_right_purpose(server: Server, api: Api) -> None:
    _project_id, branch_id = await api.project_with_branch("stream-tokens")
    http = api.http
    pat = (await api.post("/users/me/tokens", {"name": "s", "scopes": ["read"]}, 201))["token"]
    assert api.token is not None
    for token in (api.token, pat):  # a login token or a PAT in the address: refused, saying why
        for path in ("/events", f"/branches/{branch_id}/flows"):
            r = await _status(http, path, token)
            assert r.status_code == 401, (path, r.status_code)
            assert "Authorization header" in r.text and "stream-token" in r.text, r.text

    events = await api.post("/auth/stream-token", {"purpose": "events"})
    download = await api.post("/auth/stream-token", {"purpose": "download", "expires_in": 60})
    assert datetime.fromisoformat(download["expires_at"]) < datetime.fromisoformat(events["expires_at"])

    r = await _status(http, "/events", events["token"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    # the wrong purpose, a route that takes no token in the address, the header: all refused
    r = await _status(http, "/events", download["token"])
    assert r.status_code == 401 and "'download'" in r.text and "'events'" in r.text, r.text
    r = await _status(http, f"/branches/{branch_id}/flows", events["token"])
    assert r.status_code == 401 and "only live streams and downloads" in r.text, r.text
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {events['token']}"})
    assert r.status_code == 401 and "stream token" in r.text, r.text

    # expired: refused
    expired, _ = create_stream_token("admin", SECRET_KEY, "events", -5, 0)
    r = await _status(http, "/events", expired)
    assert r.status_code == 401 and "expired" in r.text, r.text

    # bad input: a clear 422 naming the field
    bad = (({"purpose": "everything"}, "purpose"), ({"purpose": "events", "expires_in": 3600}, "expires_in"))
    for body, field in bad:
        r = await http.post("/auth/stream-token", json=body)
        assert r.status_code == 422 and field in r.text, r.text


async def test_a_stream_token_ends_with_the_session_or_the_token_that_made_it(server: Server, api: Api) -> None:
    pat = await api.post("/users/me/tokens", {"name": "s", "scopes": ["read"]}, 201)
    http = api.http
    as_pat = {"Authorization": f"Bearer {pat['token']}"}
    r = await http.post("/auth/stream-token", json={"purpose": "events"}, headers=as_pat)
    assert r.status_code == 200, r.text
    from_pat = r.json()["token"]
    assert (await _status(http, "/events", from_pat)).status_code == 200
    assert (await http.delete(f"/users/me/tokens/{pat['id']}")).status_code == 204
    r = await _status(http, "/events", from_pat)
    assert r.status_code == 401 and "revoked" in r.text, r.text

    from_login = (await api.post("/auth/stream-token", {"purpose": "download"}))["token"]
    assert (await http.post("/auth/logout")).status_code == 204
    r = await _status(http, "/events", from_login)
    assert r.status_code == 401
