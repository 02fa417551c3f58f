"""The flow page shows why a stage did not start, and starts a manual stage with its button."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e


def stage(parent: str, cmd: str = "true", manual: bool = False) -> str:
    triggers = ', "triggers": {"manual": True}' if manual else ""
    return (
        f'def stage(ctx):\n    return {{"parent": "{parent}"{triggers}, "flow_label": "rel-#{{word}}",'
        f' "parameters": [{{"name": "word", "default": "w"}}],\n'
        f'        "jobs": [{{"name": "j", "steps": [{{"tool": "shell", "cmd": "{cmd}"}}],'
        f' "environments": [{{"system": "any"}}]}}]}}\n'
    )


def test_manual_and_skipped_stages_on_the_flow_page(page: Page, kraken: Kraken) -> None:
    project = kraken.post("/projects", {"name": "ui-waiting"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    for name, code in (
        ("build", stage("root")),
        ("deploy", stage("build", manual=True)),
        ("broken", stage("root", cmd="exit 4")),
        ("after", stage("broken")),
    ):
        kraken.post(f"/branches/{branch['id']}/stages", {"name": name, "schema_code": code})
    flow = kraken.post(f"/branches/{branch['id']}/flows", {"kind": "ci", "args": {"word": "one"}})
    login(page)
    page.goto(f"/flows/{flow['id']}")
    expect(page.get_by_test_id("flow-label")).to_have_text("rel-one")
    expect(page.get_by_test_id("skipped-stage")).to_contain_text("Stage after did not start: stage 'broken' had jobs")
    manual = page.get_by_test_id("manual-stage")
    expect(manual).to_contain_text("deploy waits to be started by hand")
    manual.get_by_role("button", name="Start deploy").click()
    expect(page.get_by_test_id("manual-stage")).to_have_count(0)
    expect(page.get_by_test_id("run-panel")).to_contain_text("deploy")
    runs = kraken.get(f"/flows/{flow['id']}")["runs"]
    assert [r["stage_name"] for r in runs] == ["build", "broken", "deploy"]
