"""Quarantine in the web UI: a failing test is quarantined from its page with a reason; the next
run passes and says "1 quarantined failure", its results mark the test; the branch's settings
keep auto-quarantine and auto-release; the test is released from its page."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import make_repo
from tests.ui.conftest import Kraken, login
from tests.ui.test_ui_results import STAGE, results_ready, run_flow

pytestmark = pytest.mark.e2e

TESTS = "def test_fine():\n    pass\n\n\ndef test_broken():\n    assert 1 == 2\n"


def test_quarantine_a_failing_test_from_its_page(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "q-repo"
    make_repo(repo, {"calc.py": "", "tests/test_q.py": TESTS})
    project = kraken.post("/projects", {"name": "quarantine-ui"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("PYTHON", sys.executable)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "tests", "schema_code": code})
    flow1 = run_flow(kraken, branch["id"])
    assert flow1["result"] == "failed", flow1
    results_ready(kraken, flow1["runs"][0]["id"])
    items = kraken.get(f"/runs/{flow1['runs'][0]['id']}/results")["items"]
    broken = next(r for r in items if r["test"].endswith("test_broken"))

    login(page)
    page.goto(f"/test-cases/{broken['test_case_id']}?branch={branch['id']}")
    box = page.get_by_test_id("quarantine")
    expect(box).to_contain_text("not quarantined on this branch")
    expect(box.get_by_role("button", name="Quarantine")).to_be_disabled()  # a reason is required
    box.get_by_label("Reason").fill("bug 1234: 1 is not 2")
    box.get_by_role("button", name="Quarantine").click()
    expect(box.locator(".chip.quarantined")).to_be_visible()
    expect(box).to_contain_text("bug 1234: 1 is not 2")
    expect(box).to_contain_text("admin")

    flow2 = run_flow(kraken, branch["id"])
    assert flow2["result"] == "passed", flow2
    run2 = flow2["runs"][0]["id"]
    results_ready(kraken, run2)
    page.goto(f"/flows/{flow2['id']}")
    expect(page.get_by_test_id("run-quarantined")).to_have_text("1 quarantined failure")
    page.goto(f"/runs/{run2}/results")
    row = page.get_by_test_id("result-row").filter(has_text="test_broken")
    expect(row.locator(".chip.quarantined")).to_be_visible()
    expect(page.get_by_test_id("result-row").filter(has_text="test_fine").locator(".chip.quarantined")).to_have_count(0)

    page.goto(f"/branches/{branch['id']}/settings")
    form = page.get_by_test_id("quarantine-settings")
    form.locator("input[name=quarantine_flaky]").check()
    form.locator("input[name=release_after]").fill("3")
    form.get_by_role("button", name="Save").click()
    expect(form).to_contain_text("saved")
    page.reload()
    form = page.get_by_test_id("quarantine-settings")
    expect(form.locator("input[name=quarantine_flaky]")).to_be_checked()
    expect(form.locator("input[name=release_after]")).to_have_value("3")

    page.goto(f"/test-cases/{broken['test_case_id']}?branch={branch['id']}")
    box = page.get_by_test_id("quarantine")
    box.get_by_role("button", name=re.compile("^Release")).click()
    expect(box).to_contain_text("not quarantined on this branch")
    assert kraken.get(f"/branches/{branch['id']}/quarantine") == []
