"""A job split by timing in the web UI: the run panel lists its parts, each with its tests and time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import make_repo
from tests.ui.conftest import Kraken, login
from tests.ui.test_ui_results import results_ready, run_flow

pytestmark = pytest.mark.e2e

STAGE = """def stage(ctx):
    return {"jobs": [{"name": "suite", "parallel": 2, "steps": [
        {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
        {"tool": "pytest", "params": "-p no:cacheprovider tests", "cwd": "src", "pytest_exe": "PYTHON -m pytest"},
    ], "environments": [{"system": "any", "agents_group": "all", "executor": "local"}]}]}
"""
TESTS = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(5))


def test_the_parts_of_a_split_job(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "split-repo"
    make_repo(repo, {"tests/test_s.py": TESTS})
    project = kraken.post("/projects", {"name": "split-ui"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    code = STAGE.replace("REPO", str(repo)).replace("PYTHON", sys.executable)
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "tests", "schema_code": code})
    flow = run_flow(kraken, branch["id"])
    assert flow["result"] == "passed", flow
    assert results_ready(kraken, flow["runs"][0]["id"])["total"] == 5

    login(page)
    page.goto(f"/flows/{flow['id']}")
    parts = page.get_by_test_id("split-parts")
    expect(parts).to_contain_text("suite split by timing into 2 parts")
    chips = parts.get_by_test_id("split-part")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_contain_text("1/2 · 3 tests")
    expect(chips.nth(1)).to_contain_text("2/2 · 2 tests")
