"""Notifications against real receivers (SMTP, HTTP) and real databases: events, "changes"
against the previous result, secrets in fields, retries, once per message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.bus import MemoryBus
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Branch, Job, Project, Run, Stage
from kraken.models.enums import FlowKind, Result
from kraken.models.notify import Notification
from kraken.models.secrets import Secret
from kraken.notify.tasks import notify_flow_completed, notify_run_completed, notify_run_started
from kraken.secrets import store as secrets_store
from kraken.stage import check_stage_code
from kraken.workers.queue import InProcessQueue
from kraken.workers.registry import TaskContext
from tests.notify.conftest import Mailbox, Receiver

CODE = """
def stage(ctx):
    return {
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}],
        "notification": {
            "changes": {
                "slack": {"channel": "kk-results", "webhook": "URL/slack"},
                "email": "godfryd@example.com",
                "discord": {"webhook": "URL/discord"},
            },
            "completed": {
                "webhook": {"url": "URL/hook", "headers": {"X-Token": "#{secrets.hook_token}"}},
                "github": {"token": "#{secrets.gh}", "repo": "acme/app", "api_url": "URL/gh"},
            },
            "started": {"webhook": "URL/started", "github": {"token": "#{secrets.gh}", "api_url": "URL/gh",
                        "repo": "acme/app"}},
        },
    }
"""

FLOW_SCOPE = """
def stage(ctx):
    return {
        "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}],
        "notification": {"changes": {"scope": "flow", "webhook": "URL/flow"}},
    }
"""


async def setup(db: Database, tmp_path: Path, receiver: Receiver, smtp: Mailbox, code: str) -> tuple[TaskContext, int]:
    settings = Settings(
        data_dir=tmp_path / "data",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_from="kraken@example.com",
        notify_retry_delay=0.01,
        notify_attempts=3,
        public_url="http://kraken.example",
        notify_allow_networks=["127.0.0.0/8"],  # the receivers listen on loopback, denied by default
    )
    secrets_store.configure(settings)
    code = code.replace("URL", receiver.url)
    schema = await check_stage_code(code)
    async with db.transaction() as s:
        project = Project(name="acme")
        s.add(project)
        await s.flush()
        branch = Branch(project_id=project.id, name="main", branch_name="main")  # type: ignore[arg-type]
        s.add(branch)
        await s.flush()
        s.add(
            Stage(
                branch_id=branch.id,
                name="build",
                schema_code=code,
                schema_=schema,
                parent="root",  # type: ignore[arg-type]
                triggers={},
            )
        )
        for name, value in (("hook_token", "tok-SECRET-1"), ("gh", "ghp-SECRET-2")):
            s.add(Secret(project_id=project.id, name=name, kind="simple", data=secrets_store.encode("simple", value)))  # type: ignore[arg-type]
    queue = InProcessQueue()
    bus = MemoryBus()
    ctx = TaskContext(db=db, bus=bus, queue=queue, settings=settings)
    queue.bind(ctx)
    assert branch.id is not None
    return ctx, branch.id


async def run_flow(ctx: TaskContext, branch_id: int, result: Result, commit: str = "c" * 40) -> tuple[int, int]:
    effects = Effects()
    async with ctx.db.transaction() as s:
        branch = await s.get(Branch, branch_id)
        assert branch is not None
        flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects, {"reason": "t", "commit": commit})
    await orchestration.evaluate_pending(ctx.db, effects)
    async with ctx.db.session() as s:
        [run] = (await s.execute(select(Run).where(Run.flow_id == flow.id))).scalars().all()
        jobs = (await s.execute(select(Job.id).where(Job.run_id == run.id))).scalars().all()
    for job_id in jobs:
        async with ctx.db.transaction() as s:
            await orchestration.complete_job(s, job_id, result, effects)
    assert flow.id is not None and run.id is not None
    return flow.id, run.id


async def notes(db: Database, run_id: int | None = None) -> list[Notification]:
    async with db.session() as s:
        q = select(Notification).order_by(col(Notification.id))
        if run_id is not None:
            q = q.where(Notification.run_id == run_id)
        return list((await s.execute(q)).scalars())


async def test_started_completed_and_changes(db: Database, tmp_path: Path, receiver: Receiver, smtp: Mailbox) -> None:
    ctx, branch_id = await setup(db, tmp_path, receiver, smtp, CODE)
    flow1, run1 = await run_flow(ctx, branch_id, Result.PASSED)
    await notify_run_started(ctx, run_id=run1)
    [started] = receiver.at("/started")
    assert started.body["event"] == "run_started" and started.body["run"]["stage"] == "build"
    [pending] = receiver.at("/gh/")
    assert pending.path == f"/gh/repos/acme/app/statuses/{'c' * 40}" and pending.body["state"] == "pending"
    assert pending.headers["Authorization"] == "Bearer ghp-SECRET-2"

    await notify_run_completed(ctx, run_id=run1)  # first result ever: a change
    [slack] = receiver.at("/slack")
    assert slack.body["channel"] == "#kk-results" and "acme / main / build: run 1 passed" in slack.body["text"]
    assert "http://kraken.example/flows/" in slack.body["text"]
    [discord] = receiver.at("/discord")
    assert "passed" in discord.body["content"]
    [hook] = receiver.at("/hook")
    assert hook.headers["X-Token"] == "tok-SECRET-1"  # the secret reached the receiver...
    assert hook.body["event"] == "run_completed" and hook.body["run"]["result"] == "passed"
    assert hook.body["changed"] is True and hook.body["previous_result"] is None
    statuses = receiver.at("/gh/")
    assert [s.body["state"] for s in statuses] == ["pending", "success"]
    assert statuses[1].body["context"] == "kraken/build"
    smtp.wait(1)
    assert smtp.rcpts[0] == ["godfryd@example.com"] and "run 1 passed" in str(smtp.messages[0]["Subject"])
    recorded = await notes(db, run1)
    assert {(n.event, n.channel, n.state) for n in recorded} == {
        ("started", "webhook", "sent"),
        ("started", "github", "sent"),
        ("changes", "slack", "sent"),
        ("changes", "email", "sent"),
        ("changes", "discord", "sent"),
        ("completed", "webhook", "sent"),
        ("completed", "github", "sent"),
    }
    assert all("SECRET" not in n.destination for n in recorded)  # ...but no record shows it

    await notify_run_completed(ctx, run_id=run1)  # the task ran again (a worker crash): nothing twice
    assert len(receiver.at("/slack")) == 1 and len(receiver.at("/hook")) == 1 and len(smtp.messages) == 1

    _, run2 = await run_flow(ctx, branch_id, Result.PASSED)  # same result: no "changes" message
    await notify_run_completed(ctx, run_id=run2)
    assert len(receiver.at("/slack")) == 1 and len(receiver.at("/hook")) == 2

    _, run3 = await run_flow(ctx, branch_id, Result.FAILED)  # changed: passed -> failed
    await notify_run_completed(ctx, run_id=run3)
    slacks = receiver.at("/slack")
    assert len(slacks) == 2 and "run 3 failed" in slacks[1].body["text"] and "(was passed)" in slacks[1].body["text"]
    assert receiver.at("/gh/")[-1].body["state"] == "failure"
    smtp.wait(2)
    assert flow1 > 0


async def test_failures_are_retried_logged_and_never_fail_the_run(
    db: Database, tmp_path: Path, receiver: Receiver, smtp: Mailbox
) -> None:
    ctx, branch_id = await setup(db, tmp_path, receiver, smtp, CODE)
    receiver.fail = {"/hook": 2, "/discord": 99}
    _, run1 = await run_flow(ctx, branch_id, Result.PASSED)
    await notify_run_completed(ctx, run_id=run1)
    by_channel = {n.channel: n for n in await notes(db, run1)}
    assert by_channel["webhook"].state == "sent" and by_channel["webhook"].attempts == 3
    assert receiver.attempts["/hook"] == 3
    assert by_channel["discord"].state == "failed" and by_channel["discord"].attempts == 3
    assert "500" in (by_channel["discord"].error or "")
    assert by_channel["slack"].state == "sent"
    async with db.session() as s:
        run = await s.get(Run, run1)
        assert run is not None and run.result == "passed"


async def test_flow_scope_changes(db: Database, tmp_path: Path, receiver: Receiver, smtp: Mailbox) -> None:
    ctx, branch_id = await setup(db, tmp_path, receiver, smtp, FLOW_SCOPE)
    results: list[Any] = []
    for result in (Result.PASSED, Result.PASSED, Result.ERROR):
        flow_id, run_id = await run_flow(ctx, branch_id, result)
        await notify_run_completed(ctx, run_id=run_id)  # run scope: nothing configured
        await notify_flow_completed(ctx, flow_id=flow_id)
        results.append(len(receiver.at("/flow")))
    assert results == [1, 1, 2]
    last = receiver.at("/flow")[-1].body
    assert last["event"] == "flow_completed" and last["flow"]["result"] == "error"
    assert last["previous_result"] == "passed" and last["runs"] == [{"stage": "build", "result": "error"}]
