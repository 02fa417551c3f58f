"""The whole browser login through OpenID Connect: "Log in with Test SSO" on Kraken's login page,
the provider's own login form and consent page (a real ``django-oidc-provider``), and back in
Kraken, logged in, with the project role that the provider's ``groups`` claim maps to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.oidc_provider import OidcProvider
from tests.support.procs import ADMIN_PASSWORD, Server, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def oidc_page(browser: Browser, web_build: Path, tmp_path: Path) -> Iterator[tuple[Page, int, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider = OidcProvider(
        tmp_path, {"nora": "nora-pass-1"}, {"developers": ["nora"]}, f"{url}/api/auth/oidc/callback"
    )
    provider.start()
    mapping = json.dumps({"developers": {"sso-proj": "maintainer"}})
    server = Server(tmp_path, port=port, **provider.env_for_kraken(url, KRAKEN_OIDC_GROUP_ROLES=mapping))
    with httpx.Client(base_url=url + "/api", timeout=30) as http:
        r = http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        r = http.post(
            "/projects", json={"name": "sso-proj"}, headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert r.is_success, r.text
        project_id = int(r.json()["id"])
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(20_000)
    try:
        yield ctx.new_page(), project_id, url
    finally:
        ctx.close()
        server.stop()
        provider.stop()


def test_oidc_user_logs_in_through_the_provider(oidc_page: tuple[Page, int, str]) -> None:
    page, project_id, url = oidc_page
    page.goto("/")
    page.wait_for_url("**/login**")
    page.get_by_role("link", name="Log in with Test SSO").click()
    # at the provider: its login form, then its consent page
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", "nora")
    page.fill("input[name=password]", "nora-pass-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Request for Permission")).to_be_visible()
    page.get_by_role("button", name="Authorize").click()
    # back in Kraken, logged in: the token was fetched from the one-time cookie, never in the URL
    page.wait_for_url(f"{url}/")
    token = page.evaluate("localStorage.getItem('kraken.token')")
    assert token, "no login token in the web UI"
    me = httpx.get(f"{url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert me["username"] == "nora" and me["provider"] == "oidc"
    assert me["roles"] == {str(project_id): "maintainer"}
    page.goto("/profile")
    expect(page.get_by_test_id("password-elsewhere")).to_contain_text("OIDC")
