"""A regression found among the results in the web UI: two CI flows of a stage running the
``pytest`` tool on a tiny git repository (flow 1 green, flow 2 with a broken function); open
the run's results, filter to the regression, open the test case's history."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import commit, make_repo
from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
BROKEN = CALC.replace("return a * b", "return a * b + 1")
TESTS = """from calc import add, mul


def test_add():
    assert add(2, 3) == 5


def test_add_negative():
    assert add(-2, -3) == -5


def test_mul():
    assert mul(3, 4) == 12


def test_add_zero():
    assert add(0, 7) == 7
"""

STAGE = """def stage(ctx):
    return {
        "parent": "root",
        "jobs": [{
            "name": "pytest",
            "steps": [
                {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
                {"tool": "pytest", "params": "-q -p no:cacheprovider tests", "cwd": "src",
                 "pytest_exe": "PYTHON -m pytest", "pythonpath": "."},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
"""


def run_flow(kraken: Kraken, branch_id: int, timeout: float = 90) -> dict[str, Any]:
    flow = kraken.post(f"/branches/{branch_id}/flows", {"kind": "ci"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flow = kraken.get(f"/flows/{flow['id']}")
        if flow["state"] == "completed":
            return flow  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise TimeoutError(f"flow {flow['id']} did not complete")


def results_ready(kraken: Kraken, run_id: int, timeout: float = 30) -> dict[str, Any]:
    """The run's summary once its results are analysed."""
    deadline = time.monotonic() + timeout
    while True:
        r = kraken.http.get(f"/runs/{run_id}/summary")
        r.raise_for_status()
        summary: dict[str, Any] = r.json()
        if summary["analysis"] == "done" or time.monotonic() > deadline:
            return summary
        time.sleep(0.3)


def test_find_the_regression_and_its_history(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "calc-repo"
    make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": TESTS})
    project = kraken.post("/projects", {"name": "calc"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("PYTHON", sys.executable)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "tests", "schema_code": code})

    flow1 = run_flow(kraken, branch["id"])
    first = results_ready(kraken, flow1["runs"][0]["id"])
    assert flow1["result"] == "passed", flow1
    assert first["total"] == 4 and first["passed"] == 4, first
    commit(repo, {"calc.py": BROKEN}, "break mul")
    flow2 = run_flow(kraken, branch["id"])
    run2 = flow2["runs"][0]["id"]
    summary = results_ready(kraken, run2)
    assert summary["regressions"] == 1, summary

    login(page)
    page.goto(f"/flows/{flow2['id']}")
    expect(page.locator(".page-header .badge").first).to_contain_text("failed")
    run_panel = page.get_by_test_id("run-panel")
    expect(run_panel.get_by_test_id("counters")).to_contain_text("regressions")
    run_panel.get_by_role("link", name=re.compile("^Open results")).click()
    page.wait_for_url(re.compile(rf".*/runs/{run2}/results$"))

    # regressions come first by default; then filter to them
    rows = page.get_by_test_id("result-row")
    expect(rows.first).to_contain_text("test_mul")
    expect(rows.first).to_contain_text("regression")
    expect(page.get_by_test_id("results-total")).to_contain_text("4 results")
    page.get_by_test_id("counter-regressions").click()
    expect(page).to_have_url(re.compile(r".*change=regression"))
    expect(page.get_by_test_id("results-total")).to_contain_text("1 result")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("test_calc::test_mul")
    # a text filter narrows the other way: nothing regressed in add
    page.get_by_test_id("filter-q").fill("test_add")
    expect(page.get_by_text("No result matches these filters")).to_be_visible()
    page.get_by_test_id("filter-q").fill("mul")
    expect(rows).to_have_count(1)

    rows.first.click()
    detail = page.get_by_test_id("result-detail")
    expect(detail).to_contain_text("assert")
    detail.get_by_test_id("history-link").click()
    page.wait_for_url(re.compile(r".*/test-cases/\d+\?branch=\d+$"))
    strip = page.get_by_test_id("history-strip")
    cells = strip.locator(".strip-cell")
    expect(cells).to_have_count(2)
    expect(cells.nth(0)).to_have_class(re.compile(r"st-passed"))
    expect(cells.nth(1)).to_have_class(re.compile(r"st-failed.*change-regression|change-regression.*st-failed"))
    expect(page.locator(".chart canvas")).to_have_count(1)
    # a root-cause comment on the failing test, kept by the server
    comments = page.get_by_test_id("comments")
    comments.get_by_label("Comment").fill("mul() lost its sign")
    comments.get_by_label("State").select_option("bug-in-product")
    comments.get_by_role("button", name="Add").click()
    expect(comments.locator(".comment-entry")).to_have_count(1)
    expect(comments.locator(".chip.comment-bug-in-product")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("comments").locator(".comment-text")).to_have_text("mul() lost its sign")
    # the strip links to the flows
    cells.nth(0).click()
    page.wait_for_url(re.compile(rf".*/flows/{flow1['id']}\?run=\d+$"))
