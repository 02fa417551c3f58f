"""An LDAP user logs in through the login page (a real slapd), is offered no password form on
their profile, and shows as an LDAP user on the administrator's Users page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.procs import ADMIN_PASSWORD, Server
from tests.support.slapd import Slapd
from tests.ui.test_ui_roles import login_as

pytestmark = pytest.mark.e2e


@pytest.fixture
def ldap_page(browser: Browser, web_build: Path, tmp_path: Path) -> Iterator[Page]:
    directory = Slapd(tmp_path, {"lena": "lena-pass-1"}, {"developers": ["lena"]})
    directory.start()
    server = Server(tmp_path, **directory.env())
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(20_000)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()
        server.stop()
        directory.stop()


def test_ldap_user_logs_in_on_the_login_page(ldap_page: Page) -> None:
    page = ldap_page
    page.goto("/")
    login_as(page, "lena", "lena-pass-1")
    page.goto("/profile")
    expect(page.get_by_test_id("password-elsewhere")).to_contain_text("LDAP")
    expect(page.get_by_test_id("password")).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    login_as(page, "admin", ADMIN_PASSWORD)
    page.goto("/users")
    expect(page.get_by_test_id("user-lena")).to_contain_text("LDAP")
    expect(page.get_by_test_id("user-admin")).to_contain_text("password")
