"""OpenID Connect login against a real provider (``django-oidc-provider`` in a tiny Django site,
``tests/support/oidc_provider.py``): the whole code flow with PKCE, groups mapped to roles, and
each way it must fail: a wrong state, no flow cookie, a wrong nonce, a declined consent, a
provider that is down; forged and tampered ID tokens against the provider's real keys."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kraken.core.config import Settings
from kraken.core.oidc import OidcClient, OidcRefused, OidcUnavailable
from tests.support.api import Api
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, authorize
from tests.support.procs import Server, free_port

pytestmark = pytest.mark.e2e

USERS = {"olivia": "olivia-pass-1", "oscar": "oscar-pass-1", "dave": "dave-oidc-1"}
GROUPS = {"developers": ["olivia"], "kraken-admins": ["oscar"]}
MAPPING = {
    "KRAKEN_OIDC_ADMIN_GROUPS": json.dumps(["kraken-admins"]),
    "KRAKEN_OIDC_GROUP_ROLES": json.dumps({"developers": {"oidc-proj": "member"}}),
}


@pytest.fixture
def kraken_port() -> int:
    return free_port()


@pytest.fixture
def provider(tmp_path: Path, kraken_port: int) -> Iterator[OidcProvider]:
    idp = OidcProvider(tmp_path, USERS, GROUPS, f"http://127.0.0.1:{kraken_port}/api/auth/oidc/callback")
    idp.start()
    yield idp
    idp.stop()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def oidc_login(kraken: httpx.AsyncClient, username: str, **url_changes: str) -> httpx.Response:
    """Start at Kraken, log in at the provider, come back: Kraken's answer to the callback."""
    r = await kraken.get("/api/auth/oidc/start", params={"next": "/projects"})
    assert r.status_code == 302, r.text
    back = await authorize(with_query(r.headers["location"], **url_changes), username, USERS[username])
    return await kraken.get(back)


async def finish(kraken: httpx.AsyncClient, callback: httpx.Response) -> dict[str, Any]:
    """The web UI's part: fetch the token the callback left in its cookie, then who am I."""
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == "/login?oidc=1&next=/projects"
    assert "access_token" not in callback.headers["location"]
    r = await kraken.post("/api/auth/oidc/token")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = await kraken.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_oidc_login_creates_users_with_the_roles_of_their_groups(
    tmp_path: Path, database_url: str, provider: OidcProvider, kraken_port: int
) -> None:
    url = f"http://127.0.0.1:{kraken_port}"
    server = Server(tmp_path, database_url=database_url, port=kraken_port, **provider.env_for_kraken(url, **MAPPING))
    api = Api(server.url)
    try:
        await api.login()
        project, _ = await api.project_with_branch("oidc-proj")
        async with httpx.AsyncClient(base_url=url, timeout=30) as kraken:
            r = await kraken.get("/api/auth/providers")
            assert r.json() == {"ldap": False, "oidc": {"name": "Test SSO", "start_url": "/api/auth/oidc/start"}}
            r = await kraken.get("/api/auth/oidc/start")
            params = dict(parse_qsl(urlsplit(r.headers["location"]).query))
            assert params["code_challenge_method"] == "S256" and params["client_id"] == CLIENT_ID
            assert {"state", "nonce", "code_challenge"} <= params.keys() and "code_verifier" not in params
            assert CLIENT_SECRET not in r.headers["location"]

            olivia = await finish(kraken, await oidc_login(kraken, "olivia"))
            assert olivia["username"] == "olivia" and olivia["provider"] == "oidc"
            assert olivia["is_admin"] is False and olivia["roles"] == {str(project): "member"}
            # the token is handed over once
            r = await kraken.post("/api/auth/oidc/token")
            assert r.status_code == 401 and "no OpenID Connect login to finish" in r.text, r.text

            oscar = await finish(kraken, await oidc_login(kraken, "oscar"))
            assert oscar["is_admin"] is True and oscar["provider"] == "oidc"

            # a second login is the same user
            again = await finish(kraken, await oidc_login(kraken, "olivia"))
            assert again["id"] == olivia["id"]

            # the name of a local account is not taken over
            await api.post("/users", {"username": "dave", "password": "dave-local-1"}, 201)
            r = await oidc_login(kraken, "dave")
            assert r.status_code == 409 and "local account" in r.text, r.text

            # the provider gives the name "oscar" to someone else (another sub): not the same user
            provider.recreate_user("oscar", USERS["oscar"])
            r = await oidc_login(kraken, "oscar")
            assert r.status_code == 409 and "another oidc user" in r.text, r.text

            # a disabled user is refused
            r = await api.http.patch(f"/users/{olivia['id']}", json={"disabled": True})
            assert r.status_code == 200, r.text
            r = await oidc_login(kraken, "olivia")
            assert r.status_code == 403 and "disabled" in r.text, r.text

            # an OIDC user has no password in Kraken: the password form refuses them
            r = await kraken.post("/api/auth/login", json={"username": "oscar", "password": ""})
            assert r.status_code in (401, 422), r.text
        for path in ("/users", "/auth/me", "/auth/providers"):
            assert CLIENT_SECRET not in (await api.http.get(path)).text
    finally:
        await api.close()
        server.stop()


async def test_wrong_state_nonce_consent_are_refused(tmp_path: Path, provider: OidcProvider, kraken_port: int) -> None:
    url = f"http://127.0.0.1:{kraken_port}"
    server = Server(tmp_path, port=kraken_port, **provider.env_for_kraken(url))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as kraken:
            # a state that is not the one of the login started in this browser
            r = await kraken.get("/api/auth/oidc/start")
            back = await authorize(r.headers["location"], "olivia", USERS["olivia"])
            r = await kraken.get(with_query(back, state="forged-state"))
            assert r.status_code == 400 and "state" in r.text, r.text
            # in a browser, the same refusal is a page that says why, and the flow cookie is dropped
            r = await kraken.get("/api/auth/oidc/start")
            back = await authorize(r.headers["location"], "olivia", USERS["olivia"])
            r = await kraken.get(with_query(back, state="<b>forged</b>"), headers={"Accept": "text/html"})
            assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), r.text
            assert "is not the one of this login" in r.text and "<b>forged" not in r.text
            assert 'href="/login"' in r.text and "kraken_oidc_flow" not in kraken.cookies
            # the right callback, but in another browser (no flow cookie)
            async with httpx.AsyncClient(timeout=30) as other:
                r = await other.get(back)
                assert r.status_code == 400 and "no OpenID Connect login was started" in r.text, r.text
            # a forged flow cookie
            forged = jwt.encode({"state": "x"}, "a guessed key of 32 bytes or more", algorithm="HS256")
            kraken.cookies.set("kraken_oidc_flow", forged, domain="127.0.0.1", path="/api/auth/oidc")
            r = await kraken.get(with_query(back, state="x"))
            assert r.status_code == 400 and "not Kraken's" in r.text, r.text
            kraken.cookies.clear()

            # a code issued for another nonce (an ID token replayed from another login)
            r = await oidc_login(kraken, "olivia", nonce="nonce-of-another-login")
            assert r.status_code == 401 and "nonce" in r.text, r.text

            # a PKCE challenge that is not this login's: the provider refuses the code
            r = await oidc_login(kraken, "olivia", code_challenge="A" * 43)
            assert r.status_code == 401 and "refused" in r.text, r.text

            # the user declines at the consent page
            r = await kraken.get("/api/auth/oidc/start")
            back = await authorize(r.headers["location"], "olivia", USERS["olivia"], allow=False)
            r = await kraken.get(back)
            assert r.status_code == 401 and "access_denied" in r.text, r.text
            r = await kraken.post("/api/auth/oidc/token")
            assert r.status_code == 401, r.text
    finally:
        server.stop()


async def test_provider_down_is_503(tmp_path: Path, provider: OidcProvider, kraken_port: int) -> None:
    url = f"http://127.0.0.1:{kraken_port}"
    server = Server(tmp_path, port=kraken_port, **provider.env_for_kraken(url))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as kraken:
            # down after the start: the code cannot be exchanged
            r = await kraken.get("/api/auth/oidc/start")
            back = await authorize(r.headers["location"], "olivia", USERS["olivia"])
            provider.stop()
            r = await kraken.get(back)
            assert r.status_code == 503 and "cannot be used now" in r.text, r.text
            assert provider.url not in r.text
            # the discovery document is kept: the start still sends the browser on (where the
            # provider's own page will say it is down)
            r = await kraken.get("/api/auth/oidc/start")
            assert r.status_code == 302 and r.headers["location"].startswith(provider.issuer), r.text
            # the local administrator logs in meanwhile
            api = Api(server.url)
            await api.login()
            await api.close()
            assert "OpenID Connect provider" in (tmp_path / "server.log").read_text()
    finally:
        server.stop()


async def test_never_reached_provider_is_503(tmp_path: Path) -> None:
    port = free_port()
    server = Server(
        tmp_path,
        port=port,
        KRAKEN_PUBLIC_URL=f"http://127.0.0.1:{port}",
        KRAKEN_OIDC_ISSUER=f"http://127.0.0.1:{free_port()}/openid",
        KRAKEN_OIDC_CLIENT_ID="c",
        KRAKEN_OIDC_CLIENT_SECRET="s",
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as kraken:
            r = await kraken.get("/api/auth/oidc/start")
            assert r.status_code == 503 and "cannot be used now" in r.text, r.text
            assert (await kraken.get("/api/auth/providers")).json()["oidc"]["name"] == "OpenID Connect"
    finally:
        server.stop()


def forge(provider: OidcProvider, kid: str, key: Any = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "1",
        "iat": now,
        "exp": now + 300,
        "nonce": "n1",
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key or provider.private_key, algorithm="RS256", headers={"kid": kid})


async def test_id_token_checks_against_the_providers_keys(provider: OidcProvider, kraken_port: int) -> None:
    settings = Settings(  # type: ignore[call-arg]
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        public_url=f"http://127.0.0.1:{kraken_port}",
    )
    client = OidcClient(settings)
    async with httpx.AsyncClient(timeout=30) as http:
        kid = (await http.get(f"{provider.issuer}/jwks")).json()["keys"][0]["kid"]
    assert (await client.verify_id_token(forge(provider, kid), "n1"))["sub"] == "1"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = forge(provider, kid)
    head, _body, sig = good.split(".")
    tampered_body = jwt.utils.base64url_encode(
        json.dumps({**jwt.decode(good, options={"verify_signature": False}), "sub": "admin"}).encode()
    ).decode()
    cases = {
        "signature is wrong": forge(provider, kid, key=other_key),
        "signature is wrong ": f"{head}.{tampered_body}.{sig}",
        "nonce": forge(provider, kid, nonce="other"),
        "nonce ": forge(provider, kid, nonce=None),
        "audience": forge(provider, kid, aud="another-client"),
        "issuer": forge(provider, kid, iss="https://evil.example.org"),
        "expired": forge(provider, kid, exp=int(time.time()) - 3600),
        "iat": forge(provider, kid, iat=None),
        "not yet valid (iat)": forge(provider, kid, iat=int(time.time()) + 3600),
        "azp": forge(provider, kid, aud=[CLIENT_ID, "another"], azp="another"),
        "does not publish": forge(provider, "unknown-kid"),
        "algorithm 'HS256'": jwt.encode({"sub": "1"}, CLIENT_SECRET * 2, algorithm="HS256"),
        "algorithm 'none'": jwt.encode({"sub": "1"}, None, algorithm="none"),
        "cannot be read": "not-a-token",
    }
    for expected, token in cases.items():
        with pytest.raises(OidcRefused) as caught:
            await client.verify_id_token(token, "n1")
        assert expected.strip() in str(caught.value).lower() or expected.strip() in str(caught.value), (
            expected,
            str(caught.value),
        )
    provider.stop()
    with pytest.raises(OidcUnavailable):
        await OidcClient(settings).discovery()
