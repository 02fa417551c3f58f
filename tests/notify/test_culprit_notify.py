"""A finished culprit search is told to the channels of its run, against real receivers (SMTP,
HTTP) and real databases: which groups hear it, what it says (found, or no culprit and why),
once per search. The bisection itself is in ``test_culprit_notify_e2e.py``."""

from __future__ import annotations

from pathlib import Path

from kraken.core.db import Database
from kraken.models.culprits import CulpritSearch
from kraken.models.enums import Result
from kraken.notify.tasks import notify_culprit
from kraken.workers.registry import TaskContext
from tests.notify.conftest import Mailbox, Receiver
from tests.notify.test_notify import CODE, notes, run_flow, setup

GOOD, BAD, CULPRIT = "a" * 40, "b" * 40, "c0ffee" + "1" * 34
COMMITS = [
    {"id": "d" * 40, "author": "Ann", "email": "ann@example.com", "timestamp": "2026-01-01T00:00:00Z", "message": "x"},
    {
        "id": CULPRIT,
        "author": "Bob Broke",
        "email": "bob@example.com",
        "timestamp": "2026-01-02T00:00:00Z",
        "message": "speed up add",
    },
    {"id": BAD, "author": "Ann", "email": "ann@example.com", "timestamp": "2026-01-03T00:00:00Z", "message": "more"},
]


async def add_search(ctx: TaskContext, run_id: int, branch_id: int, **fields: object) -> int:
    async with ctx.db.transaction() as s:
        search = CulpritSearch(
            run_id=run_id, branch_id=branch_id, good_commit=GOOD, bad_commit=BAD, commits=COMMITS, **fields
        )
        s.add(search)
        await s.flush()
        assert search.id is not None
        return search.id


async def test_found_and_failed_searches_reach_the_run_s_channels(
    db: Database, tmp_path: Path, receiver: Receiver, smtp: Mailbox
) -> None:
    """CODE's groups: ``changes`` (slack, email, discord), ``completed`` (webhook, github),
    ``started`` (webhook, github). A search's message goes to ``completed`` always, to
    ``changes`` only when the run's end was a change; never to ``started`` nor to GitHub."""
    ctx, branch_id = await setup(db, tmp_path, receiver, smtp, CODE)
    _, run1 = await run_flow(ctx, branch_id, Result.FAILED)  # the first result: a change
    tests = ["tests.test_calc::test_add_small", "tests.test_calc::test_add_negative"]
    found = await add_search(ctx, run1, branch_id, tests=tests, state="found", culprit=CULPRIT, flows=[7, 8])
    pending = await add_search(ctx, run1, branch_id, tests=["t::x"], state="bisecting")

    await notify_culprit(ctx, search_id=pending)  # not finished: nothing said
    assert receiver.requests == [] and await notes(db, run1) == []

    await notify_culprit(ctx, search_id=found)
    [hook] = receiver.at("/hook")
    assert hook.body["event"] == "culprit" and hook.body["run"]["id"] == run1
    culprit = hook.body["culprit"]
    assert culprit["state"] == "found" and culprit["commit"] == CULPRIT and culprit["author"] == "Bob Broke"
    assert culprit["subject"] == "speed up add" and culprit["tests"] == tests and culprit["flows"] == [7, 8]
    assert hook.body["url"] == f"http://kraken.example/runs/{run1}/results?change=regression"
    [slack] = receiver.at("/slack")
    assert f"commit {CULPRIT[:12]} broke 2 tests" in slack.body["text"]
    assert "Bob Broke <bob@example.com>" in slack.body["text"] and "speed up add" in slack.body["text"]
    assert "tests.test_calc::test_add_negative" in slack.body["text"]
    [discord] = receiver.at("/discord")
    assert CULPRIT in discord.body["content"]
    smtp.wait(1)
    mail = smtp.messages[0]
    assert str(mail["Subject"]) == f"acme / main / build: commit {CULPRIT[:12]} broke 2 tests"
    raw = mail.get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode()
    assert f"Culprit: {CULPRIT} speed up add (Bob Broke <bob@example.com>)" in body
    assert "tests.test_calc::test_add_small" in body and f"/runs/{run1}/results" in body
    assert receiver.at("/gh/") == [] and receiver.at("/started") == []  # a status, and the start group: not told
    assert {(n.event, n.channel) for n in await notes(db, run1)} == {
        ("changes", "slack"),
        ("changes", "email"),
        ("changes", "discord"),
        ("completed", "webhook"),
    }

    await notify_culprit(ctx, search_id=found)  # the task ran again: nothing twice
    assert len(receiver.requests) == 3 and len(smtp.messages) == 1

    # the second run failed too: no change, so only the "completed" group hears its search
    _, run2 = await run_flow(ctx, branch_id, Result.FAILED)
    reason = "the repository cannot be read: fetching /gone failed"
    failed = await add_search(ctx, run2, branch_id, tests=["t::y"], state="failed", reason=reason)
    await notify_culprit(ctx, search_id=failed)
    hooks = receiver.at("/hook")
    assert len(hooks) == 2 and len(receiver.at("/slack")) == 1 and len(smtp.messages) == 1
    body2 = hooks[1].body["culprit"]
    assert body2["state"] == "failed" and body2["commit"] is None and body2["reason"] == reason
    assert body2["tests"] == ["t::y"]
    assert {(n.event, n.channel) for n in await notes(db, run2)} == {("completed", "webhook")}
