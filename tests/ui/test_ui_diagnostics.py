"""The administrators' diagnostics page against a real server and agent: a job waiting in its
agents group's queue, the agent's last contact, the scheduler's passes and the process's tasks."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e

STAGE = """def stage(ctx):
    return {"jobs": [{"name": "waits", "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any", "agents_group": "nobody-here"}]}]}
"""


def test_diagnostics_page(page: Page, kraken: Kraken) -> None:
    project = kraken.post("/projects", {"name": "diag"})
    branch = kraken.post(f"/projects/{project['id']}/branches", {"name": "main", "branch_name": "main"})
    kraken.post(f"/branches/{branch['id']}/stages", {"name": "s", "schema_code": STAGE})
    kraken.post(f"/branches/{branch['id']}/flows", {"kind": "ci"})  # no agent in that group: it waits
    login(page)
    page.get_by_role("link", name="Diagnostics").click()
    page.wait_for_url("**/diagnostics")
    queues = page.get_by_test_id("diag-queues")
    expect(queues).to_contain_text("1 queued")
    expect(queues.get_by_role("row", name="nobody-here")).to_contain_text("1")
    agents = page.get_by_test_id("diag-agents")
    expect(agents.get_by_role("row", name="ui-agent")).to_contain_text("online")
    expect(agents.get_by_role("row", name="ui-agent")).to_contain_text("ago")
    me = page.get_by_test_id("process-serve")
    expect(me).to_contain_text("Scheduler passes")
    expect(me.get_by_role("row").filter(has_text="ok").first).to_be_visible()
    expect(me).to_contain_text("No task failed lately.")
