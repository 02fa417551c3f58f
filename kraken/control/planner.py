"""Planner: starts flows from the stages' timed triggers (cron, interval, date, repository).

Fire times live in ``trigger_state``, one row per stage and kind.  A planner claims due rows
with a lease (one atomic UPDATE ... RETURNING), does the slow part outside any transaction
(``git ls-remote`` for repository triggers), then creates the flow and advances ``next_at``
in one transaction, only while it still holds the lease.  So a trigger fires once, across
restarts and with several controllers; a fire time missed while no planner ran fires once
when one runs again.

The planner sleeps until the earliest ``next_at`` (or a held lease's end); a message on the
``planner`` bus channel (stages changed) wakes it; ``planner_sync_interval`` bounds the sleep
as a safety net for stage changes nobody announced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import col, select

from kraken.control import orchestration
from kraken.control.archive import active_branch, archived_reason
from kraken.control.effects import Effects
from kraken.control.service import Service
from kraken.core.sql import insert_ignore
from kraken.models import Branch, Stage
from kraken.models.base import utcnow
from kraken.models.enums import FlowKind
from kraken.models.triggers import TriggerState
from kraken.protocol import PLANNER_CHANNEL
from kraken.triggers import repository
from kraken.triggers.timing import first_fire, next_fire, stage_specs

log = logging.getLogger(__name__)

CHANNEL = PLANNER_CHANNEL
MIN_SLEEP = 0.02


class Planner(Service):
    name = "planner"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def run_forever(self) -> None:
        async with self.bus.listening(CHANNEL) as sub:
            while True:
                try:
                    await self.sync()
                    await self.fire_due()
                    delay = await self.sleep_time()
                except Exception:
                    log.exception("planner pass failed")
                    delay = self.settings.planner_sync_interval
                try:
                    await asyncio.wait_for(sub.get(), delay)
                except TimeoutError:
                    continue
                while not sub.queue.empty():
                    sub.queue.get_nowait()

    # ------------------------------------------------------------ stages -> trigger rows

    async def sync(self) -> None:
        """Make ``trigger_state`` match the enabled stages' timed triggers."""
        now = utcnow()
        async with self.db.session(quick=True) as session:
            stages = (
                await session.execute(
                    select(Stage, Branch)
                    .join(Branch, col(Branch.id) == Stage.branch_id)
                    .where(col(Stage.enabled).is_(True), active_branch())
                )
            ).all()
            rows = (await session.execute(select(TriggerState))).scalars().all()
        wanted: dict[tuple[int, str], str] = {}
        for stage, branch in stages:
            if not stage.triggers:
                continue
            try:
                specs = stage_specs(
                    stage.triggers, stage.schema_, branch.repo_url, branch.branch_name, self.settings.repo_poll_interval
                )
            except ValueError as exc:
                log.warning("stage %s: bad trigger: %s", stage.id, exc)
                continue
            for kind, spec in specs.items():
                wanted[(stage.id, kind)] = spec  # type: ignore[index]
        have = {(r.stage_id, r.kind): r for r in rows}
        changes = [(k, s) for k, s in wanted.items() if k not in have or have[k].spec != s]
        gone = [r.id for k, r in have.items() if k not in wanted]
        if not changes and not gone:
            return
        async with self.db.transaction(quick=True) as session:
            for (stage_id, kind), spec in changes:
                row = have.get((stage_id, kind))
                nxt = first_fire(kind, spec, now)
                if row is None:
                    await insert_ignore(
                        session,
                        TriggerState,
                        {
                            "stage_id": stage_id,
                            "kind": kind,
                            "spec": spec,
                            "next_at": nxt,
                            "data": {},
                            "fired": 0,
                            "created": now,
                        },
                    )
                else:  # changed: only if nobody changed it meanwhile
                    await session.execute(
                        sa.update(TriggerState)
                        .where(col(TriggerState.id) == row.id, col(TriggerState.spec) == row.spec)
                        .values(spec=spec, next_at=nxt, data={})
                    )
            if gone:
                await session.execute(sa.delete(TriggerState).where(col(TriggerState.id).in_(gone)))

    # ------------------------------------------------------------ firing

    async def fire_due(self) -> int:
        """Claim the due triggers and fire them; returns how many flows were started."""
        now = utcnow()
        async with self.db.transaction(quick=True) as session:
            claimed = (
                (
                    await session.execute(
                        sa.update(TriggerState)
                        .where(
                            col(TriggerState.next_at) <= now,
                            sa.or_(col(TriggerState.lease_until).is_(None), col(TriggerState.lease_until) < now),
                        )
                        .values(
                            lease_owner=self.owner, lease_until=now + timedelta(seconds=self.settings.planner_lease)
                        )
                        .returning(col(TriggerState.id))
                    )
                )
                .scalars()
                .all()
            )
        started = 0
        for trigger_id in sorted(i for i in claimed if i is not None):
            try:
                started += await self.fire(trigger_id)
            except Exception:
                log.exception("trigger %s failed; its lease expires and it is tried again", trigger_id)
        return started

    async def fire(self, trigger_id: int) -> int:
        async with self.db.session(quick=True) as session:
            row = await session.get(TriggerState, trigger_id)
            if row is None:
                return 0
            stage = await session.get(Stage, row.stage_id)
            branch = await session.get(Branch, stage.branch_id) if stage else None
        trigger: dict[str, Any] | None = None
        data = dict(row.data)
        if row.kind == "repository" and stage is not None and branch is not None:
            trigger, data = await self.poll(row, stage)
        elif row.kind != "repository" and stage is not None:
            trigger = {"reason": row.kind, row.kind: row.spec if row.kind != "interval" else float(row.spec)}
        effects = Effects()
        now = utcnow()
        async with self.db.transaction(quick=True) as session:
            q = select(TriggerState).where(col(TriggerState.id) == trigger_id)
            if not self.db.is_sqlite:
                q = q.with_for_update()
            row = (await session.execute(q)).scalar_one_or_none()
            if row is None or row.lease_owner != self.owner:
                return 0  # the lease ran out and another planner took the trigger
            stage = await session.get(Stage, row.stage_id)
            started = 0
            branch = await session.get(Branch, stage.branch_id) if stage is not None else None
            active = branch is not None and not await archived_reason(session, branch)  # archived meanwhile
            if stage is not None and stage.enabled and trigger is not None and branch is not None and active:
                trigger = {**trigger, "stage": stage.name, "scheduled": _iso(row.next_at)}
                flow = await orchestration.create_flow(
                    session, branch, FlowKind.CI, {}, effects, trigger=trigger, start_stages=[stage]
                )
                log.info("trigger %s of stage %s started flow %s", row.kind, stage.name, flow.id)
                row.last_fired = now
                row.fired += 1
                started = 1
            row.next_at = next_fire(row.kind, row.spec, row.next_at, now)
            row.data = data
            row.lease_owner = None
            row.lease_until = None
        await orchestration.evaluate_pending(self.db, effects)  # the stage code, outside the transaction
        await effects.apply(self.bus, self.queue)
        return started

    async def poll(self, row: TriggerState, stage: Stage) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Look at the repositories' heads; a trigger dict when there are new commits."""
        spec = orjson.loads(row.spec)
        heads: dict[str, str] = dict(row.data.get("heads") or {})
        changed = []
        for target in spec["targets"]:
            url, branch = target["url"], target.get("branch")
            key = f"{url}#{branch or 'HEAD'}"
            head = await repository.remote_head(url, branch)
            if head is None:
                continue
            old = heads.get(key)
            heads[key] = head
            if old is not None and old != head:
                mirrors = self.settings.data_dir / "planner-repos"
                commits = await repository.new_commits(mirrors, url, branch, old, head)
                changed.append({"url": url, "branch": branch, "before": old, "after": head, "commits": commits})
        data = {"heads": heads}
        if not changed:
            return None, data
        first = changed[0]
        trigger = {
            "reason": "repository",
            "repository": first,
            "repositories": changed,
            "commit": first["after"],
            "commits": first["commits"],
        }
        return trigger, data

    async def sleep_time(self) -> float:
        """Seconds until the earliest next fire (or held lease end), within the safety net."""
        async with self.db.session(quick=True) as session:
            rows = (
                await session.execute(
                    select(TriggerState.next_at, TriggerState.lease_until).where(col(TriggerState.next_at).is_not(None))
                )
            ).all()
        now = utcnow()
        wake = self.settings.planner_sync_interval
        for next_at, lease_until in rows:
            when: datetime = next_at
            if lease_until is not None and lease_until > when:
                when = lease_until
            wake = min(wake, (when - now).total_seconds())
        return max(wake, MIN_SLEEP)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def wake_planner(bus: Any) -> None:
    await bus.publish(CHANNEL, {})
