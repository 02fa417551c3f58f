"""The web UI's project and branch management and a flow's commits, against a real server and
agent: a flow's commit in the flows list and its repo changes on the flow page; the branch
settings (sequence counters, archive), deleting a stage and a branch, editing, archiving and
deleting a project (confirmed by typing its name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import make_repo
from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

STAGE = """def stage(ctx):
    return {"jobs": [{"name": "b", "steps": [{"tool": "git", "checkout": "REPO", "branch": "main"}],
                      "environments": [{"system": "any"}]}]}
"""


def test_commits_shown_and_branch_and_project_management(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sha = make_repo(repo, {"a.txt": "1"})
    project = kraken.post("/projects", {"name": "alpha", "description": "first"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "build", "schema_code": STAGE.replace("REPO", str(repo))})
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "spare", "schema_code": STAGE.replace("REPO", str(repo))})
    flow = kraken.post(f"/branches/{branch['id']}/flows", {"kind": "ci"})
    login(page)

    # the flow's commit in the flows list (live) and its repo changes on the flow page
    page.goto(f"/branches/{branch['id']}")
    expect(page.get_by_test_id("flow-commit")).to_contain_text(sha[:10])
    page.goto(f"/flows/{flow['id']}")
    changes = page.get_by_test_id("repo-changes")
    expect(changes).to_contain_text(sha[:10])
    expect(changes).to_contain_text(str(repo))
    expect(changes).to_contain_text("git checkout")

    # sequence counters: a value below the last flow is refused with the server's reason
    page.goto(f"/branches/{branch['id']}/settings")
    seq = page.get_by_test_id("sequences")
    seq.locator("input[name=ci_flow_seq]").fill("0")
    seq.get_by_role("button", name="Set counters").click()
    expect(seq.get_by_role("alert")).to_contain_text("cannot be below 1")
    seq.locator("input[name=ci_flow_seq]").fill("99")
    seq.get_by_role("button", name="Set counters").click()
    expect(seq.locator("input[name=ci_flow_seq]")).to_have_attribute("placeholder", "99")
    assert kraken.get(f"/branches/{branch['id']}")["ci_flow_seq"] == 99

    # archive the branch: a notice, no Run flow, hidden from the projects list
    page.get_by_role("button", name="Archive branch").click()
    expect(page.get_by_test_id("archived-notice")).to_contain_text("archived")
    expect(page.get_by_role("button", name="▷ Run flow")).to_be_disabled()
    page.goto("/")
    card = page.get_by_test_id("project-alpha")
    expect(card).to_contain_text("No branches yet")
    page.get_by_label("Show archived").check()
    expect(card.get_by_role("link", name="main")).to_be_visible()
    expect(card).to_contain_text("archived")
    kraken.post(f"/branches/{branch['id']}/unarchive")

    # delete a stage from the stages tab
    page.goto(f"/branches/{branch['id']}/stages")
    page.get_by_role("button", name="Delete stage spare").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete stage").click()
    expect(page.get_by_test_id("stages-table")).not_to_contain_text("spare")
    assert [s["name"] for s in kraken.get(f"/branches/{branch['id']}/stages")] == ["build"]

    # edit, archive and delete the project
    page.goto("/")
    card = page.get_by_test_id("project-alpha")
    card.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=name]").fill("omega")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("project-omega")).to_be_visible()
    assert kraken.get(f"/projects/{project['id']}")["name"] == "omega"
    page.get_by_test_id("project-omega").get_by_role("button", name="Settings").click()
    page.get_by_role("dialog").get_by_role("button", name="Archive").click()
    expect(page.get_by_test_id("project-omega")).to_be_hidden()
    assert kraken.get(f"/projects/{project['id']}")["archived"] is True
    page.get_by_label("Show archived").check()
    page.get_by_test_id("project-omega").get_by_role("button", name="Settings").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete…").click()
    confirm = page.get_by_role("dialog", name="Delete project omega")
    delete = confirm.get_by_role("button", name="Delete project")
    expect(delete).to_be_disabled()
    confirm.locator("input[name=confirm]").fill("omega")
    delete.click()
    expect(page.get_by_test_id("project-omega")).to_be_hidden()
    assert kraken.http.get(f"/projects/{project['id']}").status_code == 404
