"""The Tools page against a real server: an administrator registers a custom tool from a git
repository; its version, step key and fields schema are listed; a bad source shows its error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.gitrepo import git, make_repo
from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e


def test_tools_page_registers_from_git(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    manifest = {
        "name": "uitool",
        "version": "3.1",
        "description": "a tool made by the UI test",
        "fields_schema": {"type": "object", "properties": {"level": {"type": "integer"}}},
        "entry": "run.sh",
    }
    repo = tmp_path / "uitool"
    make_repo(repo, {"kraken-tool.json": json.dumps(manifest), "run.sh": "#!/bin/sh\necho ui\n"})
    git(repo, "tag", "v3.1")
    login(page)
    page.get_by_role("link", name="Tools").click()
    page.wait_for_url("**/tools")
    expect(page.get_by_text("No custom tool")).to_be_visible()
    form = page.get_by_test_id("tool-register")
    form.get_by_label("Repository URL").fill(str(tmp_path / "missing"))
    form.get_by_role("button", name="Register").click()
    expect(form.get_by_role("alert")).to_contain_text("git clone")
    form.get_by_label("Repository URL").fill(str(repo))
    form.get_by_label("Branch or tag").fill("v3.1")
    form.get_by_role("button", name="Register").click()
    card = page.get_by_test_id("tool-uitool")
    expect(card).to_contain_text("a tool made by the UI test")
    expect(card.get_by_role("row", name="3.1")).to_contain_text('"tool": "uitool@3.1"')
    card.get_by_text("Fields (JSON Schema of 3.1)").click()
    expect(card).to_contain_text('"level"')
    assert [t["version"] for t in kraken.get("/tools")] == ["3.1"]
