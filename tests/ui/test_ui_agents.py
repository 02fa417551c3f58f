"""The agents page: a pending agent is approved, then revoked, with the page's buttons."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.procs import PENDING, start_agent
from tests.ui.conftest import Kraken, login

pytestmark = pytest.mark.e2e


def test_approve_then_revoke_an_agent(page: Page, kraken: Kraken) -> None:
    newcomer = start_agent(kraken.workdir, kraken.url, "newcomer", "--group", "gpu", approve=False)
    try:
        line = newcomer.wait_line(lambda line: "connected to" in line)
        assert PENDING.search(line), line
        login(page)
        page.goto("/agents")
        row = page.get_by_test_id("agent-newcomer")
        expect(row).to_contain_text("pending")
        expect(row).to_contain_text("asked for: gpu")
        expect(page.get_by_test_id("agents-pending")).to_contain_text("1 waiting for approval")
        row.get_by_role("button", name="Approve newcomer").click()
        expect(row).to_contain_text("online")
        [a] = [x for x in kraken.get("/agents") if x["name"] == "newcomer"]
        assert a["approved"] is True and a["groups"] == ["all"]  # the request is not applied by itself

        row.get_by_role("button", name="Revoke newcomer").click()
        expect(row).to_contain_text("revoked")
        newcomer.proc.wait(30)
        assert newcomer.proc.returncode == 2 and "revoked by an administrator" in newcomer.output
        expect(page.get_by_test_id("agent-ui-agent")).to_contain_text("online")  # the others go on
    finally:
        newcomer.stop()
