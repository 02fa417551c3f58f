"""The commit that broke a test, in the web UI: two CI flows (the second two commits later, one of
which breaks ``mul``), the results page's button starts culprit finding, the panel and the
regression's detail name the culprit with its author and message."""

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


def test_find_the_culprit_from_the_results_page(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "calc-repo"
    make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": TESTS})
    project = kraken.post("/projects", {"name": "culprit-ui"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("PYTHON", sys.executable)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "tests", "schema_code": code})
    results_ready(kraken, run_flow(kraken, branch["id"])["runs"][0]["id"])
    culprit = commit(repo, {"calc.py": BROKEN}, "break mul")
    commit(repo, {"notes.txt": "x"}, "notes")
    flow2 = run_flow(kraken, branch["id"])
    run2 = flow2["runs"][0]["id"]
    assert results_ready(kraken, run2)["regressions"] == 1

    login(page)
    page.goto(f"/runs/{run2}/results")
    panel = page.get_by_test_id("culprits")
    panel.get_by_test_id("find-culprits").click()
    line = panel.get_by_test_id("culprit")
    expect(line).to_have_attribute("data-state", "found", timeout=90_000)
    expect(line).to_contain_text(f"broken by {culprit[:10]} (Test) break mul")
    expect(line).to_contain_text("1 bisection flow")
    expect(panel.get_by_role("link", name=re.compile(r"^#\d+"))).to_have_count(1)

    page.get_by_test_id("result-row").first.click()
    expect(page.get_by_test_id("detail-culprit")).to_contain_text(f"broken by {culprit[:10]}")
