"""A real bisection tells the stage's channels which commit broke which tests: a real server,
a real agent running real pytest on a real git repository (the culprit tests' calculator), a
real SMTP server and a real webhook receiver.

Commits 0..7: commit 3 breaks ``add`` (two tests). CI flow 1 on commit 0 passes, CI flow 2 on
commit 7 fails; the branch finds culprits by itself: bisection names commit 3 and the email, the
webhook and (the run's result changed) Slack say so. Then commit 8 breaks ``mul``: CI flow 3's
end message names commit 3 as the known culprit of the ``add`` tests, still failing; the new
search (one commit: named at once) reaches the flow's channels but not the ``changes`` group
(failed again: no change)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_culprits import CALC, STAGE, TESTS, ci_flow, searches
from tests.notify.conftest import Mailbox, Receiver
from tests.support.api import Api
from tests.support.gitrepo import commit, git, make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

NOTIFICATION = """{
    "completed": {"scope": "flow", "email": "dev@example.com", "webhook": "URL/hook"},
    "changes": {"slack": {"channel": "ci", "webhook": "URL/slack"}},
    "started": {"webhook": "URL/started"},
}"""
ADD_TESTS = ["tests.test_calc::test_add_negative", "tests.test_calc::test_add_small"]


def body_of(mail: Message) -> str:
    raw = mail.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode()


@pytest.fixture
def server(tmp_path: Path, database_url: str, receiver: Receiver, smtp: Mailbox) -> Iterator[Server]:
    srv = Server(
        tmp_path,
        database_url=database_url,
        KRAKEN_SMTP_HOST=smtp.host,
        KRAKEN_SMTP_PORT=str(smtp.port),
        KRAKEN_PUBLIC_URL="http://kraken.example",
        KRAKEN_NOTIFY_ALLOW_NETWORKS='["127.0.0.0/8"]',  # the receivers listen on loopback, denied by default
    )
    yield srv
    srv.stop()


async def test_bisection_names_the_culprit_to_the_stage_s_channels(
    tmp_path: Path, server: Server, receiver: Receiver, smtp: Mailbox
) -> None:
    repo = tmp_path / "repo"
    tests = TESTS.replace("MARKER", repr(str(tmp_path / "never")))
    shas = [make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": tests, "notes.txt": "0"})]
    for i in range(1, 8):
        files = {"notes.txt": str(i)}
        if i == 3:
            files["calc.py"] = CALC.replace("return a + b", "return a + b + 1")
        shas.append(commit(repo, files, f"change {i}" + (" (breaks add)" if i == 3 else "")))
    culprit = shas[3]
    code = (
        STAGE.replace("REPO", repr(str(repo)))
        .replace("PYTEST", repr(f"{sys.executable} -m pytest"))
        .replace('"jobs": [', f'"notification": {NOTIFICATION.replace("URL", receiver.url)},\n        "jobs": [', 1)
    )
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "culprit-notify")
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "tests", code)
        r = await api.http.patch(f"/branches/{branch_id}", json={"repo_url": str(repo)})
        assert r.status_code == 200, r.text
        r = await api.http.put(f"/branches/{branch_id}/culprit-settings", json={"auto": True})
        assert r.status_code == 200, r.text
        await asyncio.to_thread(wait_agent_connected, agent)

        git(repo, "reset", "-q", "--hard", shas[0])
        first = await ci_flow(api, branch_id)
        assert first["result"] == "passed"
        git(repo, "reset", "-q", "--hard", shas[-1])
        second = await ci_flow(api, branch_id)
        run2 = second["runs"][0]["id"]
        [search] = await searches(api, run2, 300)
        assert search["state"] == "found" and search["culprit"] == culprit, search
        assert sorted(search["tests"]) == ADD_TESTS

        def culprit_hooks() -> list[dict[str, Any]]:
            return [r.body for r in receiver.at("/hook") if r.body["event"] == "culprit"]

        await receiver.wait("/slack", 3)  # run 1 (first result), run 2 (passed -> failed), the culprit
        await receiver.wait("/hook", 3)  # flow 1, flow 2, the culprit
        [hook] = culprit_hooks()
        assert hook["culprit"]["commit"] == culprit and hook["culprit"]["state"] == "found"
        assert hook["culprit"]["author"] == "Test" and hook["culprit"]["subject"] == "change 3 (breaks add)"
        assert sorted(hook["culprit"]["tests"]) == ADD_TESTS and hook["run"]["id"] == run2
        assert hook["url"] == f"http://kraken.example/runs/{run2}/results?change=regression"
        assert len(hook["culprit"]["flows"]) == len(search["flows"]) >= 1
        slack = receiver.at("/slack")[-1].body["text"]
        assert f"commit {culprit[:12]} broke 2 tests" in slack and "change 3 (breaks add)" in slack
        assert all(t in slack for t in ADD_TESTS)
        await asyncio.to_thread(smtp.wait, 3)  # flow 1, flow 2, the culprit
        [mail] = [m for m in smtp.messages if "broke" in str(m["Subject"])]
        assert str(mail["Subject"]) == f"p / main / tests: commit {culprit[:12]} broke 2 tests"
        text = body_of(mail)
        assert f"Culprit: {culprit} change 3 (breaks add) (Test <test@localhost>)" in text
        assert all(t in text for t in ADD_TESTS)
        # bisection flows are DEV flows without the stage's notification: none of them was told
        told_flows = {r.body["flow"]["id"] for r in receiver.at("/hook") + receiver.at("/started")}
        assert not told_flows & set(search["flows"]), told_flows
        assert all(r.body["event"] == "run_started" for r in receiver.at("/started"))

        # commit 8 breaks mul; add is still broken by commit 3
        both = CALC.replace("return a + b", "return a + b + 1").replace("return a * b", "return a * b * 2")
        mul = commit(repo, {"calc.py": both}, "mul")
        third = await ci_flow(api, branch_id)
        run3 = third["runs"][0]["id"]
        found = await searches(api, run3, 120)
        assert [(s["tests"], s["culprit"], s["flows"]) for s in found] == [
            (["tests.test_calc::test_mul_small"], mul, [])
        ], found
        await receiver.wait("/hook", 5)  # + flow 3, + the mul culprit
        flow3 = [r.body for r in receiver.at("/hook") if r.body["event"] == "flow_completed"]
        assert len(flow3) == 3 and flow3[-1]["flow"]["id"] == third["id"]
        known = [c for c in flow3[-1]["culprits"] if c["commit"] == culprit]
        assert [sorted(c["tests"]) for c in known] == [ADD_TESTS], flow3[-1]["culprits"]
        assert known[0]["subject"] == "change 3 (breaks add)" and known[0]["run_id"] == run2
        await asyncio.to_thread(smtp.wait, 5)  # + flow 3, + the mul culprit
        [flow3_mail] = [m for m in smtp.messages if f"flow {third['seq']} failed" in str(m["Subject"])]
        assert "Known culprits of failing tests:" in body_of(flow3_mail)
        assert f"{culprit} change 3 (breaks add) (Test <test@localhost>) broke:" in body_of(flow3_mail)
        second_hook = culprit_hooks()[1]
        assert second_hook["culprit"]["commit"] == mul and second_hook["culprit"]["range_commits"] == 1
        # run 3 failed as run 2 did: the "changes" group (Slack) is not told of its culprit
        assert not any(mul[:12] in r.body["text"] for r in receiver.at("/slack"))
    finally:
        agent.stop()
        await api.close()
