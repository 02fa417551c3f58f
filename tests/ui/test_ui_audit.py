"""The audit page in Chromium: an administrator sees who changed what and filters it; a
maintainer sees their project's entries only; a viewer is not offered the page."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login
from tests.ui.test_ui_roles import login_as

pytestmark = pytest.mark.e2e

PASSWORD = "audit-ui-password"


def test_the_audit_page(page: Page, kraken: Kraken) -> None:
    project = kraken.post("/projects", {"name": "audited-ui"})
    other = kraken.post("/projects", {"name": "elsewhere"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    mona = kraken.post("/users", {"username": "mona", "password": PASSWORD})
    vic = kraken.post("/users", {"username": "vic", "password": PASSWORD})
    r = kraken.http.put(
        f"/projects/{project['id']}/members",
        json=[{"user_id": mona["id"], "role": "maintainer"}, {"user_id": vic["id"], "role": "viewer"}],
    )
    assert r.status_code == 200, r.text
    with httpx.Client(base_url=kraken.url + "/api") as as_mona:
        token = as_mona.post("/auth/login", json={"username": "mona", "password": PASSWORD}).json()["access_token"]
        r = as_mona.put(
            f"/branches/{branch['id']}/retention", json={"keep_flows": 5}, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
    kraken.post(f"/projects/{other['id']}/secrets", {"name": "hidden", "value": "never-shown-value"})

    login(page)
    page.get_by_role("link", name="Audit").click()
    table = page.get_by_test_id("audit")
    expect(table).to_contain_text("set_retention")
    expect(table).to_contain_text("mona")
    expect(table).to_contain_text('{"keep_flows":5')
    expect(table).to_contain_text("create_secret")
    expect(table).not_to_contain_text("never-shown-value")
    form = page.get_by_test_id("audit-filter")
    form.locator("input[name=user]").fill("mona")
    form.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).not_to_contain_text("create_secret")

    # the maintainer: her project's entries, not the other project's
    page.get_by_role("button", name="Log out").click()
    login_as(page, "mona", PASSWORD)
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_test_id("audit")).to_contain_text("set_members")
    expect(page.get_by_test_id("audit")).not_to_contain_text("create_secret")

    # a viewer: no link, and the page says why
    page.get_by_role("button", name="Log out").click()
    login_as(page, "vic", PASSWORD)
    expect(page.get_by_role("link", name="Projects")).to_be_visible()
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)
    page.goto("/audit")
    expect(page.get_by_text("for administrators and project maintainers")).to_be_visible()
