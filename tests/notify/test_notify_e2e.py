"""The overview's ``notification: {"changes": {...}}`` through real server and agent processes:
the run ends, the email and the Slack message arrive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.notify.conftest import Mailbox, Receiver
from tests.support.api import Api
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

CODE = """
def stage(ctx):
    return {
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "exit #{code}"}],
                  "environments": [{"system": "any"}]}],
        "parameters": [{"name": "code", "type": "string", "default": "0"}],
        "notification": {"changes": {"slack": {"channel": "kk-results"}, "email": "godfryd@example.com"}},
    }
"""


async def test_changes_notification_from_a_real_flow(
    tmp_path: Path, database_url: str, receiver: Receiver, smtp: Mailbox
) -> None:
    server = Server(
        tmp_path,
        database_url=database_url,
        KRAKEN_SMTP_HOST=smtp.host,
        KRAKEN_SMTP_PORT=str(smtp.port),
        KRAKEN_SLACK_WEBHOOK_URL=f"{receiver.url}/slack",
        KRAKEN_NOTIFY_ALLOW_NETWORKS='["127.0.0.0/8"]',  # the receivers listen on loopback, denied by default
    )
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "a1")
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "build", CODE)
        await asyncio.to_thread(wait_agent_connected, agent)
        for code, expected in (("0", 1), ("0", 1), ("3", 2)):
            flow = await api.wait_flow((await api.flow(branch_id, args={"code": code}))["id"])
            assert flow["result"] == ("passed" if code == "0" else "failed")
            if expected == 2:
                await receiver.wait("/slack", 2)
            else:
                await receiver.wait("/slack", 1)
        await asyncio.to_thread(smtp.wait, 2)
        slack = receiver.at("/slack")
        assert len(slack) == 2 and slack[0].body["channel"] == "#kk-results"
        assert "run 1 passed" in slack[0].body["text"] and "run 3 failed" in slack[1].body["text"]
        assert [str(m["Subject"]).split(": ")[-1] for m in smtp.messages] == ["run 1 passed", "run 3 failed"]
    finally:
        agent.stop()
        await api.close()
        server.stop()
