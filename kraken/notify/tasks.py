"""Notifications on run and flow start and completion, from the stages' ``notification``.

A stage's ``notification`` has groups by event: ``started`` (run start), ``completed`` (every
run end) and ``changes`` (a run end whose result differs from the previous run of the stage on
the branch, same flow kind).  A group maps channels to their settings, e.g.
``{"slack": {"channel": "ci"}, "email": "dev@example.com"}``; ``"scope": "flow"`` makes a group
apply to the flow instead (flow start, flow end, the flow's result against the branch's
previous flow).  Fields may use ``#{secrets.NAME}``.

When a culprit search ends (``kraken.culprits``), the channels that heard about the end of its
run or flow (``completed``, and ``changes`` when that end was a change) get a message naming the
culprit commit and the tests it broke, or saying why none was named (``notify_culprit``; GitHub
commit statuses are about results, not messages: not told).  A run's or flow's end message names
the culprits already known for its failing tests (``kraken.culprits.known``).

Each message is recorded in ``notification`` (its key makes a re-run task send it once); a
failure is retried ``notify_attempts`` times with a doubling delay and logged; it never
changes the run's result.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.sql import insert_ignore
from kraken.culprits.known import FINISHED, FOUND, KnownCulprit, candidate_searches, commit_info, known_culprits
from kraken.models import Branch, Flow, Job, Project, Run, Step
from kraken.models.base import utcnow
from kraken.models.culprits import CulpritSearch
from kraken.models.enums import Result, State
from kraken.models.notify import Notification
from kraken.notify.channels import CHANNELS, Message, destination, send
from kraken.secrets import store as secrets_store
from kraken.secrets.refs import Masker, referenced_names, secret_values, substitute
from kraken.workers.registry import TaskContext, task

log = logging.getLogger(__name__)

EVENTS = ("started", "completed", "changes")


def groups(schema: dict[str, Any], event: str, scope: str) -> list[dict[str, Any]]:
    conf = (schema.get("notification") or {}).get(event)
    if not isinstance(conf, dict) or conf.get("scope", "run") != scope:
        return []
    return [conf]


def channels_of(group: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(name, group[name]) for name in CHANNELS if group.get(name) not in (None, False)]


async def _previous_run_result(session: AsyncSession, run: Run, flow: Flow) -> str | None:
    row = await session.execute(
        select(Run.result)
        .join(Flow, col(Flow.id) == Run.flow_id)
        .where(
            Flow.branch_id == flow.branch_id,
            Flow.kind == flow.kind,
            Run.stage_name == run.stage_name,
            col(Run.state) == State.COMPLETED,
            col(Run.id) < run.id,
            col(Run.flow_id) != flow.id,
        )
        .order_by(col(Run.id).desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


async def _previous_flow_result(session: AsyncSession, flow: Flow) -> str | None:
    row = await session.execute(
        select(Flow.result)
        .where(
            Flow.branch_id == flow.branch_id,
            Flow.kind == flow.kind,
            col(Flow.state) == State.COMPLETED,
            col(Flow.id) < flow.id,
        )
        .order_by(col(Flow.id).desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


async def _commit(session: AsyncSession, flow: Flow, run_ids: list[int]) -> str | None:
    """The commit the flow is about: its trigger's, else the first its git steps checked out."""
    if flow.trigger.get("commit"):
        return str(flow.trigger["commit"])
    infos = await session.execute(
        select(Step.info)
        .join(Job, col(Job.id) == Step.job_id)
        .where(col(Job.run_id).in_(run_ids), col(Step.tool) == "git")
        .order_by(col(Step.id))
    )
    for info in infos.scalars():
        if isinstance(info, dict) and info.get("commit"):
            return str(info["commit"])
    return None


def _repo(flow: Flow) -> str | None:
    repo = flow.trigger.get("repo")
    return str(repo["name"]) if isinstance(repo, dict) and repo.get("name") else None


def _base_url(ctx: TaskContext) -> str:
    s = ctx.settings
    return (s.public_url or f"http://{s.host}:{s.port}").rstrip("/")


async def _deliver(
    ctx: TaskContext,
    project_id: int,
    flow: Flow,
    run: Run | None,
    labeled: list[tuple[str, dict[str, Any]]],
    msg: Message,
    about: str | None = None,
    skip: tuple[str, ...] = (),
) -> None:
    """Send ``msg`` to every channel of the (event, group) pairs, once per channel settings, but
    the ``skip`` channels. ``about`` keys the message (default: its run, else its flow)."""
    wanted = [(event, ch, conf) for event, g in labeled for ch, conf in channels_of(g) if ch not in skip]
    if not wanted:
        return
    async with ctx.db.session() as session:
        names = referenced_names([conf for _, _, conf in wanted])
        secrets = await secrets_store.project_secrets(session, project_id, names) if names else {}
    masker = Masker(v for s in secrets.values() for v in secret_values(s))
    seen: set[str] = set()
    for event, channel, conf in wanted:
        ident = hashlib.sha1(orjson.dumps([channel, conf], option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        if ident in seen:
            continue
        seen.add(ident)
        key = f"{msg.event}:{about or (run.id if run else flow.id)}:{ident}"
        await _send_one(ctx, key, flow, run, event, channel, substitute(conf, secrets), masker, msg)


async def _send_one(
    ctx: TaskContext,
    key: str,
    flow: Flow,
    run: Run | None,
    event: str,
    channel: str,
    conf: Any,
    masker: Masker,
    msg: Message,
) -> None:
    dest = masker.text(destination(channel, conf))
    async with ctx.db.transaction() as session:
        await insert_ignore(
            session,
            Notification,
            {
                "key": key,
                "flow_id": flow.id,
                "run_id": run.id if run else None,
                "event": event,
                "channel": channel,
                "destination": dest,
                "state": "pending",
                "attempts": 0,
                "created": utcnow(),
            },
        )
        note = (await session.execute(select(Notification).where(Notification.key == key))).scalar_one()
        if note.state == "sent":
            return  # a re-run of the task
    attempts = max(1, ctx.settings.notify_attempts)
    error: str | None = None
    done = 0
    for attempt in range(attempts):
        done = attempt + 1
        try:
            await send(channel, conf, msg, ctx.settings)
            error = None
            break
        except Exception as exc:
            error = masker.text(f"{type(exc).__name__}: {exc}")[:1000]
            log.warning(
                "notification %s to %s %s failed (attempt %d/%d): %s", event, channel, dest, done, attempts, error
            )
            if done < attempts:
                await asyncio.sleep(ctx.settings.notify_retry_delay * (2**attempt))
    async with ctx.db.transaction() as session:
        await session.execute(
            sa.update(Notification)
            .where(col(Notification.key) == key)
            .values(state="failed" if error else "sent", attempts=done, error=error, finished=utcnow())
        )
    if error:
        log.error("notification %s to %s %s gave up after %d attempts: %s", event, channel, dest, done, error)
    else:
        log.info("notification %s sent to %s %s", event, channel, dest)


async def _load(ctx: TaskContext, flow_id: int) -> tuple[Flow, Branch, Project, list[Run]] | None:
    async with ctx.db.session() as session:
        flow = await session.get(Flow, flow_id)
        if flow is None:
            return None
        branch = await session.get(Branch, flow.branch_id)
        assert branch is not None
        project = await session.get(Project, branch.project_id)
        assert project is not None
        runs = list((await session.execute(select(Run).where(Run.flow_id == flow_id).order_by(col(Run.id)))).scalars())
    return flow, branch, project, runs


def _payload(event: str, project: Project, branch: Branch, flow: Flow, run: Run | None, url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event,
        "project": project.name,
        "branch": branch.name,
        "flow": {
            "id": flow.id,
            "seq": flow.seq,
            "kind": flow.kind,
            "state": flow.state,
            "result": flow.result,
            "trigger": flow.trigger,
        },
        "url": url,
    }
    if run is not None:
        body["run"] = {
            "id": run.id,
            "stage": run.stage_name,
            "seq": run.seq,
            "state": run.state,
            "result": run.result,
            "reason": run.reason,
        }
    return body


MAX_TESTS_LISTED = 20  # tests named in a message's text (the webhook's JSON has them all)


def _tests_text(tests: list[str], indent: str = "  ") -> str:
    shown = [f"{indent}{t}" for t in tests[:MAX_TESTS_LISTED]]
    if len(tests) > MAX_TESTS_LISTED:
        shown.append(f"{indent}... and {len(tests) - MAX_TESTS_LISTED} more")
    return "\n".join(shown)


def _commit_line(sha: str, commit: dict[str, Any] | None) -> str:
    c = commit or {}
    who = f"{c.get('author')} <{c.get('email')}>" if c.get("author") else "author unknown"
    return f"{sha} {c.get('message') or ''}".rstrip() + f" ({who})"


async def _known(ctx: TaskContext, flow: Flow, runs: list[Run]) -> list[KnownCulprit]:
    """The culprits already known for the failing tests of ``runs`` (a CI flow's); their
    results are analysed first when some search could name them (idempotent)."""
    if all(r.result == Result.PASSED for r in runs):
        return []
    async with ctx.db.session() as session:
        searches = await candidate_searches(session, flow, {r.stage_name for r in runs})
    if not searches:
        return []
    from kraken.results.analysis import advance_branch

    await advance_branch(ctx.db, flow.branch_id)
    async with ctx.db.session() as session:
        return await known_culprits(session, flow, runs, searches)


def _known_text(known: list[KnownCulprit]) -> str:
    if not known:
        return ""
    parts = ["", "Known culprits of failing tests:"]
    for k in known:
        parts.append(f"- {_commit_line(k.culprit, k.commit)} broke:")
        parts.append(_tests_text(k.tests, "    "))
    return "\n".join(parts)


async def _notify_run(ctx: TaskContext, run_id: int, started: bool) -> None:
    async with ctx.db.session(quick=True) as session:
        run = await session.get(Run, run_id)
    if run is None or run.id is None:
        return
    if not started and not any(groups(run.schema_ or {}, e, "run") for e in ("completed", "changes")):
        return  # nothing asked for: skip the reads below (this runs for every run)
    loaded = await _load(ctx, run.flow_id)
    if loaded is None:
        return
    flow, branch, project, runs = loaded
    assert project.id is not None
    schema = run.schema_ or {}
    url = f"{_base_url(ctx)}/flows/{flow.id}"
    where = f"{project.name} / {branch.name} / {run.stage_name}"
    async with ctx.db.session() as session:
        commit = await _commit(session, flow, [run.id])
        previous = None if started else await _previous_run_result(session, run, flow)
    if started:
        msg = Message(
            event="run_started",
            subject=f"{where}: run {run.seq} started",
            text=f"{flow.kind} flow {flow.seq}",
            url=url,
            result=None,
            previous_result=None,
            changed=False,
            payload=_payload("run_started", project, branch, flow, run, url),
            commit=commit,
            repo=_repo(flow),
            context=f"kraken/{run.stage_name}",
        )
        await _deliver(ctx, project.id, flow, run, [("started", g) for g in groups(schema, "started", "run")], msg)
        if runs and runs[0].id == run.id:  # the flow's first run: the flow started
            flow_groups = [("started", g) for r in runs for g in groups(r.schema_ or {}, "started", "flow")]
            fmsg = Message(
                event="flow_started",
                subject=f"{project.name} / {branch.name}: flow {flow.seq} started",
                text=f"{flow.kind} flow {flow.seq}",
                url=url,
                result=None,
                previous_result=None,
                changed=False,
                payload=_payload("flow_started", project, branch, flow, None, url),
                commit=commit,
                repo=_repo(flow),
            )
            await _deliver(ctx, project.id, flow, None, flow_groups, fmsg)
        return
    changed = previous != run.result
    text = f"{flow.kind} flow {flow.seq}: {run.result}" + (f" (was {previous})" if previous else "")
    if run.reason:
        text += f"\n{run.reason}"
    known = await _known(ctx, flow, [run])
    text += _known_text(known)
    payload = _payload("run_completed", project, branch, flow, run, url)
    msg = Message(
        event="run_completed",
        subject=f"{where}: run {run.seq} {run.result}",
        text=text,
        url=url,
        result=run.result,
        previous_result=previous,
        changed=changed,
        payload={
            **payload,
            "previous_result": previous,
            "changed": changed,
            "culprits": [k.as_json() for k in known],
        },
        commit=commit,
        repo=_repo(flow),
        context=f"kraken/{run.stage_name}",
    )
    labeled = [("completed", g) for g in groups(schema, "completed", "run")]
    if changed:
        labeled += [("changes", g) for g in groups(schema, "changes", "run")]
    await _deliver(ctx, project.id, flow, run, labeled, msg)


@task
async def notify_run_started(ctx: TaskContext, run_id: int) -> None:
    await _notify_run(ctx, run_id, started=True)


@task
async def notify_run_completed(ctx: TaskContext, run_id: int) -> None:
    await _notify_run(ctx, run_id, started=False)


@task
async def notify_flow_completed(ctx: TaskContext, flow_id: int) -> None:
    async with ctx.db.session(quick=True) as session:
        schemas = (await session.execute(select(Run.schema_).where(Run.flow_id == flow_id))).scalars().all()
    if not any(groups(s or {}, e, "flow") for s in schemas for e in ("completed", "changes")):
        return  # nothing asked for (this runs for every flow)
    loaded = await _load(ctx, flow_id)
    if loaded is None:
        return
    flow, branch, project, runs = loaded
    assert project.id is not None
    completed = [("completed", g) for r in runs for g in groups(r.schema_ or {}, "completed", "flow")]
    changes = [("changes", g) for r in runs for g in groups(r.schema_ or {}, "changes", "flow")]
    if not completed and not changes:
        return
    async with ctx.db.session() as session:
        previous = await _previous_flow_result(session, flow)
        commit = await _commit(session, flow, [r.id for r in runs if r.id is not None])
    changed = previous != flow.result
    url = f"{_base_url(ctx)}/flows/{flow.id}"
    lines = "\n".join(f"{r.stage_name}: {r.result}" for r in runs)
    was = f" (was {previous})" if previous else ""
    known = await _known(ctx, flow, runs)
    payload = _payload("flow_completed", project, branch, flow, None, url)
    msg = Message(
        event="flow_completed",
        subject=f"{project.name} / {branch.name}: flow {flow.seq} {flow.result}",
        text=f"{flow.kind} flow {flow.seq}: {flow.result}{was}\n{lines}{_known_text(known)}",
        url=url,
        result=flow.result,
        previous_result=previous,
        changed=changed,
        payload={
            **payload,
            "previous_result": previous,
            "changed": changed,
            "runs": [{"stage": r.stage_name, "result": r.result} for r in runs],
            "culprits": [k.as_json() for k in known],
        },
        commit=commit,
        repo=_repo(flow),
    )
    await _deliver(ctx, project.id, flow, None, completed + (changes if changed else []), msg)


@task
async def notify_culprit(ctx: TaskContext, search_id: int) -> None:
    """A culprit search ended: the channels told about its run's (or flow's) end hear which commit
    broke which tests, or why no commit was named."""
    async with ctx.db.session(quick=True) as session:
        search = await session.get(CulpritSearch, search_id)
        run = await session.get(Run, search.run_id) if search is not None else None
    if search is None or run is None or search.state not in FINISHED:
        return
    schema = run.schema_ or {}
    if not any(groups(schema, e, scope) for e in ("completed", "changes") for scope in ("run", "flow")):
        return
    loaded = await _load(ctx, run.flow_id)
    if loaded is None:
        return
    flow, branch, project, _runs = loaded
    assert project.id is not None
    async with ctx.db.session() as session:
        run_changed = await _previous_run_result(session, run, flow) != run.result
        flow_changed = await _previous_flow_result(session, flow) != flow.result
    labeled = [("completed", g) for scope in ("run", "flow") for g in groups(schema, "completed", scope)]
    if run_changed:
        labeled += [("changes", g) for g in groups(schema, "changes", "run")]
    if flow_changed:
        labeled += [("changes", g) for g in groups(schema, "changes", "flow")]
    base = _base_url(ctx)
    url = f"{base}/runs/{run.id}/results?change=regression"
    where = f"{project.name} / {branch.name} / {run.stage_name}"
    tests = list(search.tests)
    n = f"{len(tests)} test{'s' if len(tests) != 1 else ''}"
    of_run = f"run {run.seq} of {flow.kind} flow {flow.seq} ({base}/flows/{flow.id})"
    commit = commit_info(search)
    if search.state == FOUND and search.culprit:
        subject = f"{where}: commit {search.culprit[:12]} broke {n}"
        head = f"Culprit: {_commit_line(search.culprit, commit)}\nIt broke {n} of {of_run}:"
    else:
        subject = f"{where}: no culprit named for {n} ({search.state})"
        head = f"No culprit named ({search.state}): {search.reason or 'no reason recorded'}\nTests of {of_run}:"
    bisected = f"{len(search.flows)} bisection flow{'s' if len(search.flows) != 1 else ''}"
    text = (
        f"{head}\n{_tests_text(tests)}\n"
        f"Range: {search.good_commit or '?'}..{search.bad_commit or '?'} ({len(search.commits)} commits), {bisected}"
    )
    payload = _payload("culprit", project, branch, flow, run, url)
    payload["culprit"] = {
        "search_id": search.id,
        "state": search.state,
        "reason": search.reason,
        "commit": search.culprit,
        "author": (commit or {}).get("author"),
        "email": (commit or {}).get("email"),
        "subject": (commit or {}).get("message"),
        "tests": tests,
        "good_commit": search.good_commit,
        "bad_commit": search.bad_commit,
        "range_commits": len(search.commits),
        "flows": search.flows,
    }
    msg = Message(
        event="culprit",
        subject=subject,
        text=text,
        url=url,
        result=run.result,
        previous_result=None,
        changed=False,
        payload=payload,
        commit=search.culprit,
        repo=_repo(flow),
    )
    # a GitHub commit status is about a run's result: a culprit is no status
    await _deliver(ctx, project.id, flow, run, labeled, msg, about=f"search-{search.id}", skip=("github",))
