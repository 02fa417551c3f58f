"""The Secrets page adds a user-password secret (the password never shown, by the page or the API)
and deletes it; the Tools page deletes a tool version after its name is typed again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

PASSWORD = "ui-Secret-pw-51"


def test_add_and_delete_a_user_password_secret(page: Page, kraken: Kraken) -> None:
    project = kraken.post("/projects", {"name": "ui-secrets"})
    login(page)
    page.goto(f"/projects/{project['id']}/secrets")
    form = page.get_by_test_id("secret-new")
    form.get_by_label("Name").fill("registry")
    form.get_by_label("Kind").select_option("user-password")
    expect(form.get_by_label("Value")).to_have_count(0)
    form.get_by_label("User").fill("ci-bot")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Add secret").click()
    row = page.get_by_test_id("secret-registry")
    expect(row).to_contain_text("user-password")
    expect(row).to_contain_text("ci-bot")
    expect(row).to_contain_text("#{KK_SECRET_PASSWORD_registry}")
    assert PASSWORD not in page.content()
    [stored] = kraken.get(f"/projects/{project['id']}/secrets")
    assert (stored["kind"], stored["user"], stored["password"]) == ("user-password", "ci-bot", "******")

    row.get_by_role("button", name="Delete").click()
    expect(page.get_by_test_id("secret-registry")).to_have_count(0)
    assert kraken.get(f"/projects/{project['id']}/secrets") == []


def test_delete_a_tool_version(page: Page, kraken: Kraken, tmp_path: Path) -> None:
    for version in ("1", "2"):
        folder = tmp_path / f"uitool-{version}"
        folder.mkdir()
        (folder / "kraken-tool.json").write_text(json.dumps({"name": "uitool", "version": version, "entry": "run.py"}))
        (folder / "run.py").write_text("print('x')\n")
        kraken.post("/tools", {"source": "directory", "path": str(folder)})
    login(page)
    page.goto("/tools")
    card = page.get_by_test_id("tool-uitool")
    card.get_by_test_id("tool-version-1").get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type").fill("uitool@1")
    dialog.get_by_role("button", name="Delete tool version").click()
    expect(card.get_by_role("row")).to_have_count(2)  # the header and version 2
    assert [t["version"] for t in kraken.get("/tools")] == ["2"]
