"""The triage views of #15 part 5 in the web UI, over two real CI flows of the ``pytest`` tool
(flow 1 green, flow 2 with a broken function): the results page's age, instability and
agents group filters, its re-analysis button, and the branch's charts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import commit, make_repo
from tests.ui.conftest import Kraken, login
from tests.ui.test_ui_results import BROKEN, CALC, STAGE, TESTS, results_ready, run_flow

pytestmark = pytest.mark.e2e


def test_triage_filters_reanalysis_and_branch_charts(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "calc-repo"
    make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": TESTS})
    project = kraken.post("/projects", {"name": "triage"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("PYTHON", sys.executable)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "tests", "schema_code": code})
    results_ready(kraken, run_flow(kraken, branch["id"])["runs"][0]["id"])
    commit(repo, {"calc.py": BROKEN}, "break mul")
    flow2 = run_flow(kraken, branch["id"])
    run2 = flow2["runs"][0]["id"]
    assert results_ready(kraken, run2)["regressions"] == 1

    login(page)
    page.goto(f"/runs/{run2}/results")
    rows = page.get_by_test_id("result-row")
    total = page.get_by_test_id("results-total")
    expect(total).to_contain_text("4 results")
    # the three tests that passed twice have age 1; the regression starts again at 0
    page.get_by_test_id("filter-age_min").fill("1")
    expect(page).to_have_url(re.compile(r".*age_min=1"))
    expect(total).to_contain_text("3 results")
    expect(rows.filter(has_text="test_mul")).to_have_count(0)
    page.get_by_test_id("filter-age_min").fill("")
    page.get_by_test_id("filter-age_max").fill("0")
    expect(total).to_contain_text("1 result")
    expect(rows.first).to_contain_text("test_mul")
    page.get_by_test_id("filter-age_max").fill("")
    page.get_by_test_id("filter-instability_min").fill("1")  # one flip: the regression
    expect(total).to_contain_text("1 result")
    page.get_by_role("button", name="Clear filters").click()
    expect(total).to_contain_text("4 results")
    page.get_by_test_id("filter-group").select_option("all")
    expect(page).to_have_url(re.compile(r".*group=all"))
    expect(total).to_contain_text("4 results")
    # a bad range is the server's 422, named
    page.goto(f"/runs/{run2}/results?age_min=5&age_max=2")
    expect(page.get_by_text(re.compile("age_min"))).to_be_visible()

    page.goto(f"/runs/{run2}/results")
    expect(rows.first).to_contain_text("test_mul")
    button = page.get_by_test_id("reanalyze")
    expect(button).to_have_attribute("data-state", "none")
    button.click()  # a background task: the button waits for the event "reanalysis" (done)
    expect(button).to_have_attribute("data-state", "done")
    expect(button).to_have_attribute("data-version", "1")
    expect(button).to_have_text("Re-analyse")
    assert kraken.get(f"/runs/{run2}/reanalysis")["jobs"] != []
    expect(rows.first).to_contain_text("regression")
    expect(total).to_contain_text("4 results")
    assert kraken.get(f"/runs/{run2}/summary")["total"] == 4  # replaced, not added

    page.goto(f"/branches/{branch['id']}/charts")
    charts = page.get_by_test_id("branch-charts")
    expect(charts).to_have_attribute("data-flows", "2")
    expect(charts.locator(".chart canvas")).to_have_count(3)
    expect(page.get_by_test_id("chart-ratio")).to_contain_text("pass ratio")
