"""The run's linter-issues and artifacts tabs of #15 part 5 in the web UI, over two real CI flows
of a stage that runs ``ruff`` and uploads artifacts: new issues first then by age, and an
artifact downloaded through a short-lived stream token (never the login token in the address)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import commit, make_repo
from tests.ui.conftest import Kraken, login
from tests.ui.test_ui_results import results_ready, run_flow

pytestmark = pytest.mark.e2e

RUFF = str(Path(sys.executable).parent / "ruff")
STAGE = """def stage(ctx):
    return {
        "parent": "root",
        "jobs": [{
            "name": "lint",
            "steps": [
                {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
                {"tool": "ruff", "exe": "RUFF", "params": "--isolated --select F401 .", "cwd": "src"},
                {"tool": "shell", "cmd": "mkdir -p out && cp calc.py out/calc.txt", "cwd": "src"},
                {"tool": "artifacts", "source": "out", "cwd": "src", "public": True},
                {"tool": "artifacts", "source": "report", "cwd": "src", "report_entry": "report/index.html"},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
"""
CALC = "import os\n\n\ndef add(a, b):\n    return a + b\n"
# a report's script tries Kraken's storage: the sandbox (an opaque origin) must refuse it
REPORT = """<html><head><link rel="stylesheet" href="style.css"></head><body><p id="t">report</p><script>
let s; try { s = "storage: " + String(window.localStorage.length); } catch (e) { s = "sandboxed: " + e.name; }
document.getElementById("t").textContent = s;
</script></body></html>"""


def test_run_issues_and_artifacts_tabs(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "lint-repo"
    make_repo(repo, {"calc.py": CALC, "report/index.html": REPORT, "report/style.css": "p { color: rgb(0, 128, 0); }"})
    project = kraken.post("/projects", {"name": "runtabs"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("RUFF", RUFF)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "lint", "schema_code": code})
    first = run_flow(kraken, branch["id"])
    assert first["result"] == "passed", first
    results_ready(kraken, first["runs"][0]["id"])
    commit(repo, {"util.py": "import sys\n"}, "an unused import more")
    flow = run_flow(kraken, branch["id"])
    assert flow["result"] == "passed", flow
    run = flow["runs"][0]["id"]
    assert results_ready(kraken, run)["new_issues"] == 1

    login(page)
    page.goto(f"/runs/{run}/results")
    page.get_by_test_id("view-issues").click()
    rows = page.get_by_test_id("issue-row")
    expect(page.get_by_test_id("issues-total")).to_have_text("2 issues")
    expect(rows).to_have_count(2)
    # the new one first, then the one seen in the first flow (age 1)
    expect(rows.nth(0)).to_contain_text("util.py:1")
    expect(rows.nth(0).get_by_test_id("issue-new")).to_have_text("new")
    expect(rows.nth(0).get_by_test_id("issue-age")).to_have_text("0")
    expect(rows.nth(1)).to_contain_text("calc.py:1")
    expect(rows.nth(1)).to_contain_text("ruff F401")
    expect(rows.nth(1).get_by_test_id("issue-new")).to_have_count(0)
    expect(rows.nth(1).get_by_test_id("issue-age")).to_have_text("1")
    page.get_by_test_id("issues-new-only").check()
    expect(page.get_by_test_id("issues-total")).to_have_text("1 new issue")
    expect(rows).to_have_count(1)

    page.get_by_test_id("view-artifacts").click()
    arts = page.get_by_test_id("artifact-row")
    expect(arts).to_have_count(3)
    art = arts.filter(has_text="out/calc.txt")
    expect(art.get_by_test_id("artifact-report")).to_have_count(0)
    expect(art.get_by_test_id("artifact-size")).to_have_text(f"{len(CALC)} B")
    with page.expect_download() as info:
        art.get_by_test_id("artifact-download").click()
    download = info.value
    assert download.suggested_filename == "calc.txt"
    assert Path(download.path()).read_text() == CALC
    assert "access_token=" in download.url and kraken.token not in download.url

    # the report opens in a new tab on its own path, sandboxed, its stylesheet loaded through the
    # token in the path; its script cannot reach Kraken's storage
    entry = arts.filter(has_text="report/index.html")
    with page.context.expect_page() as new_tab:
        entry.get_by_test_id("artifact-report").click()
    report = new_tab.value
    expect(report.locator("#t")).to_have_text("sandboxed: SecurityError")
    expect(report.locator("#t")).to_have_css("color", "rgb(0, 128, 0)")
    assert f"/api/runs/{run}/reports/" in report.url and kraken.token not in report.url
