"""Users, members and profile pages, and a viewer who is offered no control their role does not
allow, against a real server and agent in Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

STAGE = """def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""
VIEWER_PASSWORD = "viewer-password-1"


def login_as(page: Page, username: str, password: str) -> None:
    page.wait_for_url("**/login**")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def test_admin_manages_users_and_members_and_a_viewer_cannot_edit(page: Page, kraken: Kraken) -> None:
    project = kraken.post("/projects", {"name": "alpha"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "build", "schema_code": STAGE})
    login(page)

    # the administrator adds a user on the Users page
    page.goto("/users")
    form = page.get_by_test_id("new-user")
    form.locator("input[name=username]").fill("vera")
    form.locator("input[name=password]").fill(VIEWER_PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_test_id("user-vera")).to_contain_text("active")

    # ... and makes her a viewer of the project on its Members page
    page.goto(f"/projects/{project['id']}/members")
    page.get_by_label("user to add").select_option(label="vera")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_label("role of vera")).to_have_value("viewer")
    page.get_by_role("button", name="Save members").click()
    expect(page.get_by_test_id("member-vera")).to_be_visible()
    members = kraken.get(f"/projects/{project['id']}/members")
    assert [(m["username"], m["role"]) for m in members] == [("vera", "viewer")]

    # log out (ends the session on the server) and log in as the viewer
    page.get_by_role("button", name="Log out").click()
    login_as(page, "vera", VIEWER_PASSWORD)
    page.goto("/")
    card = page.get_by_test_id("project-alpha")
    expect(card).to_contain_text("main")
    expect(card.get_by_role("link", name="Members")).to_be_visible()
    expect(card.get_by_role("button", name="Settings")).to_have_count(0)
    expect(card.get_by_role("button", name="+ Branch")).to_have_count(0)
    expect(page.get_by_role("button", name="+ New project")).to_have_count(0)
    expect(page.get_by_role("link", name="Users")).to_have_count(0)

    page.goto(f"/branches/{branch['id']}")
    expect(page.get_by_role("tab", name="CI flows")).to_be_visible()
    expect(page.get_by_role("button", name="▷ Run flow")).to_have_count(0)
    expect(page.get_by_role("link", name="+ Stage")).to_have_count(0)
    expect(page.get_by_role("tab", name="Settings")).to_have_count(0)

    page.goto(f"/projects/{project['id']}/members")
    expect(page.get_by_test_id("member-vera")).to_contain_text("viewer")
    expect(page.get_by_role("button", name="Save members")).to_have_count(0)
    expect(page.get_by_label("role of vera")).to_have_count(0)

    # her profile: a token is shown once, listed without its value, and revoked
    page.get_by_role("link", name="vera").click()
    page.wait_for_url("**/profile")
    tokens = page.get_by_test_id("new-token")
    expect(tokens.locator("input[name=scope-admin]")).to_have_count(0)  # not offered to a non-administrator
    tokens.locator("input[name=token_name]").fill("script")
    tokens.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token-value")).to_contain_text("kpat_")
    value = page.get_by_test_id("new-token-value").locator("code").inner_text()
    row = page.get_by_test_id("token-script")
    expect(row).to_contain_text("read")
    assert value not in row.inner_text()
    r = kraken.http.get(f"/projects/{project['id']}", headers={"Authorization": f"Bearer {value}"})
    assert r.status_code == 200, r.text
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    r = kraken.http.get(f"/projects/{project['id']}", headers={"Authorization": f"Bearer {value}"})
    assert r.status_code == 401, r.text
