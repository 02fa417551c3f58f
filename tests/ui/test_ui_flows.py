"""The web UI against a real server and agent: log in and out; create a project, a branch and a
stage (with a schema error shown at its line first); run a flow and watch its log stream live."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

BAD_STAGE = """def stage(ctx):
    return {
        "parent": "root"
        "jobs": [],
    }
"""

# prints green "line N" (ANSI colours) every 0.15 s, then "all done"
LOOP = r"for i in $(seq 1 #{count}); do printf \"\\033[32mline %d\\033[0m\\n\" $i; sleep 0.15; done; echo all done"
STAGE = """def stage(ctx):
    return {
        "parent": "root",
        "parameters": [{"name": "count", "type": "integer", "default": 3}],
        "jobs": [{
            "name": "count",
            "steps": [
                {"tool": "shell", "cmd": "LOOP"},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
"""


def set_code(page: Page, code: str) -> None:
    editor = page.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def test_login_wrong_password_then_logout(page: Page, kraken: Kraken) -> None:
    login(page, password="not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    page.fill("input[name=password]", "test-admin-pw")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_test_id("live-status")).to_contain_text("live")
    # a deep link survives the login round trip
    page.goto("/agents")
    expect(page.get_by_test_id("agent-ui-agent")).to_contain_text("online")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login**")
    page.goto("/settings")
    page.wait_for_url(re.compile(r".*/login\?next=%2Fsettings$"))
    page.fill("input[name=password]", "test-admin-pw")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Agent token")).to_be_visible()


def test_create_project_branch_stage_and_watch_a_flow_live(page: Page, kraken: Kraken) -> None:
    login(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text("No projects yet")).to_be_visible()

    page.get_by_role("button", name="+ New project").click()
    page.locator("dialog input[name=name]").fill("webapp")
    page.locator("dialog").get_by_role("button", name="Create project").click()
    card = page.get_by_test_id("project-webapp")
    expect(card).to_contain_text("No branches yet")

    card.get_by_role("button", name="+ Branch").click()
    page.locator("dialog[open] input[name=name]").fill("main")
    page.locator("dialog[open]").get_by_role("button", name="Create branch").click()
    page.wait_for_url(re.compile(r".*/branches/\d+$"))
    expect(page.get_by_text("No CI flows yet")).to_be_visible()

    # a stage: first with a syntax error, shown at its line, then fixed
    page.get_by_role("link", name="+ Stage").click()
    page.get_by_test_id("stage-name").fill("count")
    set_code(page, BAD_STAGE)
    page.get_by_test_id("stage-save").click()
    expect(page.get_by_test_id("stage-error")).to_contain_text("line 4")
    expect(page.locator(".cm-lint-marker-error")).to_have_count(1)
    set_code(page, STAGE.replace("LOOP", LOOP))
    page.get_by_test_id("stage-save").click()
    expect(page.get_by_test_id("stage-saved")).to_be_visible()
    page.wait_for_url(re.compile(r".*/stages/\d+$"))
    expect(page.get_by_test_id("schema-summary")).to_contain_text("count: integer = 3")

    # run a flow with a parameter, from the branch page
    page.get_by_role("link", name="Back to the stages").click()
    expect(page.get_by_test_id("stages-table")).to_contain_text("count")
    page.get_by_role("button", name="▷ Run flow").click()
    page.locator("dialog[open] input[name=count]").fill("40")
    page.locator("dialog[open]").get_by_role("button", name="Run flow").click()
    page.wait_for_url(re.compile(r".*/flows/\d+$"))
    expect(page.get_by_test_id("stage-node-count")).to_be_visible()
    jobs = page.get_by_test_id("jobs-table")
    expect(jobs).to_contain_text("count")
    jobs.get_by_role("link", name="Log").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))

    # log lines appear while the job runs (ANSI colours rendered, not printed)
    log = page.get_by_test_id("log-scroll")
    expect(log).to_contain_text("line 3", timeout=30_000)
    expect(page.get_by_test_id("log-count")).to_contain_text("streaming")
    expect(page.locator(".page-header .badge")).to_contain_text("running")
    expect(log.locator(".a-fg2").first).to_have_text(re.compile(r"line \d+"))
    expect(log).not_to_contain_text("\\033")
    expect(log).to_contain_text("all done", timeout=30_000)
    expect(page.locator(".page-header .badge")).to_contain_text("passed")
    expect(page.get_by_test_id("log-count")).to_contain_text("41 lines")
    # the download goes through a short-lived download token in its address, never the login token
    with page.expect_download() as got:
        page.get_by_test_id("log-download").click()
    download = got.value
    browser_token = page.evaluate("localStorage.getItem('kraken.token')")
    assert "access_token=" in download.url and browser_token and browser_token not in download.url
    assert "all done" in Path(download.path()).read_text()

    # search in the log
    page.get_by_test_id("log-search").fill("line 2")
    expect(page.get_by_test_id("log-matches")).to_contain_text("1 / 11")  # line 2, line 20..29
    # the flow page and the branch list show the outcome, live
    page.go_back()
    expect(page.locator(".page-header .badge").first).to_contain_text("passed")
    page.goto(page.url.split("/flows/")[0] + "/")
    expect(page.get_by_test_id("project-webapp")).to_contain_text("#1")
