"""The stage page switches a stage to code from a repository (a real git repository), shows a bad
file's error, and the flow page shows which commit a run's code came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import commit, make_repo
from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

GOOD = (
    'def stage(ctx):\n    return {"parent": "root", "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],'
    ' "environments": [{"system": "any"}]}]}\n'
)
BAD = "def stage(ctx):\n    return nothing_here\n"


def test_choose_a_repository_on_the_stage_page(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "stage-repo"
    make_repo(repo, {"ci/bad.star": BAD})
    head = commit(repo, {"ci/good.star": GOOD}, "good")
    project = kraken.post("/projects", {"name": "ui-repo"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    stage = kraken.post(f"/branches/{branch['id']}/stages", {"name": "build", "schema_code": GOOD})
    login(page)
    page.goto(f"/stages/{stage['id']}")
    page.get_by_test_id("source-repo").check()
    page.get_by_test_id("stage-repo_url").fill(f"file://{repo}")
    page.get_by_test_id("stage-schema_file").fill("ci/bad.star")
    page.get_by_test_id("stage-save").click()
    expect(page.get_by_test_id("stage-error")).to_contain_text("ci/bad.star line 2")
    assert kraken.get(f"/stages/{stage['id']}")["schema_from_repo"] is False  # nothing saved
    page.get_by_test_id("stage-schema_file").fill("ci/good.star")
    page.get_by_test_id("stage-save").click()
    expect(page.get_by_test_id("stage-saved")).to_be_visible()
    expect(page.get_by_test_id("stage-schema-commit")).to_contain_text(head[:12])
    saved = kraken.get(f"/stages/{stage['id']}")
    assert (saved["schema_from_repo"], saved["schema_file"], saved["schema_code"]) == (True, "ci/good.star", "")

    flow = kraken.post(f"/branches/{branch['id']}/flows", {"kind": "ci"})
    page.goto(f"/flows/{flow['id']}")
    expect(page.get_by_test_id("run-schema-commit")).to_contain_text(head[:12])
