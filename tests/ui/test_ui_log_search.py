"""The log search page against a real server and agent: the query syntax shown, hits with the
matched text highlighted, each linking to its line in the job's log, more pages, and a refused
query's reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

STAGE = """def stage(ctx):
    return {"jobs": [{"name": "printer", "steps": [{"tool": "shell", "script": SCRIPT}],
                      "environments": [{"system": "any"}]}]}
"""
SCRIPT = 'for i in $(seq 1 70); do echo "noise line $i"; done\necho "ERROR: ConnectTimeoutError in db-7f3a"\n'


@pytest.fixture
def kraken(web_build: Path, tmp_path: Path) -> Iterator[Kraken]:
    """As conftest's, with service logs stored too (job search works as without them)."""
    k = Kraken(tmp_path, KRAKEN_SERVICE_LOGS_STORE="true")
    yield k
    k.stop()


def indexed(kraken: Kraken, q: str, want: int) -> dict[str, Any]:
    """The index is filled in the background and no event says when a line got in: ask again
    every 0.1 s, for at most 30 s."""
    deadline = time.monotonic() + 30
    while True:
        page: dict[str, Any] = kraken.get("/logs/search", params={"q": q, "limit": 200})
        if len(page["hits"]) >= want or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def test_log_search_page(page: Page, kraken: Kraken) -> None:
    project = kraken.post("/projects", {"name": "searchable"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("SCRIPT", repr(SCRIPT))
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "print", "schema_code": code})
    kraken.post(f"/branches/{branch['id']}/flows", {"kind": "ci"})
    found = indexed(kraken, "noise line", 70)
    assert len(found["hits"]) == 70
    hit = indexed(kraken, "timeout", 1)["hits"][0]

    login(page)
    page.get_by_role("link", name="Log search").click()
    expect(page.get_by_test_id("log-search-syntax")).to_contain_text("at least 3 characters")
    page.get_by_label("Search the job logs").fill("timeout")
    page.get_by_role("button", name="Search").click()
    hits = page.get_by_test_id("log-hit")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("searchable / main")
    expect(hits.first.locator("mark")).to_have_text("Timeout")

    # more pages: 70 noise lines, 50 per page
    page.get_by_label("Search the job logs").fill("noise line")
    page.get_by_role("button", name="Search").click()
    expect(hits).to_have_count(50)
    page.get_by_role("button", name="More").click()
    expect(hits).to_have_count(70)
    expect(page.get_by_role("button", name="More")).to_have_count(0)

    # a hit opens the job's log at its line
    page.get_by_label("Search the job logs").fill("timeout")
    page.get_by_role("button", name="Search").click()
    expect(hits).to_have_count(1)
    hits.first.get_by_role("link", name=f"L{hit['line'] + 1} ERROR").click()
    page.wait_for_url(f"**/jobs/{hit['job_id']}#L{hit['line'] + 1}")
    expect(page.get_by_test_id("log-scroll").get_by_text("ERROR: ConnectTimeoutError in db-7f3a")).to_be_visible()

    # a refused query shows the server's reason
    page.goto("/logs?q=ab")
    expect(page.get_by_role("alert")).to_contain_text("shorter than 3 characters")


def test_service_log_search(page: Page, kraken: Kraken) -> None:
    """An administrator picks "Service logs": Kraken's own records (here the server's line about
    the agent that connected), with service, host and level."""
    deadline = time.monotonic() + 30
    while not kraken.get("/logs/search", params={"q": "ui-agent connected", "service": "serve"})["service_hits"]:
        assert time.monotonic() < deadline, "the server's record was never stored"
        time.sleep(0.2)
    login(page)
    page.goto("/logs")
    page.get_by_label("Logs", exact=True).select_option("serve")
    page.get_by_label("Level", exact=True).select_option("info")
    page.get_by_label("Search the job logs").fill("ui-agent connected")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/logs?q=ui-agent+connected&service=serve&level=info")
    hits = page.get_by_test_id("service-hit")
    expect(hits.first).to_contain_text("serve on")
    expect(hits.first).to_contain_text("info")
    expect(hits.first.locator("mark")).to_have_text(["ui-agent", "connected"])  # each word of the query
    expect(page.get_by_test_id("log-hit")).to_have_count(0)
